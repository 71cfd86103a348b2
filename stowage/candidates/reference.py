"""The reference candidate engine: pure functions over a snapshot.

Readable and exhaustive rather than fast; the fast engine is checked against
it. No SQL and no HTTP here. The pipeline (``find_candidates``) runs:

1. ``allowed_anchor_roots``  root_required / root_forbidden (1.35)
2. per request group, ``single_provider_choices`` (suffixed or resourceless
   groups) or ``spread_choices`` (the unsuffixed group): every way the group
   alone can be satisfied, each tagged with the root ("anchor") of the tree
   it serves
3. ``combine``  one choice per group around a common anchor, filtered by
   group_policy, same_subtree and the capacity left after summing the groups
4. ``exclude_nested_combinations``  before 1.29 only
5. ``summarize`` and ``apply_limit``

Each stage counts what it excludes (``attribution.ExclusionTally``: counts
and the nearest misses, never a list of every exclusion); each tree without
a candidate is then counted once, in ``attribution``'s order
(``tree_verdict``), by the same rules the fast engine applies (the room and
group checks below, ``room_problem``, ``group_problem``,
``combination_problem``).

Semantics follow upstream Placement:

* a suffixed group takes all its resources from one provider, which itself
  has the required traits and aggregates;
* the unsuffixed group may take each resource class from a different
  provider of one tree, or from a sharing provider
  (MISC_SHARES_VIA_AGGREGATE) in an aggregate with a provider of that tree;
  its required traits must be present on the providers it takes from,
  collectively, and none of them may have a forbidden trait; ``member_of``
  is satisfied by the provider or by the root of the tree it serves;
* a sharing provider serves the trees of every provider it shares an
  aggregate with, for suffixed groups too.
"""
from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from stowage.candidates import attribution
from stowage.candidates.attribution import (
    CHOICES,
    COMBINATIONS,
    PROVIDERS,
    SINGLE_PROVIDER_RANK,
    SPREAD_RANK,
    TREES,
    ExclusionTally,
    StageOutcome,
    TreeTally,
    closeness,
    closer,
)
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GenerationStrategy,
    GroupPolicy,
    RequestGroup,
)
from stowage.candidates.results import (
    Allocation,
    AnyCandidate,
    Candidate,
    CandidateResult,
    Exclusion,
    Explanation,
    ProviderSummary,
    ResourceSummary,
    TreeVerdict,
)
from stowage.candidates.snapshot import Inventory, Provider, Snapshot

# ``apply_limit`` serves both engines: it keeps whichever kind of candidate
# it is given.
_AnyCandidate = TypeVar("_AnyCandidate", bound=AnyCandidate)


@dataclass(frozen=True)
class GroupChoice:
    """One way to satisfy one request group, serving the tree of ``anchor``.

    ``providers`` are the providers the group maps to (for a resourceless
    group, the provider it picked).
    """

    suffix: str
    anchor: str
    allocations: tuple[Allocation, ...]
    providers: frozenset[str]


def stage_outcome(
    stage: str, group: str | None, kept: int, exclusions: Iterable[Exclusion], unit: str
) -> StageOutcome:
    """A stage's report: what it kept, and its exclusions counted by reason."""
    tally = ExclusionTally()
    for exclusion in exclusions:
        tally.add(exclusion)
    return tally.outcome(stage, group, kept, unit)


# --- Provider-level predicates ----------------------------------------------------------


def satisfies_traits(
    traits: frozenset[str] | set[str], required: Iterable[frozenset[str]]
) -> str | None:
    """The first unmet any-of set (as ``A|B``), or None if all are met."""
    for any_of in required:
        if not any_of & traits:
            return "|".join(sorted(any_of))
    return None


def in_aggregates(provider: Provider, member_of: Iterable[frozenset[str]]) -> bool:
    """The provider itself is in at least one aggregate of every set."""
    return all(any_of & provider.aggregates for any_of in member_of)


def resource_problem(
    provider: Provider, resource_class: str, amount: int, stage: str, group: str
) -> Exclusion | None:
    """Why ``provider`` cannot give ``amount`` of ``resource_class``, or None."""
    inventory = provider.inventories.get(resource_class)
    if inventory is None:
        return Exclusion(stage, "no_inventory", group, provider.uuid, resource_class, amount)
    unit = inventory.unit_problem(amount)
    if unit is None and inventory.has_room(amount):
        return None
    return Exclusion(
        stage,
        unit or "insufficient_capacity",
        group,
        provider.uuid,
        resource_class,
        amount,
        inventory.used,
        inventory.capacity,
    )


# --- Stage 1: anchors allowed by root traits -------------------------------------------


