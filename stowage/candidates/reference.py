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

import heapq
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
    StageReport,
    tally,
)
from stowage.candidates.snapshot import Provider, Snapshot

# How many near misses an explanation keeps.
_NEAREST_MISSES = 5

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


@dataclass(frozen=True)
class StageOutcome:
    """What a stage returns besides its survivors."""

    report: StageReport
    exclusions: tuple[Exclusion, ...]


def stage_outcome(
    stage: str, group: str | None, kept: int, exclusions: Sequence[Exclusion]
) -> StageOutcome:
    """A stage's report: what it kept, and its exclusions counted by reason."""
    counts = Counter(exclusion.reason for exclusion in exclusions)
    return StageOutcome(
        StageReport(stage, group, kept, tuple(sorted(counts.items())), tally(exclusions)),
        tuple(exclusions),
    )


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
    if not (request.root_required or request.root_forbidden):
        return None, stage_outcome(stage, None, len(snapshot.roots), ())
    allowed, exclusions = set(), []
    for root in snapshot.roots:
        missing = request.root_required - root.traits
        forbidden = request.root_forbidden & root.traits
        if missing:
            exclusions.append(
                Exclusion(stage, "missing_root_trait", None, root.uuid, trait=min(missing))
            )
        elif forbidden:
            exclusions.append(
                Exclusion(stage, "forbidden_root_trait", None, root.uuid, trait=min(forbidden))
            )
        else:
            allowed.add(root.uuid)
    return frozenset(allowed), stage_outcome(stage, None, len(allowed), exclusions)


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
    exclusions: list[Exclusion] = []
    for provider in snapshot.providers:
        problem = _single_provider_problem(provider, group, tree_root, stage)
        if problem is not None:
            exclusions.append(problem)
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
                exclusions.append(
                    Exclusion(stage, "anchor_root_traits", group.suffix, provider.uuid)
                )
                continue
            choices.append(
                GroupChoice(group.suffix, anchor, allocations, frozenset([provider.uuid]))
            )
    return choices, stage_outcome(stage, group.suffix, len(choices), exclusions)


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
    exclusions: list[Exclusion] = []
    kept = 0
    for resource_class, amount in group.resources:
        for provider in snapshot.providers:
            problem = resource_problem(provider, resource_class, amount, stage, group.suffix)
            if problem is not None:
                exclusions.append(problem)
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
                    snapshot, provider, anchor, group, tree_root, allowed_roots
                )
                if reason is not None:
                    exclusions.append(
                        Exclusion(stage, reason, group.suffix, provider.uuid, resource_class)
                    )
                    continue
                options[anchor][resource_class].append(provider.uuid)
                kept += 1
    return options, stage_outcome(stage, group.suffix, kept, exclusions)


def _anchor_problem(
    snapshot: Snapshot,
    provider: Provider,
    anchor: str,
    group: RequestGroup,
    tree_root: str | None,
    allowed_roots: frozenset[str] | None,
) -> str | None:
    if tree_root is not None and anchor != tree_root:
        return "outside_tree"
    if allowed_roots is not None and anchor not in allowed_roots:
        return "anchor_root_traits"
    root = snapshot.by_uuid[anchor]
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
    exclusions: list[Exclusion] = []
    classes = group.resource_classes
    for anchor in _ordered(snapshot, options):
        by_class = options[anchor]
        if any(not by_class.get(resource_class) for resource_class in classes):
            missing = next(name for name in classes if not by_class.get(name))
            exclusions.append(Exclusion(stage, "class_unavailable", group.suffix, anchor, missing))
            continue
        for picked in itertools.product(*(by_class[name] for name in classes)):
            used = {uuid: snapshot.by_uuid[uuid] for uuid in picked}
            traits = frozenset().union(*(provider.traits for provider in used.values()))
            forbidden = group.forbidden_traits & traits
            if forbidden:
                exclusions.append(
                    Exclusion(stage, "forbidden_trait", group.suffix, anchor, trait=min(forbidden))
                )
                continue
            missing_trait = satisfies_traits(traits, group.required_traits)
            if missing_trait is not None:
                exclusions.append(
                    Exclusion(stage, "missing_trait", group.suffix, anchor, trait=missing_trait)
                )
                continue
            allocations = tuple(
                Allocation(provider, resource_class, amount)
                for provider, (resource_class, amount) in zip(picked, group.resources, strict=False)
            )
            choices.append(GroupChoice(group.suffix, anchor, allocations, frozenset(picked)))
    return choices, [options_outcome, stage_outcome(stage, group.suffix, len(choices), exclusions)]


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
) -> tuple[list[Candidate], StageOutcome]:
    """Distinct candidates taking one choice per group around one anchor."""
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
    exclusions: list[Exclusion] = []
    for anchor, picked in _combinations(indexed, anchors, options.strategy):
        if request.group_policy is GroupPolicy.ISOLATE and violates_isolation(picked):
            exclusions.append(Exclusion(stage, "group_policy", None, anchor))
            continue
        if violates_same_subtree(snapshot, request, picked):
            exclusions.append(Exclusion(stage, "same_subtree", None, anchor))
            continue
        candidate = consolidate(picked, anchor)
        problem = capacity_problem(snapshot, candidate)
        if problem is not None:
            exclusions.append(problem)
            continue
        if not request.nested_aware and nested_problem(snapshot, candidate):
            exclusions.append(Exclusion(stage, "nested_before_1.29", None, anchor))
            continue
        if candidate.identity in seen:
            continue
        seen.add(candidate.identity)
        candidates.append(candidate)
        if 0 <= options.max_candidates <= len(candidates):
            break
    return candidates, stage_outcome(stage, None, len(candidates), exclusions)


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


