"""Why a tree has no candidate: the order trees are ruled out in, and the
bounded tallies both engines count exclusions with.

Each stage counts what it looked at (``ExclusionTally``): trees, providers,
choices or combinations of them, per reason, plus the few exclusions that
came closest to fitting. Memory grows with the kinds of exclusion (reason,
class, trait, group), never with the providers: a stage over 100,000 roots
keeps a few dozen counts.

Besides, each tree a request rules out is counted once (``TreeTally``),
under the first of these that applies to it:

1. ``root_traits``: its root lacks a ``root_required`` trait or has a
   ``root_forbidden`` one;
2. ``tree_room``: for some requested class (in the order the request first
   names them), no provider of the tree and no sharing provider serving it
   has room for the smallest amount any group asks of it (the reason says
   whether the tree has none of the class, too little, or counted on
   sharing providers that have too little or do not share with it);
3. ``groups``, for a tree of one provider that nothing shares with: that
   provider lacks a group's required trait or has a forbidden one (groups
   in request order);
4. ``groups``: the first group (request order) that no provider of the
   tree, nor a sharing provider serving it, can satisfy on its own; the
   reason is that of the provider (for the unsuffixed group, the class or
   the combination of providers) that came closest, i.e. got furthest
   through the group's checks (``SINGLE_PROVIDER_RANK``, ``SPREAD_RANK``),
   then had the smallest shortfall;
5. ``combine``: every combination of the groups' choices fails; the reason
   is that of the combination that got furthest (the most groups picked
   before the first one that overflows a capacity or max_unit or breaks
   ``isolate``; then ``same_subtree``; then nesting before 1.29).

Both engines follow this order whatever order they check in (the fast
engine settles steps 1 to 3 per kind of root, the reference per tree), and
``tests/candidates/test_explanation_agreement.py`` holds them to the same
counts.
"""
from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from stowage.candidates.results import Exclusion, ReasonCount, StageReport, merge_counts

# What a stage's counts count.
TREES = "trees"
PROVIDERS = "providers"
CHOICES = "provider choices"
COMBINATIONS = "combinations"

# The steps a tree is ruled out at, in order (see the module docstring).
ROOT_TRAITS = "root_traits"
TREE_ROOM = "tree_room"
GROUPS = "groups"
COMBINE = "combine"
TREE_STAGES = (ROOT_TRAITS, TREE_ROOM, GROUPS, COMBINE)

# Reasons of step 2, and the sharing ones among them.
NO_ROOM_IN_TREE = "no_room_in_tree"
NO_INVENTORY_IN_TREE = "no_inventory_in_tree"
# The tree has none of the class; the sharing providers serving it have it,
# but too little.
NO_ROOM_IN_SHARING = "no_room_in_sharing"
# The tree has none of the class; sharing providers have it, but none is in
# an aggregate with a provider of the tree.
NOT_SHARED_WITH = "no_sharing_provider"
ROOM_REASONS = frozenset({NO_ROOM_IN_TREE, NO_INVENTORY_IN_TREE, NO_ROOM_IN_SHARING, NOT_SHARED_WITH})
ROOT_TRAIT_REASONS = frozenset({"missing_root_trait", "forbidden_root_trait"})

# How far a provider got through a suffixed group's checks
# (``reference._single_provider_problem``'s order) before the one it failed.
SINGLE_PROVIDER_RANK = {
    "outside_tree": 0,
    "missing_trait": 1,
    "forbidden_trait": 1,
    "not_in_aggregate": 2,
    "forbidden_aggregate": 3,
    "no_inventory": 4,
    "below_min_unit": 5,
    "above_max_unit": 5,
    "step_size": 5,
    "insufficient_capacity": 5,
}
# ... and through the unsuffixed group's: per class, the inventory, then the
# tree and aggregates (``spread_options``); then the traits of a
# combination of providers, forbidden ones first (``spread_traits``).
SPREAD_RANK = {
    "no_inventory": 0,
    "below_min_unit": 1,
    "above_max_unit": 1,
    "step_size": 1,
    "insufficient_capacity": 1,
    "outside_tree": 2,
    "anchor_root_traits": 2,
    "not_in_aggregate": 3,
    "forbidden_aggregate": 4,
    "forbidden_trait": 5,
    "missing_trait": 6,
}

# How many near misses a stage, and an explanation, keep.
NEAREST_MISSES = 5
# How many exclusion objects a tally tells apart to count repeats cheaply.
TRACKED = 1024
# Below any shortfall: exclusions without one come last among equals.
_FAR = -(1 << 62)