def allowed_anchor_roots(
    snapshot: Snapshot, request: CandidateRequest
) -> tuple[frozenset[str] | None, StageOutcome]:
    """Roots having every ``root_required`` and no ``root_forbidden`` trait.

    None means no root filter was asked for.
    """
    stage = "root_traits"
    tally = ExclusionTally()
    if not (request.root_required or request.root_forbidden):
        return None, tally.outcome(stage, None, len(snapshot.roots), TREES)
    allowed = set()
    for root in snapshot.roots:
        problem = root_trait_problem(root, request, stage)
        if problem is None:
            allowed.add(root.uuid)
        else:
            tally.add(problem)
    return frozenset(allowed), tally.outcome(stage, None, len(allowed), TREES)


def root_trait_problem(root: Provider, request: CandidateRequest, stage: str) -> Exclusion | None:
    """Why ``root`` cannot anchor a candidate for its traits (1.35), or None."""
    missing = request.root_required - root.traits
    if missing:
        return Exclusion(stage, "missing_root_trait", None, root.uuid, trait=min(missing))
    forbidden = request.root_forbidden & root.traits
    if forbidden:
        return Exclusion(stage, "forbidden_root_trait", None, root.uuid, trait=min(forbidden))
    return None


def _tree_root(snapshot: Snapshot, group: RequestGroup) -> str | None:
    """Root of the ``in_tree`` provider; "" when that provider does not exist."""
    if group.in_tree is None:
        return None
    provider = snapshot.by_uuid.get(group.in_tree)
    return provider.root_uuid if provider else ""


def _ordered(snapshot: Snapshot, uuids: Iterable[str]) -> list[str]:
    return sorted(uuids, key=snapshot.order.__getitem__)


# --- Stage 2a: groups satisfied by one provider -----------------------------------------


def single_provider_choices(
    snapshot: Snapshot, group: RequestGroup, allowed_roots: frozenset[str] | None
) -> tuple[list[GroupChoice], StageOutcome]:
    """Every (provider, anchor) that satisfies a group all by itself.

    The provider must have the group's traits and aggregates itself and room
    for every requested class. It serves its own tree and, if it is a sharing
    provider, the trees it shares with.
    """
    stage = "single_provider"
    tree_root = _tree_root(snapshot, group)
    choices: list[GroupChoice] = []
    tally = ExclusionTally()
    for provider in snapshot.providers:
        problem = _single_provider_problem(provider, group, tree_root, stage)
        if problem is not None:
            tally.add(problem)
            continue
        anchors = {provider.root_uuid}
        if provider.is_sharing:
            anchors |= snapshot.anchors_of_sharing(provider)
        allocations = tuple(
            Allocation(provider.uuid, resource_class, amount)
            for resource_class, amount in group.resources
        )
        for anchor in _ordered(snapshot, anchors):
            if allowed_roots is not None and anchor not in allowed_roots:
                tally.add(Exclusion(stage, "anchor_root_traits", group.suffix, provider.uuid))
                continue
            choices.append(
                GroupChoice(group.suffix, anchor, allocations, frozenset([provider.uuid]))
            )
    return choices, tally.outcome(stage, group.suffix, len(choices), PROVIDERS)


def _single_provider_problem(
    provider: Provider, group: RequestGroup, tree_root: str | None, stage: str
) -> Exclusion | None:
    suffix = group.suffix
    if tree_root is not None and provider.root_uuid != tree_root:
        return Exclusion(stage, "outside_tree", suffix, provider.uuid)
    problem = trait_problem(provider, group, stage)
    if problem is not None:
        return problem
    if not in_aggregates(provider, group.member_of):
        return Exclusion(stage, "not_in_aggregate", suffix, provider.uuid)
    if group.forbidden_aggregates & provider.aggregates:
        return Exclusion(stage, "forbidden_aggregate", suffix, provider.uuid)
    for resource_class, amount in group.resources:
        problem = resource_problem(provider, resource_class, amount, stage, suffix)
        if problem is not None:
            return problem
    return None


def trait_problem(provider: Provider, group: RequestGroup, stage: str) -> Exclusion | None:
    """Why ``provider`` cannot hold ``group`` for its traits, or None."""
    missing = satisfies_traits(provider.traits, group.required_traits)
    if missing is not None:
        return Exclusion(stage, "missing_trait", group.suffix, provider.uuid, trait=missing)
    forbidden = group.forbidden_traits & provider.traits
    if forbidden:
        return Exclusion(
            stage, "forbidden_trait", group.suffix, provider.uuid, trait=min(forbidden)
        )
    return None


# --- Stage 2b: the unsuffixed group, spread over a tree and sharing providers ------------


