"""What a candidate engine returns: candidates, provider summaries and an
explanation of how the request was narrowed down.
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple


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


_new_tuple = tuple.__new__


@dataclass(frozen=True, slots=True, eq=False)
class CandidateTemplate:
    """A candidate with each uuid replaced by its position in a list of
    names (-1: none, the uuid stays), for every twin tree that replays it
    with its own names.

    ``allocations``: (position, uuid, class, amount) in the original's
    order; ``by_position``: per provider in allocation order, (position,
    uuid, class → amount), one dict shared by every replay (read only);
    ``mappings``: per group suffix, (position, uuid) of each provider;
    ``single_mappings``: (suffix, position, uuid) when every group maps to
    one provider, else None; ``pools``: (position, uuid) of the sharing
    providers taken from; ``one_provider``: every allocation from one
    provider; ``shared_only``: every allocation from sharing providers (the
    candidate may repeat under another anchor).

    Compared by identity: a template is made once per original candidate.
    """

    allocations: tuple[tuple[int, str, str, int], ...]
    by_position: tuple[tuple[int, str, dict[str, int]], ...]
    mappings: tuple[tuple[str, tuple[tuple[int, str], ...]], ...]
    single_mappings: tuple[tuple[str, int, str], ...] | None
    pools: tuple[tuple[int, str], ...]
    one_provider: bool
    shared_only: bool

    @classmethod
    def of(
        cls, candidate: Candidate, at: Callable[[str, int], int], sharing: Container[str]
    ) -> CandidateTemplate:
        """``candidate``'s template: ``at(uuid, -1)`` is a uuid's position;
        ``sharing`` holds the sharing providers."""
        allocations = tuple(
            (at(provider, -1), provider, resource_class, amount)
            for provider, resource_class, amount in candidate.allocations
        )
        mappings = tuple(
            (suffix, tuple((at(uuid, -1), uuid) for uuid in uuids))
            for suffix, uuids in candidate.mappings
        )
        grouped: dict[tuple[int, str], dict[str, int]] = {}
        for position, provider, resource_class, amount in allocations:
            grouped.setdefault((position, provider), {})[resource_class] = amount
        by_position = tuple(
            (position, provider, amounts) for (position, provider), amounts in grouped.items()
        )
        single = all(len(uuids) == 1 for _, uuids in mappings)
        return cls(
            allocations=allocations,
            by_position=by_position,
            mappings=mappings,
            single_mappings=tuple(
                (suffix, uuids[0][0], uuids[0][1]) for suffix, uuids in mappings
            ) if single else None,
            pools=tuple(
                (position, provider) for position, provider, _ in by_position
                if provider in sharing
            ),
            # Renaming can reorder allocations only between two providers.
            one_provider=len(grouped) == 1,
            shared_only=all(provider in sharing for _, provider, _ in by_position),
        )


class ReplayedCandidate(NamedTuple):
    """A candidate given as a template and the names its positions stand
    for (the fast engine's twin trees: one template, each twin its own
    uuids). It reads as a ``Candidate``: allocations and mappings are made
    when asked for, ``by_provider`` and ``pools`` straight from the
    template. Equal to another replay of the same candidate; ``whole()`` is
    the ``Candidate`` it stands for.

    A named tuple: a big answer makes hundreds of thousands, and a tuple is
    made in a third of the time of a frozen class.
    """

    template: CandidateTemplate
    names: Sequence[str]
    anchor: str

    @property
    def allocations(self) -> tuple[Allocation, ...]:
        names = self.names
        allocations = [
            _new_tuple(Allocation, (uuid if at < 0 else names[at], resource_class, amount))
            for at, uuid, resource_class, amount in self.template.allocations
        ]
        if not self.template.one_provider:
            # Allocations are tuples: sorting sorts by provider, then class.
            allocations.sort()
        return tuple(allocations)

    @property
    def mappings(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(self.mapped().items())

    @property
    def identity(self) -> tuple:
        return (self.allocations, self.mappings)

    @property
    def providers(self) -> set[str]:
        names = self.names
        return {uuid if at < 0 else names[at] for at, uuid, _ in self.template.by_position}

    def by_provider(self) -> dict[str, dict[str, int]]:
        names = self.names
        by_position = self.template.by_position
        if len(by_position) == 1:
            ((at, uuid, amounts),) = by_position
            return {uuid if at < 0 else names[at]: amounts}
        return {uuid if at < 0 else names[at]: amounts for at, uuid, amounts in by_position}

    def mapped(self) -> dict[str, tuple[str, ...]]:
        names = self.names
        single = self.template.single_mappings
        if single is not None:
            return {suffix: (uuid if at < 0 else names[at],) for suffix, at, uuid in single}
        return {
            suffix: tuple(sorted([uuid if at < 0 else names[at] for at, uuid in uuids]))
            for suffix, uuids in self.template.mappings
        }

    def pools(self) -> list[str]:
        """The sharing providers the candidate takes from."""
        names = self.names
        return [uuid if at < 0 else names[at] for at, uuid in self.template.pools]

    def whole(self) -> Candidate:
        return Candidate(self.allocations, self.mappings, self.anchor)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReplayedCandidate):
            return self.whole() == other.whole()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, ReplayedCandidate):
            return self.whole() != other.whole()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.whole())

    def __repr__(self) -> str:
        return f"Replayed{self.whole()!r}"


# What an engine's answer lists.
AnyCandidate = Candidate | ReplayedCandidate


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    resource_class: str
    capacity: int
    used: int


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ProviderSummary:
    """A provider of a tree involved in the candidates, with all its inventory.

    The read model shares one summary among answers until its tree changes;
    a reader may keep what it makes of it for as long as the summary lives
    (hence the weak reference slot).
    """

    uuid: str
    parent_uuid: str | None
    root_uuid: str
    resources: tuple[ResourceSummary, ...]
    traits: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why something was dropped by a stage, with the numbers behind it.

    ``reason`` is a short code (``insufficient_capacity``, ``missing_trait``,
    ``forbidden_aggregate``, ``group_policy``, ...). Slotted: a stage makes
    one per provider it drops, if only for a moment.
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
    # Room left where no single inventory is named (a whole tree's best
    # provider, ``no_room_in_tree``); else ``capacity - used``.
    free: int | None = None

    @property
    def room(self) -> int | None:
        """What was still free where the exclusion looked, if it says."""
        if self.used is not None and self.capacity is not None:
            return self.capacity - self.used
        return self.free

    @property
    def shortfall(self) -> int | None:
        """How much capacity was missing, for capacity exclusions."""
        room = self.room
        if self.requested is None or room is None:
            return None
        return self.requested - room


@dataclass(frozen=True)
class ReasonCount:
    """How many items a stage excluded for one reason and one class or
    trait; for capacity reasons, what the closest of them asked for and had
    free (``requested``, ``free``).
    """

    reason: str
    count: int
    resource_class: str | None = None
    trait: str | None = None
    requested: int | None = None
    free: int | None = None
    # The request group the exclusion names, when a stage of the whole
    # request (eligible_roots, lone_trees) names one.
    group: str | None = None
    # The stage that excluded them, when it reports under another one (the
    # fast engine's lone trees, under ``combine``).
    stage: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        return (self.reason, self.resource_class, self.trait, self.group, self.stage)


def counted(exclusion: Exclusion, weight: int = 1) -> ReasonCount:
    """``exclusion`` as a count of ``weight``."""
    return ReasonCount(
        exclusion.reason, weight, exclusion.resource_class, exclusion.trait,
        exclusion.requested, exclusion.room, exclusion.group, exclusion.stage,
    )


def tally(exclusions: Iterable[Exclusion], weight: int = 1) -> tuple[ReasonCount, ...]:
    """``exclusions`` counted per (reason, class, trait), each ``weight`` times."""
    return merge_counts(counted(exclusion, weight) for exclusion in exclusions)


def merge_counts(counts: Iterable[ReasonCount]) -> tuple[ReasonCount, ...]:
    """Counts of one key summed, keeping the closest miss's numbers (the
    most room left); sorted by key. One new object per key, not per count:
    a stage may merge one count per tree."""
    totals: dict[tuple, int] = {}
    closest: dict[tuple, ReasonCount] = {}
    for count in counts:
        key = count.key
        known = closest.get(key)
        if known is None:
            closest[key], totals[key] = count, count.count
            continue
        totals[key] += count.count
        if count.free is not None and (known.free is None or count.free > known.free):
            closest[key] = count
    merged = []
    for key in sorted(closest, key=_sortable):
        count = closest[key]
        merged.append(count if count.count == totals[key] else replace(count, count=totals[key]))
    return tuple(merged)


def _sortable(key: tuple) -> tuple:
    return tuple("" if part is None else part for part in key)


@dataclass(frozen=True)
class StageReport:
    """How many items one stage kept and dropped, per reason; ``details``
    splits the dropped ones by class or trait as well. ``unit`` names what
    the stage counts (``stowage.candidates.attribution``'s units: trees,
    providers, provider choices, combinations): each stage counts its own
    items, so one tree may be counted by several stages, or many times by
    one."""

    stage: str
    group: str | None
    kept: int
    excluded: tuple[tuple[str, int], ...] = ()
    details: tuple[ReasonCount, ...] = ()
    unit: str = "providers"


class TreeVerdict(NamedTuple):
    """Why one tree anchors no candidate: the first stage of
    ``stowage.candidates.attribution``'s order that rules it out, and that
    stage's reason. Twin trees share one verdict object."""

    stage: str
    exclusion: Exclusion
    # Reported by the fast engine's ``lone_trees`` stage too.
    lone: bool = False


