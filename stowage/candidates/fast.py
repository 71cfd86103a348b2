"""The fast candidate engine: the reference's rules over the read model,
one batch of anchor roots at a time, stopping at the limit.

Matching semantics are not re-implemented: each batch runs the reference's
own stage functions (``group_choices``, ``combine``, ``summarize``) over a
small snapshot holding only the batch's trees plus every tree with a
sharing provider. What makes it fast is what it avoids:

* no per-request loading: the read model already holds every provider;
* trees that cannot anchor a candidate (root traits, or no provider with
  room for some requested class that no sharing provider offers either)
  are skipped with two dict lookups, before any per-provider work;
* with a limit (and no randomisation), roots are taken in batches just big
  enough for the candidates still missing, combined round robin (one
  candidate per root in turn), and generation stops at the limit.

Without a limit the single batch is every eligible root and the result is
the reference's, in the same order. With a limit it is a subset of the
reference's candidates of size ``min(limit, total)``.
"""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from stowage.candidates import reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GenerationStrategy,
    GroupPolicy,
)
from stowage.candidates.results import (
    Candidate,
    CandidateResult,
    Exclusion,
    Explanation,
    StageReport,
)
from stowage.candidates.snapshot import Provider, Snapshot

# The smallest batch of roots worth a pass through the per-group stages.
_MIN_BATCH = 64
# Roots fetched per missing candidate. An eligible root usually yields at
# least one candidate; when some fail (unit sizes, traits, aggregates) the
# next batch makes up the difference, so no margin is taken up front.
_BATCH_FACTOR = 1
_NEAREST_MISSES = 5


@dataclass(frozen=True)
class RootScan:
    """Where ``eligible_roots`` stopped, so the next batch resumes there."""

    position: int = 0
    exhausted: bool = False


# --- Stage 1: roots that could anchor a candidate ---------------------------------------


def smallest_amounts(request: CandidateRequest) -> dict[str, int]:
    """Per requested class, the smallest amount any group asks for."""
    smallest: dict[str, int] = {}
    for group in request.groups:
        for resource_class, amount in group.resources:
            smallest[resource_class] = min(amount, smallest.get(resource_class, amount))
    return smallest


def root_problem(
    model: ReadModel, root: Provider, request: CandidateRequest, smallest: dict[str, int]
) -> Exclusion | None:
    """Why ``root``'s tree cannot anchor any candidate, or None if it might.

    Only necessary conditions: a tree passing here may still yield nothing.
    """
    stage = "eligible_roots"
    missing = request.root_required - root.traits
    if missing:
        return Exclusion(stage, "missing_root_trait", None, root.uuid, trait=min(missing))
    forbidden = request.root_forbidden & root.traits
    if forbidden:
        return Exclusion(stage, "forbidden_root_trait", None, root.uuid, trait=min(forbidden))
    free = model.free_by_root.get(root.uuid, {})
    shared = model.shared_classes
    for resource_class, amount in smallest.items():
        # A sharing provider may make up for what the tree lacks; the
        # reference stages sort that out.
        if free.get(resource_class, -1) < amount and resource_class not in shared:
            return Exclusion(
                stage,
                "no_room_in_tree" if resource_class in free else "no_inventory_in_tree",
                None,
                root.uuid,
                resource_class,
                amount,
            )
    return None


def eligible_roots(
    model: ReadModel,
    request: CandidateRequest,
    scan: RootScan,
    wanted: int | None,
) -> tuple[list[str], RootScan, list[Exclusion]]:
    """Up to ``wanted`` (None: all) roots from ``scan`` on that pass
    ``root_problem``, in model order, and where the scan stopped."""
    roots = model.snapshot.roots
    smallest = smallest_amounts(request)
    found: list[str] = []
    excluded: list[Exclusion] = []
    position = scan.position
    while position < len(roots) and (wanted is None or len(found) < wanted):
        root = roots[position]
        position += 1
        problem = root_problem(model, root, request, smallest)
        if problem is None:
            found.append(root.uuid)
        else:
            excluded.append(problem)
    return found, RootScan(position, position >= len(roots)), excluded


# --- Stages 2 and 3: one batch through the reference stages -----------------------------


def candidates_of_batch(
    model: ReadModel,
    request: CandidateRequest,
    batch: Sequence[str],
    max_candidates: int,
    strategy: GenerationStrategy,
) -> tuple[list[Candidate], list[reference.StageOutcome]]:
    """Candidates anchored at the ``batch`` roots, at most ``max_candidates``
    (-1: all), using the reference's group and combine stages."""
    allowed = frozenset(batch)
    # The batch's trees plus every sharing tree: whatever a candidate
    # anchored in the batch can take from, and whatever ``in_tree`` or
    # ``anchors_of_sharing`` must see to answer as on the full snapshot.
    snapshot = model.sub_snapshot(allowed | model.sharing_roots)
    outcomes: list[reference.StageOutcome] = []
    choices_by_group = []
    for group in request.groups:
        choices, group_outcomes = reference.group_choices(snapshot, group, allowed)
        outcomes.extend(group_outcomes)
        if not choices:
            return [], outcomes
        choices_by_group.append(choices)
    candidates, outcome = combine_pruned(
        snapshot, request, choices_by_group, max_candidates, strategy
    )
    outcomes.append(outcome)
    return candidates, outcomes