def spread_options(
    snapshot: Snapshot, group: RequestGroup, allowed_roots: frozenset[str] | None
) -> tuple[dict[str, dict[str, list[str]]], StageOutcome]:
    """Anchor → resource class → providers that can give that class to it.

    A provider serves its own tree; a sharing provider (itself in the
    group's aggregates) also serves the trees it shares with, unless the
    group is confined to one tree with ``in_tree``. ``member_of`` is met by
    the provider or by the anchor; neither may be in a forbidden aggregate.
    """
    stage = "spread_options"
    tree_root = _tree_root(snapshot, group)
    options: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    tally = ExclusionTally()
    kept = 0
    for resource_class, amount in group.resources:
        for provider in snapshot.providers:
            problem = resource_problem(provider, resource_class, amount, stage, group.suffix)
            if problem is not None:
                tally.add(problem)
                continue
            anchors = {provider.root_uuid}
            if (
                provider.is_sharing
                and tree_root is None
                and in_aggregates(provider, group.member_of)
            ):
                anchors |= snapshot.anchors_of_sharing(provider)
            for anchor in _ordered(snapshot, anchors):
                reason = _anchor_problem(
                    provider, snapshot.by_uuid[anchor], group, tree_root, allowed_roots
                )
                if reason is not None:
                    tally.add(Exclusion(stage, reason, group.suffix, provider.uuid, resource_class))
                    continue
                options[anchor][resource_class].append(provider.uuid)
                kept += 1
    return options, tally.outcome(stage, group.suffix, kept, PROVIDERS)


def _anchor_problem(
    provider: Provider,
    root: Provider,
    group: RequestGroup,
    tree_root: str | None,
    allowed_roots: frozenset[str] | None,
) -> str | None:
    """Why ``provider`` cannot give the unsuffixed group resources for the
    tree of ``root`` (the anchor), or None."""
    anchor = root.uuid
    if tree_root is not None and anchor != tree_root:
        return "outside_tree"
    if allowed_roots is not None and anchor not in allowed_roots:
        return "anchor_root_traits"
    if group.member_of and not (
        in_aggregates(provider, group.member_of) or in_aggregates(root, group.member_of)
    ):
        return "not_in_aggregate"
    if group.forbidden_aggregates & (provider.aggregates | root.aggregates):
        return "forbidden_aggregate"
    return None


def spread_choices(
    snapshot: Snapshot, group: RequestGroup, allowed_roots: frozenset[str] | None
) -> tuple[list[GroupChoice], list[StageOutcome]]:
    """Every way to take each requested class from some provider serving an
    anchor, such that the providers used collectively have the required
    traits and none has a forbidden one."""
    options, options_outcome = spread_options(snapshot, group, allowed_roots)
    stage = "spread_traits"
    choices: list[GroupChoice] = []
    tally = ExclusionTally()
    classes = group.resource_classes
    for anchor in _ordered(snapshot, options):
        by_class = options[anchor]
        if any(not by_class.get(resource_class) for resource_class in classes):
            missing = next(name for name in classes if not by_class.get(name))
            tally.add(Exclusion(stage, "class_unavailable", group.suffix, anchor, missing))
            continue
        for picked in itertools.product(*(by_class[name] for name in classes)):
            problem = _spread_trait_problem(
                [snapshot.by_uuid[uuid] for uuid in picked], group, anchor, stage
            )
            if problem is not None:
                tally.add(problem)
                continue
            allocations = tuple(
                Allocation(provider, resource_class, amount)
                for provider, (resource_class, amount) in zip(picked, group.resources, strict=False)
            )
            choices.append(GroupChoice(group.suffix, anchor, allocations, frozenset(picked)))
    return choices, [options_outcome, tally.outcome(stage, group.suffix, len(choices), CHOICES)]


def _spread_trait_problem(
    providers: Sequence[Provider], group: RequestGroup, anchor: str, stage: str
) -> Exclusion | None:
    """Why the unsuffixed group cannot take its classes from ``providers``
    (one per class) for their traits, taken together, or None."""
    traits = frozenset().union(*(provider.traits for provider in providers))
    forbidden = group.forbidden_traits & traits
    if forbidden:
        return Exclusion(stage, "forbidden_trait", group.suffix, anchor, trait=min(forbidden))
    missing = satisfies_traits(traits, group.required_traits)
    if missing is not None:
        return Exclusion(stage, "missing_trait", group.suffix, anchor, trait=missing)
    return None


def group_choices(
    snapshot: Snapshot, group: RequestGroup, allowed_roots: frozenset[str] | None
) -> tuple[list[GroupChoice], list[StageOutcome]]:
    """Choices for one group; resourceless groups always pick one provider."""
    if group.single_provider or not group.resources:
        choices, outcome = single_provider_choices(snapshot, group, allowed_roots)
        return choices, [outcome]
    return spread_choices(snapshot, group, allowed_roots)


# --- Stage 3: combining the groups ------------------------------------------------------


