"""Placement's fit rules, stated once: capacity and the unit constraints.

Plain functions over numbers, used by the candidate engines' snapshot, the
claim check of allocation writes and inventory updates. The SQL prefilter of
``GET /resource_providers?resources=`` (``storage.providers``) states the
same rule in SQL; ``tests/storage/test_fit_rules.py`` checks the two agree.
The fast engine's innermost loop inlines ``unit_problem`` for speed and is
held to the reference engine by property tests.
"""
from __future__ import annotations

import math
from enum import StrEnum

# What an infinite product stands for: beyond any amount or usage there is.
_BEYOND = 2**63


class UnitProblem(StrEnum):
    """Why an amount is not a valid single allocation of an inventory."""

    BELOW_MIN_UNIT = "below_min_unit"
    ABOVE_MAX_UNIT = "above_max_unit"
    STEP_SIZE = "step_size"


def capacity(total: int, reserved: int, allocation_ratio: float) -> int:
    """What allocations may consume in all: ``(total - reserved) * allocation_ratio``,
    truncated as upstream reports it. Amounts are whole, so ``used + amount <=
    capacity`` is the same test as upstream's comparison with the float.

    A ratio so far below zero that the product overflows to -infinity gives
    as negative a capacity as any other (upstream: a 500)."""
    product = (total - reserved) * allocation_ratio
    if math.isfinite(product):
        return int(product)
    return _BEYOND if product > 0 else -_BEYOND


def unit_problem(amount: int, min_unit: int, max_unit: int, step_size: int) -> UnitProblem | None:
    """Why ``amount`` is not a valid single allocation size, or None."""
    if amount < min_unit:
        return UnitProblem.BELOW_MIN_UNIT
    if amount > max_unit:
        return UnitProblem.ABOVE_MAX_UNIT
    if amount % step_size:
        return UnitProblem.STEP_SIZE
    return None
