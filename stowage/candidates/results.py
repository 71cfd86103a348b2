"""What a candidate engine returns: candidates, provider summaries and an
explanation of how the request was narrowed down.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Allocation(NamedTuple):
    """``amount`` of ``resource_class`` taken from ``provider`` (a uuid).

    A named tuple rather than a dataclass: candidates are hashed and compared
    by their allocations, hundreds of thousands of times for a big answer,
    and a tuple does that in C.
    """

    provider: str
    resource_class: str
    amount: int


class Candidate(NamedTuple):
    """One way to satisfy every request group at once.

    ``allocations`` is consolidated (one entry per provider and class) and
    sorted; ``mappings`` pairs each group suffix with the providers that
    satisfied it (a resourceless group maps to a provider it takes nothing
    from). ``anchor`` is the root provider whose tree the candidate is built
    around; it is not part of the output and not of the identity.

    A named tuple, like ``Allocation``: a big answer makes tens of
    thousands of them, and a tuple is made in half the time of a frozen
    dataclass.
    """

    allocations: tuple[Allocation, ...]
    mappings: tuple[tuple[str, tuple[str, ...]], ...]
    anchor: str

    # Candidates that differ only by their providers' uuids may be given as
    # one template and each its own names (the fast engine's twin trees);
    # a candidate built whole has neither. Properties, not class attributes:
    # a named tuple's body may hold only fields and methods.
    @property
    def template(self) -> None:
        return None

    @property
    def names(self) -> None:
        return None

    @property
    def identity(self) -> tuple:
        """Two candidates with the same identity are the same answer."""
        return (self.allocations, self.mappings)

    @property
    def providers(self) -> set[str]:
        """Providers the candidate takes resources from."""
        return {allocation.provider for allocation in self.allocations}

    def mapped(self) -> dict[str, tuple[str, ...]]:
        """Group suffix → the providers that satisfied it."""
        return dict(self.mappings)

    def by_provider(self) -> dict[str, dict[str, int]]:
        """Provider uuid → class → amount, providers in allocation order."""
        grouped: dict[str, dict[str, int]] = {}
        for provider, resource_class, amount in self.allocations:
            amounts = grouped.get(provider)
            if amounts is None:
                grouped[provider] = {resource_class: amount}
            else:
                amounts[resource_class] = amount
        return grouped


class CandidateTemplate(Protocol):
    """What a reader may use of the template that twin trees' candidates
    share (the fast engine's ``_Template``): per provider, in allocation
    order, (position in the names or -1, original uuid, class → amount);
    per group suffix, (position or -1, original uuid) of each provider;
    and ``rendered``, where the HTTP layer keeps what it makes of it."""

    @property
    def by_position(self) -> tuple[tuple[int, str, dict[str, int]], ...]: ...

    @property
    def mappings(self) -> tuple[tuple[str, tuple[tuple[int, str], ...]], ...]: ...

    @property
    def rendered(self) -> dict: ...


class CandidateLike(Protocol):
    """What a reader of an answer's candidates may use: a ``Candidate``, or
    the fast engine's replay of one for a twin tree (a template and that
    tree's own uuids, ``names``, by position), which makes its allocations
    and mappings only when asked for."""

    @property
    def allocations(self) -> tuple[Allocation, ...]: ...

    @property
    def mappings(self) -> tuple[tuple[str, tuple[str, ...]], ...]: ...

    @property
    def anchor(self) -> str: ...

    @property
    def template(self) -> CandidateTemplate | None: ...

    @property
    def names(self) -> Sequence[str] | None: ...

    @property
    def identity(self) -> tuple: ...

    @property
    def providers(self) -> set[str]: ...

    def mapped(self) -> dict[str, tuple[str, ...]]: ...

    def by_provider(self) -> dict[str, dict[str, int]]: ...


@dataclass(frozen=True)
class ResourceSummary:
    resource_class: str
    capacity: int
    used: int


@dataclass(frozen=True)
class ProviderSummary:
    """A provider of a tree involved in the candidates, with all its inventory."""

    uuid: str
    parent_uuid: str | None
    root_uuid: str
    resources: tuple[ResourceSummary, ...]
    traits: tuple[str, ...]
    # Where the HTTP layer keeps this summary's JSON bytes per format, so
    # that a summary shared by many answers is rendered once.
    rendered: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Exclusion:
    """Why something was dropped by a stage, with the numbers behind it.

    ``reason`` is a short code (``insufficient_capacity``, ``missing_trait``,
    ``forbidden_aggregate``, ``group_policy``, ...).
    """

    stage: str
    reason: str
    group: str | None = None
    provider: str | None = None
    resource_class: str | None = None
    requested: int | None = None
    used: int | None = None
    capacity: int | None = None
    trait: str | None = None

    @property
    def shortfall(self) -> int | None:
        """How much capacity was missing, for capacity exclusions."""
        if self.requested is None or self.used is None or self.capacity is None:
            return None
        return self.requested + self.used - self.capacity


@dataclass(frozen=True)
class StageReport:
    """How many items one stage kept and dropped, per reason."""

    stage: str
    group: str | None
    kept: int
    excluded: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Counts per stage plus the nearest misses; a by-product of the run."""

    stages: tuple[StageReport, ...] = ()
    nearest_misses: tuple[Exclusion, ...] = ()


@dataclass(frozen=True)
class CandidateResult:
    candidates: tuple[CandidateLike, ...]
    summaries: tuple[ProviderSummary, ...]
    explanation: Explanation = Explanation()

    @classmethod
    def empty(cls, explanation: Explanation = Explanation()) -> CandidateResult:
        return cls((), (), explanation)