def tree_stage_of(exclusion: Exclusion) -> str:
    """The step of the fast engine's root filter that ``exclusion`` (one of
    ``fast.root_problem``'s) stands for."""
    if exclusion.reason in ROOT_TRAIT_REASONS:
        return ROOT_TRAITS
    if exclusion.reason in ROOM_REASONS:
        return TREE_ROOM
    return GROUPS


def closeness(exclusion: Exclusion, rank: int = 0) -> tuple:
    """Orders exclusions from furthest to closest to fitting: ``rank`` (how
    far the checks got), then the smaller shortfall, the more room, then
    the names (so that the choice never depends on provider order)."""
    shortfall, room = exclusion.shortfall, exclusion.room
    return (
        rank,
        _FAR if shortfall is None else -shortfall,
        _FAR if room is None else room,
        exclusion.reason,
        exclusion.resource_class or "",
        exclusion.trait or "",
        exclusion.group or "",
        _FAR if exclusion.requested is None else -exclusion.requested,
    )


def closer(best: Exclusion | None, exclusion: Exclusion, ranks: dict[str, int]) -> Exclusion:
    """Whichever of ``best`` and ``exclusion`` came closer to fitting."""
    if best is None:
        return exclusion
    if closeness(exclusion, ranks.get(exclusion.reason, 0)) > closeness(
        best, ranks.get(best.reason, 0)
    ):
        return exclusion
    return best


@dataclass(frozen=True)
class StageOutcome:
    """What a stage returns besides its survivors: its report, the first
    few exclusions (examples, for tests and debugging) and the few capacity
    exclusions that came closest to fitting (``nearest``, closest first)."""

    report: StageReport
    exclusions: tuple[Exclusion, ...] = ()
    nearest: tuple[Exclusion, ...] = ()


class ExclusionTally:
    """One stage's exclusions, counted as they come: per reason, per kind
    (reason, class, trait, group, stage) with the closest one's numbers,
    the first few, and the ``NEAREST_MISSES`` nearest misses.

    An exclusion object met again (twin trees replay their original's,
    trees ruled out alike share one: ``Interned``) only adds to its count,
    one dict update: the counts are folded in when the outcome is made.
    Only the first ``TRACKED`` objects are told apart that way, so that
    memory stays bounded when every exclusion is new (a stage over every
    provider); later ones are counted in full each time."""

    __slots__ = ("_added", "_again", "_first", "_kinds", "_nearest", "_reasons")

    def __init__(self) -> None:
        self._reasons: dict[str, int] = {}
        # kind → [count, the closest exclusion of the kind]
        self._kinds: dict[tuple, list] = {}
        self._first: list[Exclusion] = []
        # (-shortfall, -order, exclusion): a max-heap of the closest kept.
        self._nearest: list[tuple[int, int, Exclusion]] = []
        self._added = 0
        # id(exclusion) → [exclusion, weight not counted yet]
        self._again: dict[int, list] = {}

    def add(self, exclusion: Exclusion, weight: int = 1) -> None:
        """Count ``exclusion`` ``weight`` times (one verdict for that many
        items alike)."""
        again = self._again.get(id(exclusion))
        if again is not None:
            again[1] += weight
            return
        if len(self._again) < TRACKED:
            self._again[id(exclusion)] = [exclusion, 0]
        self._count(exclusion, weight)

    def _count(self, exclusion: Exclusion, weight: int) -> None:
        reason = exclusion.reason
        self._reasons[reason] = self._reasons.get(reason, 0) + weight
        key = (reason, exclusion.resource_class, exclusion.trait, exclusion.group, exclusion.stage)
        kind = self._kinds.get(key)
        if kind is None:
            self._kinds[key] = [weight, exclusion]
        else:
            kind[0] += weight
            if _more_room(exclusion, kind[1]):
                kind[1] = exclusion
        self._added += 1
        if len(self._first) < NEAREST_MISSES:
            self._first.append(exclusion)
        shortfall = exclusion.shortfall
        if shortfall is not None and shortfall > 0:
            if any(known is exclusion for _, _, known in self._nearest):
                return
            entry = (-shortfall, -self._added, exclusion)
            if len(self._nearest) < NEAREST_MISSES:
                heapq.heappush(self._nearest, entry)
            elif entry[:2] > self._nearest[0][:2]:
                heapq.heapreplace(self._nearest, entry)

    def __bool__(self) -> bool:
        return bool(self._added)

    def outcome(self, stage: str, group: str | None, kept: int, unit: str) -> StageOutcome:
        for exclusion, weight in self._again.values():
            if weight:
                self._reasons[exclusion.reason] += weight
                key = (exclusion.reason, exclusion.resource_class, exclusion.trait,
                       exclusion.group, exclusion.stage)
                self._kinds[key][0] += weight
        self._again.clear()
        details = merge_counts(
            ReasonCount(
                exclusion.reason, count, exclusion.resource_class, exclusion.trait,
                exclusion.requested, exclusion.room, exclusion.group, exclusion.stage,
            )
            for count, exclusion in self._kinds.values()
        )
        report = StageReport(
            stage, group, kept, tuple(sorted(self._reasons.items())), details, unit
        )
        nearest = [exclusion for _, _, exclusion in sorted(self._nearest, reverse=True)]
        return StageOutcome(report, tuple(self._first), tuple(nearest))