def combine_pruned(
    snapshot: Snapshot,
    request: CandidateRequest,
    choices_by_group: Sequence[list[reference.GroupChoice]],
    max_candidates: int,
    strategy: GenerationStrategy,
) -> tuple[list[Candidate], reference.StageOutcome]:
    """The reference's ``combine``, pruning each partial choice as soon as it
    fails, and lazily: at most ``max_candidates`` (-1: all) distinct ones.

    Group by group, a partial pick is dropped once its summed allocations
    exceed some capacity or max_unit, or two suffixed groups share a
    provider under ``isolate``: sums only grow, so no completion could pass.
    That is what makes a host with 64 identical devices cheap: after
    ``gpu0`` is taken, the next group skips it in one check instead of
    trying every completion that reuses it. Complete picks then go through
    the reference's own checks, in the reference's order.
    """
    stage = "combine"
    indexed: list[dict[str, list[reference.GroupChoice]]] = []
    for choices in choices_by_group:
        by_anchor: dict[str, list[reference.GroupChoice]] = defaultdict(list)
        for choice in choices:
            by_anchor[choice.anchor].append(choice)
        indexed.append(by_anchor)
    anchors = sorted(
        set.intersection(*(set(by_anchor) for by_anchor in indexed)),
        key=snapshot.order.__getitem__,
    )
    isolate = request.group_policy is GroupPolicy.ISOLATE
    pruned: Counter = Counter()

    def partial_problem(
        picked: list[reference.GroupChoice], totals: dict[tuple[str, str], int]
    ) -> str | None:
        choice = picked[-1]
        for allocation in choice.allocations:
            key = (allocation.provider, allocation.resource_class)
            amount = totals.get(key, 0) + allocation.amount
            inventory = snapshot.by_uuid[allocation.provider].inventories[allocation.resource_class]
            if not inventory.has_room(amount):
                return "insufficient_capacity"
            if amount > inventory.max_unit:
                return "above_max_unit"
        if isolate and choice.suffix != "":
            provider = next(iter(choice.providers))
            if any(
                earlier.suffix != "" and provider in earlier.providers for earlier in picked[:-1]
            ):
                return "group_policy"
        return None

    def picks(anchor: str) -> Iterator[tuple[str, tuple[reference.GroupChoice, ...]]]:
        per_group = [by_anchor[anchor] for by_anchor in indexed]
        picked: list[reference.GroupChoice] = []
        totals: dict[tuple[str, str], int] = {}

        def extend(depth: int) -> Iterator[tuple[str, tuple[reference.GroupChoice, ...]]]:
            if depth == len(per_group):
                yield anchor, tuple(picked)
                return
            for choice in per_group[depth]:
                picked.append(choice)
                problem = partial_problem(picked, totals)
                if problem is not None:
                    pruned[problem] += 1
                    picked.pop()
                    continue
                for allocation in choice.allocations:
                    key = (allocation.provider, allocation.resource_class)
                    totals[key] = totals.get(key, 0) + allocation.amount
                yield from extend(depth + 1)
                for allocation in choice.allocations:
                    totals[(allocation.provider, allocation.resource_class)] -= allocation.amount
                picked.pop()

        yield from extend(0)

    generators = [picks(anchor) for anchor in anchors]
    if strategy is GenerationStrategy.DEPTH_FIRST:
        ordered: Iterator = itertools.chain.from_iterable(generators)
    else:
        ordered = _round_robin(generators)
    candidates: list[Candidate] = []
    seen: set[tuple] = set()
    exclusions: list[Exclusion] = []
    for anchor, picked in ordered:
        if reference.violates_same_subtree(snapshot, request, picked):
            exclusions.append(Exclusion(stage, "same_subtree", None, anchor))
            continue
        candidate = reference.consolidate(picked, anchor)
        problem = reference.capacity_problem(snapshot, candidate)
        if problem is not None:
            exclusions.append(problem)
            continue
        if not request.nested_aware and reference.nested_problem(snapshot, candidate):
            exclusions.append(Exclusion(stage, "nested_before_1.29", None, anchor))
            continue
        if candidate.identity in seen:
            continue
        seen.add(candidate.identity)
        candidates.append(candidate)
        if 0 <= max_candidates <= len(candidates):
            break
    outcome = _outcome(stage, None, len(candidates), exclusions)
    counts = Counter(dict(outcome.report.excluded)) + pruned
    report = StageReport(stage, None, len(candidates), tuple(sorted(counts.items())))
    return candidates, reference.StageOutcome(report, outcome.exclusions)