def violates_isolation(picked: Sequence[GroupChoice]) -> bool:
    """Under group_policy=isolate, suffixed groups need distinct providers."""
    providers = [
        next(iter(choice.providers)) for choice in picked if choice.suffix != ""
    ]
    return len(set(providers)) != len(providers)


def in_same_subtree(snapshot: Snapshot, providers: set[str]) -> bool:
    """One of ``providers`` is an ancestor (or itself) of all the others."""
    if len(providers) <= 1:
        return True
    common = set.intersection(*(set(snapshot.ancestry(uuid)) for uuid in providers))
    return bool(common & providers)


def violates_same_subtree(
    snapshot: Snapshot, request: CandidateRequest, picked: Sequence[GroupChoice]
) -> bool:
    by_suffix = {choice.suffix: choice for choice in picked}
    for suffixes in request.same_subtrees:
        providers = set().union(
            *(by_suffix[suffix].providers for suffix in suffixes if suffix in by_suffix)
        )
        if not in_same_subtree(snapshot, providers):
            return True
    return False


def consolidate(picked: Sequence[GroupChoice], anchor: str) -> Candidate:
    """Sum the groups' allocations per provider and class; gather mappings."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for choice in picked:
        for allocation in choice.allocations:
            totals[(allocation.provider, allocation.resource_class)] += allocation.amount
    mappings: dict[str, set[str]] = defaultdict(set)
    for choice in picked:
        mappings[choice.suffix] |= choice.providers
    return Candidate(
        allocations=tuple(
            Allocation(provider, resource_class, amount)
            for (provider, resource_class), amount in sorted(totals.items())
        ),
        mappings=tuple(
            sorted((suffix, tuple(sorted(uuids))) for suffix, uuids in mappings.items())
        ),
        anchor=anchor,
    )


def capacity_problem(snapshot: Snapshot, candidate: Candidate) -> Exclusion | None:
    """The first summed allocation over capacity or max_unit, or None.

    Only capacity and max_unit are checked again: each group's amount
    already met min_unit and step_size, and so does their sum.
    """
    for allocation in candidate.allocations:
        inventory = snapshot.by_uuid[allocation.provider].inventories[allocation.resource_class]
        if not inventory.has_room(allocation.amount) or allocation.amount > inventory.max_unit:
            fits = inventory.has_room(allocation.amount)
            return Exclusion(
                "combine",
                "above_max_unit" if fits else "insufficient_capacity",
                None,
                allocation.provider,
                allocation.resource_class,
                allocation.amount,
                inventory.used,
                inventory.capacity,
            )
    return None


def nested_problem(snapshot: Snapshot, candidate: Candidate) -> bool:
    """Takes resources from two providers of one tree (invisible before 1.29)."""
    providers = candidate.providers
    roots = {snapshot.by_uuid[uuid].root_uuid for uuid in providers}
    return len(roots) != len(providers)


def _combinations(
    choices_by_group: Sequence[dict[str, list[GroupChoice]]],
    anchors: Sequence[str],
    strategy: GenerationStrategy,
) -> Iterator[tuple[str, tuple[GroupChoice, ...]]]:
    """Lazily, (anchor, one choice per group) in the strategy's anchor order."""

    def per_anchor(anchor: str) -> Iterator[tuple[str, tuple[GroupChoice, ...]]]:
        for picked in itertools.product(*(choices[anchor] for choices in choices_by_group)):
            yield anchor, picked

    generators = [per_anchor(anchor) for anchor in anchors]
    if strategy is GenerationStrategy.DEPTH_FIRST:
        yield from itertools.chain.from_iterable(generators)
    else:
        yield from round_robin(generators)


def round_robin(generators: Sequence[Iterator]) -> Iterator:
    """One item from each generator in turn until all are exhausted (items
    must not be None)."""
    active = list(generators)
    while active:
        still_active = []
        for generator in active:
            item = next(generator, None)
            if item is not None:
                yield item
                still_active.append(generator)
        active = still_active


def combine(
    snapshot: Snapshot,
    request: CandidateRequest,
    choices_by_group: Sequence[list[GroupChoice]],
    options: EngineOptions,
    explain: bool = True,
) -> tuple[list[Candidate], StageOutcome, Combined]:
    """Distinct candidates taking one choice per group around one anchor;
    which anchors had a valid combination and (``explain``), for the
    others, the combination that came closest."""
    stage = "combine"
    indexed: list[dict[str, list[GroupChoice]]] = []
    for choices in choices_by_group:
        by_anchor: dict[str, list[GroupChoice]] = defaultdict(list)
        for choice in choices:
            by_anchor[choice.anchor].append(choice)
        indexed.append(by_anchor)
    anchors = _ordered(snapshot, set.intersection(*(set(by_anchor) for by_anchor in indexed)))
    candidates: list[Candidate] = []
    seen: set[tuple] = set()
    tally = ExclusionTally()
    combined = Combined()
    for anchor, picked in _combinations(indexed, anchors, options.strategy):
        problem = _combination_problem(snapshot, request, picked, anchor)
        if problem is not None:
            tally.add(problem)
            if explain:
                combined.failed(anchor, combination_problem(snapshot, request, picked, anchor))
            continue
        combined.fitting.add(anchor)
        candidate = consolidate(picked, anchor)
        if candidate.identity in seen:
            continue
        seen.add(candidate.identity)
        candidates.append(candidate)
        if 0 <= options.max_candidates <= len(candidates):
            break
    return candidates, tally.outcome(stage, None, len(candidates), COMBINATIONS), combined


