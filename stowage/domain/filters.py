"""Value types for the provider filters shared by GET /resource_providers and
GET /allocation_candidates: aggregate membership, traits and resource amounts.

The API parses query strings into these once (``stowage.api.schemas.query``);
the domain resolves their names to ids.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AggregateFilter:
    """``member_of``: a provider must be in at least one aggregate of every
    ``any_of`` set, and in none of ``forbidden``."""

    any_of: tuple[frozenset[str], ...] = ()
    forbidden: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.any_of or self.forbidden)


@dataclass(frozen=True)
class TraitFilter:
    """``required``: a provider must have at least one trait of every
    ``any_of`` set (a plain required trait is a set of one) and none of
    ``forbidden``."""

    any_of: tuple[frozenset[str], ...] = ()
    forbidden: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.any_of or self.forbidden)

    @property
    def names(self) -> set[str]:
        """Every trait name mentioned, required or forbidden."""
        return set().union(*self.any_of, self.forbidden)


@dataclass(frozen=True)
class ResourceAmount:
    """One ``CLASS:amount`` item of a ``resources`` query parameter."""

    resource_class: str
    amount: int