def _round_robin(generators: list[Iterator]) -> Iterator:
    """One item from each generator in turn until all are exhausted."""
    active = list(generators)
    while active:
        still_active = []
        for generator in active:
            item = next(generator, None)
            if item is not None:
                yield item
                still_active.append(generator)
        active = still_active


# --- The pipeline -------------------------------------------------------------------------


def find_candidates(
    model: ReadModel,
    request: CandidateRequest,
    options: EngineOptions | None = None,
    min_batch: int = _MIN_BATCH,
) -> CandidateResult:
    """Allocation candidates for ``request`` over the read model.

    The stage order is fixed here; the explanation sums each stage's counts
    over the batches. ``min_batch`` is the fewest roots a batch takes (tests
    lower it to exercise batching on small forests).
    """
    options = options or EngineOptions()
    # Stop early only when the answer is the first ``limit`` found; a random
    # sample needs every candidate (up to max_candidates) to draw from.
    stop_at = _stop_at(request.limit, options)
    # Round robin under a limit spreads the answer over many roots instead
    # of exhausting the first one's combinations.
    limited = request.limit is not None and not options.randomize
    strategy = GenerationStrategy.BREADTH_FIRST if limited else options.strategy
    outcomes: list[reference.StageOutcome] = []
    found: list[Candidate] = []
    seen: set[tuple] = set()
    scan = RootScan()
    while not scan.exhausted and (stop_at < 0 or len(found) < stop_at):
        missing = None if stop_at < 0 else max(min_batch, _BATCH_FACTOR * (stop_at - len(found)))
        # Cheap per-root checks first: two dict lookups per tree decide
        # which trees the per-provider stages ever look at.
        batch, scan, excluded = eligible_roots(model, request, scan, missing)
        outcomes.append(_outcome("eligible_roots", None, len(batch), excluded))
        if not batch:
            continue
        # The reference stages next, on this batch only: they define what
        # a candidate is, so the two engines cannot drift apart.
        remaining = -1 if stop_at < 0 else stop_at - len(found)
        candidates, batch_outcomes = candidates_of_batch(model, request, batch, remaining, strategy)
        outcomes.extend(batch_outcomes)
        # Across batches only a candidate taken wholly from a sharing
        # provider can repeat (under another anchor); keep the first.
        for candidate in candidates:
            if candidate.identity not in seen:
                seen.add(candidate.identity)
                found.append(candidate)
    # Summaries from the trees the candidates use, then the limit (or the
    # shuffle), exactly as the reference does them.
    used_roots = {
        model.snapshot.by_uuid[uuid].root_uuid for candidate in found for uuid in candidate.providers
    }
    view = model.sub_snapshot(used_roots)
    summaries = reference.summarize(view, found, request.nested_aware)
    candidates, summaries = reference.apply_limit(view, found, summaries, request.limit, options)
    return CandidateResult(tuple(candidates), tuple(summaries), _explain(outcomes))


def _stop_at(limit: int | None, options: EngineOptions) -> int:
    """How many distinct candidates to generate; -1 for all."""
    bound = options.max_candidates
    if limit is None or options.randomize:
        return bound
    return limit if bound < 0 else min(limit, bound)


def _outcome(
    stage: str, group: str | None, kept: int, exclusions: Sequence[Exclusion]
) -> reference.StageOutcome:
    counts = Counter(exclusion.reason for exclusion in exclusions)
    return reference.StageOutcome(
        StageReport(stage, group, kept, tuple(sorted(counts.items()))), tuple(exclusions)
    )


def _explain(outcomes: Sequence[reference.StageOutcome]) -> Explanation:
    """Per (stage, group) counts summed over batches, plus the capacity
    misses that came closest to fitting."""
    kept: dict[tuple[str, str | None], int] = {}
    excluded: dict[tuple[str, str | None], Counter] = {}
    for outcome in outcomes:
        key = (outcome.report.stage, outcome.report.group)
        kept[key] = kept.get(key, 0) + outcome.report.kept
        excluded.setdefault(key, Counter()).update(dict(outcome.report.excluded))
    misses = [
        exclusion
        for outcome in outcomes
        for exclusion in outcome.exclusions
        if exclusion.shortfall is not None and exclusion.shortfall > 0
    ]
    misses.sort(key=lambda exclusion: exclusion.shortfall or 0)
    return Explanation(
        stages=tuple(
            StageReport(stage, group, count, tuple(sorted(excluded[(stage, group)].items())))
            for (stage, group), count in kept.items()
        ),
        nearest_misses=tuple(misses[:_NEAREST_MISSES]),
    )