def _combination_problem(
    snapshot: Snapshot, request: CandidateRequest, picked: Sequence[GroupChoice], anchor: str
) -> Exclusion | None:
    """Why one choice per group around ``anchor`` is no candidate, checked
    as a whole: isolation, same_subtree, the summed capacity, nesting."""
    stage = "combine"
    if request.group_policy is GroupPolicy.ISOLATE and violates_isolation(picked):
        return Exclusion(stage, "group_policy", None, anchor)
    if violates_same_subtree(snapshot, request, picked):
        return Exclusion(stage, "same_subtree", None, anchor)
    candidate = consolidate(picked, anchor)
    problem = capacity_problem(snapshot, candidate)
    if problem is not None:
        return problem
    if not request.nested_aware and nested_problem(snapshot, candidate):
        return Exclusion(stage, "nested_before_1.29", None, anchor)
    return None


def partial_problem(
    by_uuid: Mapping[str, Provider],
    isolate: bool,
    earlier: Sequence[GroupChoice],
    choice: GroupChoice,
    totals: Mapping[tuple[str, str], int],
    anchor: str,
) -> Exclusion | None:
    """Why ``choice`` cannot follow the ``earlier`` choices (whose
    allocations sum to ``totals``) in any candidate: the sums overflow a
    capacity or max_unit, or (``isolate``) a suffixed group lands on a
    provider an earlier one took. Sums only grow, so no completion could
    pass; the fast engine prunes on it, and it is how both engines find the
    combination that got furthest (``combination_problem``)."""
    for allocation in choice.allocations:
        provider, resource_class = allocation.provider, allocation.resource_class
        amount = totals.get((provider, resource_class), 0) + allocation.amount
        inventory = by_uuid[provider].inventories[resource_class]
        if not inventory.has_room(amount):
            return _over(inventory, "insufficient_capacity", provider, amount)
        if amount > inventory.max_unit:
            return _over(inventory, "above_max_unit", provider, amount)
    if isolate and choice.suffix != "":
        taken = next(iter(choice.providers))
        if any(other.suffix != "" and taken in other.providers for other in earlier):
            return Exclusion("combine", "group_policy", None, anchor)
    return None


def _over(inventory: Inventory, reason: str, provider: str, amount: int) -> Exclusion:
    return Exclusion(
        "combine", reason, None, provider, inventory.resource_class, amount,
        inventory.used, inventory.capacity,
    )


def combination_problem(
    snapshot: Snapshot, request: CandidateRequest, picked: Sequence[GroupChoice], anchor: str
) -> tuple[int, Exclusion] | None:
    """How far one choice per group got, and why it is no candidate (None
    if it is one): the first group whose choice ``partial_problem`` turns
    away (its index), else ``same_subtree`` (the number of groups), else
    nesting before 1.29 (one more). Both engines rank a tree's failed
    combinations by this to name the closest (attribution step 5)."""
    isolate = request.group_policy is GroupPolicy.ISOLATE
    totals: dict[tuple[str, str], int] = {}
    for depth, choice in enumerate(picked):
        problem = partial_problem(snapshot.by_uuid, isolate, picked[:depth], choice, totals, anchor)
        if problem is not None:
            return depth, problem
        for allocation in choice.allocations:
            key = (allocation.provider, allocation.resource_class)
            totals[key] = totals.get(key, 0) + allocation.amount
    if violates_same_subtree(snapshot, request, picked):
        return len(picked), Exclusion("combine", "same_subtree", None, anchor)
    if not request.nested_aware and nested_problem(snapshot, consolidate(picked, anchor)):
        return len(picked) + 1, Exclusion("combine", "nested_before_1.29", None, anchor)
    return None


class Combined:
    """Per anchor, whether some combination around it is a candidate
    (``fitting``), else the failed combination that got furthest
    (``closest``: anchor → (how far, why))."""

    __slots__ = ("closest", "fitting")

    def __init__(self) -> None:
        self.fitting: set[str] = set()
        self.closest: dict[str, tuple[int, Exclusion]] = {}

    def failed(self, anchor: str, failure: tuple[int, Exclusion] | None) -> None:
        if failure is None:
            return
        known = self.closest.get(anchor)
        if known is None or further(failure, known):
            self.closest[anchor] = failure