# --- The pipeline -------------------------------------------------------------------------


def find_candidates(
    snapshot: Snapshot, request: CandidateRequest, options: EngineOptions = EngineOptions()
) -> CandidateResult:
    """Every allocation candidate for ``request`` over ``snapshot``.

    The stage order is fixed here. No candidates is an ordinary empty result;
    its explanation says which stage emptied it and what came closest.
    """
    outcomes: list[StageOutcome] = []
    # Root traits first: cheap, and they narrow every group's anchors.
    allowed_roots, outcome = allowed_anchor_roots(snapshot, request)
    outcomes.append(outcome)
    # Each group on its own next; one group with no way to be met ends the
    # search before any combination is tried.
    choices_by_group = []
    for group in request.groups:
        choices, group_outcomes = group_choices(snapshot, group, allowed_roots)
        outcomes.extend(group_outcomes)
        if not choices:
            return CandidateResult.empty(_explain(outcomes, len(snapshot.roots)))
        choices_by_group.append(choices)
    # Combination last: it is the only exponential stage, and it rechecks
    # capacity because groups add up on shared providers.
    candidates, outcome = combine(snapshot, request, choices_by_group, options)
    outcomes.append(outcome)
    # Summaries before the limit, so a limited answer keeps the same view of
    # each remaining tree as the full answer would.
    summaries = summarize(snapshot, candidates, request.nested_aware)
    candidates, summaries = apply_limit(snapshot, candidates, summaries, request.limit, options)
    return CandidateResult(
        tuple(candidates), tuple(summaries), _explain(outcomes, len(snapshot.roots))
    )


def _explain(outcomes: Sequence[StageOutcome], trees: int) -> Explanation:
    """Stage counts, and the capacity misses that came closest to fitting."""
    return Explanation(
        stages=tuple(outcome.report for outcome in outcomes),
        nearest_misses=nearest_misses(outcomes),
        trees=trees,
    )


def nearest_misses(outcomes: Sequence[StageOutcome]) -> tuple[Exclusion, ...]:
    """The capacity exclusions that came closest to fitting, closest first."""
    # Once each: the fast engine's batches may report one kind of root twice,
    # the same exclusion object (its verdict cache's).
    misses: dict[int, tuple[int, int, Exclusion]] = {}
    exclusions = (exclusion for outcome in outcomes for exclusion in outcome.exclusions)
    for order, exclusion in enumerate(exclusions):
        shortfall = exclusion.shortfall
        if shortfall is not None and shortfall > 0:
            misses.setdefault(id(exclusion), (shortfall, order, exclusion))
    closest = heapq.nsmallest(_NEAREST_MISSES, misses.values(), key=lambda miss: miss[:2])
    return tuple(exclusion for _, _, exclusion in closest)