def _more_room(exclusion: Exclusion, than: Exclusion) -> bool:
    room, other = exclusion.room, than.room
    return room is not None and (other is None or room > other)


class Interned:
    """One exclusion object per content (all but the provider) for one
    request: trees ruled out alike share a verdict, which the tallies then
    count with a dict update (``TreeTally``, ``ExclusionTally``). The
    provider kept is the first tree's. At most ``TRACKED`` contents are
    kept; past them an exclusion stays its own (counted all the same)."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[tuple, Exclusion] = {}

    def __call__(self, exclusion: Exclusion) -> Exclusion:
        content = (
            exclusion.reason, exclusion.stage, exclusion.group, exclusion.resource_class,
            exclusion.trait, exclusion.requested, exclusion.used, exclusion.capacity,
            exclusion.free,
        )
        known = self._known.get(content)
        if known is None:
            if len(self._known) >= TRACKED:
                return exclusion
            known = self._known[content] = exclusion
        return known


def nearest_misses(outcomes: Sequence[StageOutcome]) -> tuple[Exclusion, ...]:
    """The capacity exclusions that came closest to fitting, closest first,
    each once (the fast engine's batches may report one kind of root twice,
    the same exclusion object: its verdict cache's)."""
    misses: dict[int, tuple[int, int, int, Exclusion]] = {}
    for index, outcome in enumerate(outcomes):
        for order, exclusion in enumerate(outcome.nearest):
            misses.setdefault(id(exclusion), (exclusion.shortfall or 0, index, order, exclusion))
    closest = heapq.nsmallest(NEAREST_MISSES, misses.values(), key=lambda miss: miss[:3])
    return tuple(exclusion for *_, exclusion in closest)


class TreeTally:
    """Trees ruled out, each counted once under its verdict (a step of the
    module docstring's order and its reason).

    Counted per verdict object first: twin trees share their original's,
    and kinds of roots ruled out alike one verdict (``same``), so a cloud of
    identical hosts costs a dict update per tree. Past ``TRACKED`` verdict
    objects (trees all different, each its own), those are folded into the
    counts per reason: memory stays bounded by the reasons, not the trees.
    """

    __slots__ = ("_totals", "_verdicts", "same")

    def __init__(self) -> None:
        # id(exclusion) → [stage, exclusion, trees], not folded in yet
        self._verdicts: dict[int, list] = {}
        # (stage, group, reason, class, trait) → [trees, stage, the closest exclusion]
        self._totals: dict[tuple, list] = {}
        # What an engine passes a new verdict through, so that trees ruled
        # out alike share it.
        self.same = Interned()

    def add(self, stage: str, exclusion: Exclusion, trees: int = 1) -> None:
        entry = self._verdicts.get(id(exclusion))
        if entry is not None:
            entry[2] += trees
            return
        if len(self._verdicts) >= TRACKED:
            self._fold()
        self._verdicts[id(exclusion)] = [stage, exclusion, trees]

    def _fold(self) -> None:
        totals = self._totals
        for stage, exclusion, trees in self._verdicts.values():
            key = (TREE_STAGES.index(stage), exclusion.group or "", exclusion.group is None,
                   exclusion.reason, exclusion.resource_class or "", exclusion.trait or "")
            known = totals.get(key)
            if known is None:
                totals[key] = [trees, stage, exclusion]
                continue
            known[0] += trees
            if closeness(exclusion) > closeness(known[2]):
                known[2] = exclusion
        self._verdicts.clear()

    def counts(self) -> tuple[ReasonCount, ...]:
        """Trees per (stage, group, reason, class, trait), with the numbers
        of the closest tree of each, most trees first."""
        self._fold()
        counted = [
            ReasonCount(
                exclusion.reason, trees, exclusion.resource_class, exclusion.trait,
                exclusion.requested, exclusion.room, exclusion.group, stage,
            )
            for key, (trees, stage, exclusion) in sorted(self._totals.items())
        ]
        # Most trees first; among equals, in the order trees are ruled out.
        return tuple(sorted(counted, key=lambda count: -count.count))