def further(failure: tuple[int, Exclusion], than: tuple[int, Exclusion]) -> bool:
    """Whether one failed combination got further than another (then came
    closer: ``attribution.closeness``)."""
    return (failure[0], closeness(failure[1])) > (than[0], closeness(than[1]))


# --- Stage 5: summaries and limit -------------------------------------------------------


def summarize(
    snapshot: Snapshot, candidates: Sequence[Candidate], nested_aware: bool
) -> list[ProviderSummary]:
    """Summaries of every provider in the trees the candidates take from.

    Before 1.29 only the providers the candidates take from are listed.
    """
    used = set().union(*(candidate.providers for candidate in candidates))
    if nested_aware:
        roots = {snapshot.by_uuid[uuid].root_uuid for uuid in used}
        listed = [provider for provider in snapshot.providers if provider.root_uuid in roots]
    else:
        listed = [provider for provider in snapshot.providers if provider.uuid in used]
    return [provider_summary(snapshot, provider) for provider in listed]


def provider_summary(snapshot: Snapshot, provider: Provider) -> ProviderSummary:
    return ProviderSummary(
        uuid=provider.uuid,
        parent_uuid=provider.parent_uuid,
        root_uuid=provider.root_uuid,
        resources=tuple(
            ResourceSummary(name, inventory.capacity, inventory.used)
            for name, inventory in sorted(provider.inventories.items())
        ),
        traits=snapshot.listed_traits(provider),
    )


def apply_limit(
    snapshot: Snapshot,
    candidates: list[_AnyCandidate],
    summaries: list[ProviderSummary],
    limit: int | None,
    options: EngineOptions,
) -> tuple[list[_AnyCandidate], list[ProviderSummary]]:
    """Keep ``limit`` candidates (a random sample when randomizing) and the
    summaries of the trees they still take from; otherwise maybe shuffle."""
    rng = random.Random(options.seed)
    if limit is not None and limit < len(candidates):
        if options.randomize:
            candidates = rng.sample(candidates, limit)
        else:
            candidates = candidates[:limit]
        roots = {
            snapshot.by_uuid[uuid].root_uuid
            for candidate in candidates
            for uuid in candidate.providers
        }
        summaries = [summary for summary in summaries if summary.root_uuid in roots]
    elif options.randomize:
        candidates = list(candidates)
        rng.shuffle(candidates)
    return candidates, summaries


# --- Why a tree has no candidate (``attribution``'s order) ------------------------------


def smallest_amounts(request: CandidateRequest) -> dict[str, int]:
    """Per requested class, the smallest amount any group asks for, in the
    order the request first names the classes."""
    smallest: dict[str, int] = {}
    for group in request.groups:
        for resource_class, amount in group.resources:
            smallest[resource_class] = min(amount, smallest.get(resource_class, amount))
    return smallest


def room_problem(
    root: str,
    free: Mapping[str, int],
    shared: Callable[[], Mapping[str, int]],
    smallest: Mapping[str, int],
    shares_class: Callable[[str], bool],
    stage: str,
    made: dict[tuple, Exclusion] | None = None,
) -> Exclusion | None:
    """Why no provider of ``root``'s tree can give some requested class
    (attribution step 2), or None: ``free`` is, per class, the most any
    provider of the tree has room for, ``shared()`` the same over the
    sharing providers serving it (asked for only when the tree falls short),
    ``smallest`` the smallest amount asked per class, ``shares_class``
    whether any sharing provider at all has a class.

    The reason says where the class was looked for: the tree has too
    little (``no_room_in_tree``, the best room of the tree and of its
    sharing providers), or none and its sharing providers too little
    (``no_room_in_sharing``), or none and no sharing provider of it shares
    an aggregate with the tree (``no_sharing_provider``), or nobody shares
    it at all (``no_inventory_in_tree``).

    ``made`` (the fast engine's, per request) keeps the exclusions made, by
    what they say: trees found short alike then share one, named after the
    first of them, instead of one made per kind of root.
    """
    shared_room: Mapping[str, int] | None = None
    for resource_class, amount in smallest.items():
        if free.get(resource_class, -1) >= amount:
            continue
        if shared_room is None:
            shared_room = shared()
        if shared_room.get(resource_class, -1) >= amount:
            continue
        rooms = [room[resource_class] for room in (free, shared_room) if resource_class in room]
        if resource_class in free:
            reason = attribution.NO_ROOM_IN_TREE
        elif resource_class in shared_room:
            reason = attribution.NO_ROOM_IN_SHARING
        elif shares_class(resource_class):
            reason = attribution.NOT_SHARED_WITH
        else:
            reason = attribution.NO_INVENTORY_IN_TREE
        best = max(rooms) if rooms else None
        if made is None:
            return Exclusion(stage, reason, None, root, resource_class, amount, free=best)
        key = (reason, resource_class, amount, best)
        known = made.get(key)
        if known is None:
            known = made[key] = Exclusion(
                stage, reason, None, root, resource_class, amount, free=best
            )
        return known
    return None


