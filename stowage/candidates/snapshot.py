"""An immutable picture of the providers in play for one candidate request.

``stowage.storage.snapshot`` fills it from the database in a few set-based
queries; tests build it by hand. Everything is keyed by provider uuid and
resource class / trait name, so the engine never needs internal ids.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from stowage import rules

SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


@dataclass(frozen=True, slots=True)
class Inventory:
    """One provider's inventory of one resource class, with its usage.

    Slotted and hashable: a read model of 400,000 providers holds a million
    of them, and equal ones are stored once (``stowage.storage.snapshot``).
    """

    resource_class: str
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = 2147483647
    step_size: int = 1
    allocation_ratio: float = 1.0
    used: int = 0

    @property
    def capacity(self) -> int:
        return rules.capacity(self.total, self.reserved, self.allocation_ratio)

    def unit_problem(self, amount: int) -> str | None:
        """Why ``amount`` is not a valid single allocation size, or None."""
        return rules.unit_problem(amount, self.min_unit, self.max_unit, self.step_size)

    def has_room(self, amount: int) -> bool:
        """True if ``amount`` more still fits under the capacity."""
        return self.used + amount <= self.capacity


@dataclass(frozen=True, slots=True)
class Provider:
    """A resource provider with everything the engine looks at.

    ``inventories`` is never changed once the provider is made: providers
    in the same state may share one mapping.
    """

    uuid: str
    root_uuid: str
    parent_uuid: str | None = None
    inventories: Mapping[str, Inventory] = field(default_factory=dict)
    traits: frozenset[str] = frozenset()
    aggregates: frozenset[str] = frozenset()

    @property
    def is_sharing(self) -> bool:
        """Shares its inventory with the trees of its aggregates' members."""
        return SHARING_TRAIT in self.traits


@dataclass(frozen=True)
class Snapshot:
    """The providers of every tree that might take part in a candidate.

    ``providers`` is ordered (by creation, when loaded from storage); the
    engine keeps that order so results are deterministic. Trees are complete:
    if a provider is present, so is its whole tree.
    """

    providers: tuple[Provider, ...]
    # Trait name → rank (the trait's id in storage): summaries list traits in
    # this order, as upstream does; unranked names sort last, alphabetically.
    trait_rank: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls, providers: Iterable[Provider], trait_rank: Mapping[str, int] | None = None
    ) -> Snapshot:
        return cls(tuple(providers), dict(trait_rank or {}))

    def listed_traits(self, provider: Provider) -> tuple[str, ...]:
        """The provider's traits in listing order."""
        unranked = len(self.trait_rank)
        return tuple(
            sorted(provider.traits, key=lambda name: (self.trait_rank.get(name, unranked), name))
        )

    @cached_property
    def by_uuid(self) -> dict[str, Provider]:
        return {provider.uuid: provider for provider in self.providers}

    @cached_property
    def order(self) -> dict[str, int]:
        """Position of each provider uuid, for stable sorting."""
        return {provider.uuid: index for index, provider in enumerate(self.providers)}

    @cached_property
    def roots(self) -> tuple[Provider, ...]:
        return tuple(provider for provider in self.providers if provider.parent_uuid is None)

    @cached_property
    def tree_members(self) -> dict[str, tuple[Provider, ...]]:
        """Root uuid → every provider of that tree, root included."""
        members: dict[str, list[Provider]] = {}
        for provider in self.providers:
            members.setdefault(provider.root_uuid, []).append(provider)
        return {root: tuple(found) for root, found in members.items()}

    @cached_property
    def aggregate_members(self) -> dict[str, frozenset[str]]:
        """Aggregate uuid → uuids of the providers directly in it."""
        members: dict[str, set[str]] = {}
        for provider in self.providers:
            for aggregate in provider.aggregates:
                members.setdefault(aggregate, set()).add(provider.uuid)
        return {aggregate: frozenset(found) for aggregate, found in members.items()}

    def ancestry(self, uuid: str) -> tuple[str, ...]:
        """``uuid`` then its parent, grandparent, ... up to the root."""
        chain = []
        current: str | None = uuid
        while current is not None:
            chain.append(current)
            current = self.by_uuid[current].parent_uuid
        return tuple(chain)

    @cached_property
    def _sharing_anchors(self) -> dict[str, frozenset[str]]:
        anchors: dict[str, frozenset[str]] = {}
        for provider in self.providers:
            if provider.is_sharing:
                anchors[provider.uuid] = frozenset(
                    self.by_uuid[member].root_uuid
                    for aggregate in provider.aggregates
                    for member in self.aggregate_members.get(aggregate, ())
                )
        return anchors

    def anchors_of_sharing(self, provider: Provider) -> frozenset[str]:
        """Roots whose trees may use a sharing provider's inventory.

        Those are the roots of every provider sharing an aggregate with it,
        its own root included when it is in any aggregate at all.
        """
        return self._sharing_anchors.get(provider.uuid, frozenset())