@dataclass(frozen=True)
class Explanation:
    """Counts per stage plus the nearest misses; a by-product of the run.

    ``trees`` is how many trees (roots) the engine considered;
    ``excluded_trees`` counts each tree it ruled out once, under the first
    stage and reason that ruled it out (``stage`` and ``group`` set; the
    stages and their order are ``stowage.candidates.attribution``'s, the
    same for both engines), so the counts are trees and sum to at most
    ``trees``. ``fitting_trees`` is how many trees anchor at least one
    candidate the engine generated (before ``limit``): with a limit the
    engine may stop before it has looked at every tree, and the excluded
    and fitting trees together are the trees it looked at.
    """

    stages: tuple[StageReport, ...] = ()
    nearest_misses: tuple[Exclusion, ...] = ()
    trees: int = 0
    excluded_trees: tuple[ReasonCount, ...] = ()
    fitting_trees: int = 0

    @property
    def examined_trees(self) -> int:
        """Trees the engine decided about: ruled out, or fitting."""
        return self.fitting_trees + sum(count.count for count in self.excluded_trees)


@dataclass(frozen=True)
class CandidateResult:
    candidates: tuple[AnyCandidate, ...]
    summaries: tuple[ProviderSummary, ...]
    explanation: Explanation = Explanation()

    @classmethod
    def empty(cls, explanation: Explanation = Explanation()) -> CandidateResult:
        return cls((), (), explanation)