def group_problem(
    root: Provider,
    members: Sequence[Provider],
    serving: Sequence[Provider],
    group: RequestGroup,
    tree_root: str | None,
) -> Exclusion | None:
    """Why no provider of ``root``'s tree (``members``) nor a sharing
    provider serving it (``serving``: of other trees, in an aggregate with
    one of its providers) can satisfy ``group`` on its own, or None if one
    can (attribution step 4): the exclusion that came closest, by the
    group's own checks, so that it names what the tree lacks. ``tree_root``
    is the root of the group's ``in_tree`` provider.
    """
    suffix = group.suffix
    if group.single_provider or not group.resources:
        best: Exclusion | None = None
        for provider in itertools.chain(members, serving):
            problem = _single_provider_problem(provider, group, tree_root, "single_provider")
            if problem is None:
                return None
            best = closer(best, problem, SINGLE_PROVIDER_RANK)
        return best
    # The unsuffixed group: a sharing provider serves other trees only when
    # it is in the group's aggregates itself (``spread_options``).
    providers = list(members)
    if tree_root is None:
        providers += [provider for provider in serving if in_aggregates(provider, group.member_of)]
    by_class: list[list[Provider]] = []
    for resource_class, amount in group.resources:
        usable: list[Provider] = []
        best = None
        for provider in providers:
            problem = resource_problem(provider, resource_class, amount, "spread_options", suffix)
            if problem is None:
                reason = _anchor_problem(provider, root, group, tree_root, None)
                if reason is None:
                    usable.append(provider)
                    continue
                problem = Exclusion(
                    "spread_options", reason, suffix, provider.uuid, resource_class
                )
            best = closer(best, problem, SPREAD_RANK)
        if not usable:
            return best
        by_class.append(usable)
    best = None
    for picked in itertools.product(*by_class):
        problem = _spread_trait_problem(picked, group, root.uuid, "spread_traits")
        if problem is None:
            return None
        best = closer(best, problem, SPREAD_RANK)
    return best


class _Trees:
    """What the reference looks up to say why a tree has no candidate: its
    providers, the sharing providers serving it, and whether anything
    shares with it."""

    def __init__(self, snapshot: Snapshot, request: CandidateRequest) -> None:
        self.snapshot = snapshot
        self.smallest = smallest_amounts(request)
        self.sharing = [provider for provider in snapshot.providers if provider.is_sharing]
        self.sharing_aggregates = frozenset().union(
            *(provider.aggregates for provider in self.sharing)
        )
        self.shared_classes = frozenset(
            name for provider in self.sharing for name in provider.inventories
        )

    def members(self, root: str) -> tuple[Provider, ...]:
        return self.snapshot.tree_members[root]

    def serving(self, root: str) -> list[Provider]:
        """Sharing providers in an aggregate with a provider of the tree."""
        return [
            provider for provider in self.sharing
            if root in self.snapshot.anchors_of_sharing(provider)
        ]

    def free(self, root: str) -> dict[str, int]:
        """Per class, the most room any provider of the tree has (none
        recorded below 0), as the fast engine's read model keeps it."""
        room: dict[str, int] = {}
        for provider in self.members(root):
            for name, inventory in provider.inventories.items():
                if inventory.capacity - inventory.used > room.get(name, -1):
                    room[name] = inventory.capacity - inventory.used
        return room

    def shared(self, root: str) -> dict[str, int]:
        """Per class, the most room any sharing provider serving the tree
        has (-1 at least), as the fast engine's read model works it out."""
        room: dict[str, int] = {}
        for provider in self.serving(root):
            for name, inventory in provider.inventories.items():
                room[name] = max(room.get(name, -1), inventory.capacity - inventory.used)
        return room

    def is_lone(self, root: str) -> bool:
        """One provider, not sharing, in no aggregate a sharing provider is in."""
        members = self.members(root)
        return (
            len(members) == 1
            and not members[0].is_sharing
            and members[0].aggregates.isdisjoint(self.sharing_aggregates)
        )


def tree_verdict(
    trees: _Trees,
    request: CandidateRequest,
    root: Provider,
    unserved: Mapping[str, Exclusion],
    combined: Combined,
) -> TreeVerdict | None:
    """Why ``root``'s tree anchors no candidate: the first step of
    ``attribution``'s order that rules it out; None if none does (it was
    not looked at: ``max_candidates`` stopped the search first)."""
    problem = root_trait_problem(root, request, "root_traits")
    if problem is not None:
        return TreeVerdict(attribution.ROOT_TRAITS, problem)
    problem = room_problem(
        root.uuid, trees.free(root.uuid), lambda: trees.shared(root.uuid),
        trees.smallest, trees.shared_classes.__contains__, "tree_room",
    )
    if problem is not None:
        return TreeVerdict(attribution.TREE_ROOM, problem)
    if trees.is_lone(root.uuid):
        for group in request.groups:
            problem = trait_problem(root, group, "lone_traits")
            if problem is not None:
                return TreeVerdict(attribution.GROUPS, problem)
    problem = unserved.get(root.uuid)
    if problem is not None:
        return TreeVerdict(attribution.GROUPS, problem)
    closest = combined.closest.get(root.uuid)
    if closest is not None:
        return TreeVerdict(attribution.COMBINE, closest[1])
    return None


def _unserved(
    trees: _Trees,
    group: RequestGroup,
    choices: Sequence[GroupChoice],
    running: Sequence[str],
    unserved: dict[str, Exclusion],
) -> list[str]:
    """The ``running`` roots that ``group`` has a choice for; the others
    go to ``unserved`` with why (``group_problem``)."""
    served = {choice.anchor for choice in choices}
    tree_root = _tree_root(trees.snapshot, group)
    still = []
    for root in running:
        if root in served:
            still.append(root)
            continue
        provider = trees.snapshot.by_uuid[root]
        serving = [other for other in trees.serving(root) if other.root_uuid != root]
        problem = group_problem(provider, trees.members(root), serving, group, tree_root)
        # Never None where the group stage found no choice (a property test
        # holds them to it); a placeholder rather than a crash if it were.
        unserved[root] = problem or Exclusion("groups", "no_choice", group.suffix, root)
    return still


# --- The pipeline -------------------------------------------------------------------------


def find_candidates(
    snapshot: Snapshot,
    request: CandidateRequest,
    options: EngineOptions = EngineOptions(),
    explain: bool = True,
) -> CandidateResult:
    """Every allocation candidate for ``request`` over ``snapshot``.

    The stage order is fixed here. No candidates is an ordinary empty result;
    its explanation says which stage emptied it, why each tree has no
    candidate (``attribution``'s order), and what came closest. Without
    ``explain`` the trees are not told apart (no ``excluded_trees``).
    """
    outcomes: list[StageOutcome] = []
    # Root traits first: cheap, and they narrow every group's anchors.
    allowed_roots, outcome = allowed_anchor_roots(snapshot, request)
    outcomes.append(outcome)
    # Why the trees each group leaves out have no choice (explaining only).
    trees = _Trees(snapshot, request) if explain else None
    unserved: dict[str, Exclusion] = {}
    running = [root.uuid for root in snapshot.roots
               if allowed_roots is None or root.uuid in allowed_roots]
    # Each group on its own next; one group with no way to be met ends the
    # search before any combination is tried.
    choices_by_group = []
    for group in request.groups:
        choices, group_outcomes = group_choices(snapshot, group, allowed_roots)
        outcomes.extend(group_outcomes)
        if trees is not None:
            running = _unserved(trees, group, choices, running, unserved)
        if not choices:
            return CandidateResult.empty(
                _explain(snapshot, request, outcomes, trees, unserved, Combined())
            )
        choices_by_group.append(choices)
    # Combination last: it is the only exponential stage, and it rechecks
    # capacity because groups add up on shared providers.
    candidates, outcome, combined = combine(snapshot, request, choices_by_group, options, explain)
    outcomes.append(outcome)
    # Summaries before the limit, so a limited answer keeps the same view of
    # each remaining tree as the full answer would.
    summaries = summarize(snapshot, candidates, request.nested_aware)
    candidates, summaries = apply_limit(snapshot, candidates, summaries, request.limit, options)
    return CandidateResult(
        tuple(candidates),
        tuple(summaries),
        _explain(snapshot, request, outcomes, trees, unserved, combined),
    )


def _explain(
    snapshot: Snapshot,
    request: CandidateRequest,
    outcomes: Sequence[StageOutcome],
    trees: _Trees | None,
    unserved: Mapping[str, Exclusion],
    combined: Combined,
) -> Explanation:
    """Stage counts, each tree left out counted once, and the capacity
    misses that came closest to fitting."""
    counted = TreeTally()
    if trees is not None:
        for root in snapshot.roots:
            if root.uuid in combined.fitting:
                continue
            verdict = tree_verdict(trees, request, root, unserved, combined)
            if verdict is not None:
                counted.add(verdict.stage, verdict.exclusion)
    return Explanation(
        stages=tuple(outcome.report for outcome in outcomes),
        nearest_misses=attribution.nearest_misses(outcomes),
        trees=len(snapshot.roots),
        excluded_trees=counted.counts(),
        fitting_trees=len(combined.fitting),
    )
