"""The fast candidate engine: the reference's rules over the read model,
one batch of anchor roots at a time, stopping at the limit.

Matching semantics stay the reference's: trees that need them go through
the reference's own stage functions (``group_choices``, ``consolidate``,
``capacity_problem``, ...) over a small snapshot of the batch's trees plus
every tree with a sharing provider; the shortcuts below are checked against
the reference by property tests. What makes it fast is what it avoids:

* no per-request loading: the read model already holds every provider;
* trees that cannot anchor a candidate (root traits, or no room for some
  requested class in the tree or in the sharing providers serving it) are
  skipped before any per-provider work, one verdict per kind of root;
* a tree of one provider is checked against all groups in one pass, and
  trees of one shape are worked out once (see "Stages 2 and 3");
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from stowage.candidates import reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.reference import StageOutcome
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GenerationStrategy,
    GroupPolicy,
)
from stowage.candidates.results import (
    Allocation,
    AnyCandidate,
    Candidate,
    CandidateResult,
    CandidateTemplate,
    Exclusion,
    Explanation,
    ProviderSummary,
    ReasonCount,
    ReplayedCandidate,
    StageReport,
    counted,
    merge_counts,
)
from stowage.candidates.snapshot import Provider, Snapshot

# Named tuples made from a tuple of their fields without the keyword-aware
# constructor: less than half the cost, for the tens of thousands of
# candidates and allocations of a big answer.
_new_tuple = tuple.__new__

# The smallest batch of roots worth a pass through the per-group stages.
_MIN_BATCH = 64
# Roots fetched per missing candidate. An eligible root usually yields at
# least one candidate; when some fail (unit sizes, traits, aggregates) the
# next batch makes up the difference, so no margin is taken up front.
_BATCH_FACTOR = 1


class _Verdict(Enum):
    """A verdict not reached yet (None is a verdict: no problem). An enum
    member rather than a bare ``object()``, so that ``is _UNKNOWN`` narrows
    a looked-up verdict to ``str | None``."""

    UNKNOWN = "unknown"


_UNKNOWN: Final = _Verdict.UNKNOWN


@dataclass(frozen=True)
class RootScan:
    """Where ``eligible_roots`` stopped, so the next batch resumes there.

    ``position`` counts roots scanned from ``start``, the index in the
    model's roots where the scan began (it wraps around at the end).
    """

    position: int = 0
    exhausted: bool = False
    start: int = 0


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
    if model.is_lone(root.uuid):
        # Every group of a lone tree's candidate is on its root.
        for group in request.groups:
            problem = reference.trait_problem(root, group, stage)
            if problem is not None:
                return problem
    free = model.free_by_root.get(root.uuid, {})
    for resource_class, amount in smallest.items():
        if free.get(resource_class, -1) >= amount:
            continue
        # A sharing provider serving the tree may make up for what it lacks.
        shared = model.shared_room(root.uuid)
        if shared.get(resource_class, -1) < amount:
            rooms = [
                room[resource_class] for room in (free, shared) if resource_class in room
            ]
            return Exclusion(
                stage,
                "no_room_in_tree" if resource_class in free else "no_inventory_in_tree",
                None,
                root.uuid,
                resource_class,
                amount,
                free=max(rooms) if rooms else None,
            )
    return None


def eligible_roots(
    model: ReadModel,
    request: CandidateRequest,
    scan: RootScan,
    wanted: int | None,
    verdicts: dict[int, Exclusion | None],
) -> tuple[list[str], RootScan, StageOutcome]:
    """Up to ``wanted`` (None: all) roots from ``scan`` on that pass
    ``root_problem``, in model order, where the scan stopped, and how many
    roots were excluded for which reason.

    Roots with the same ``root_key`` (room per class, sharing providers,
    traits) get the same verdict, so ``verdicts`` (key → exclusion or None,
    kept across the batches of one request) spares all but the first of a
    kind the work: on a cloud of identical compute nodes, a dict lookup.
    The outcome keeps one exclusion per kind, the first root's, for the
    nearest misses: memory grows with the kinds of roots, not the roots.
    """
    roots = model.snapshot.roots
    smallest = smallest_amounts(request)
    if wanted is None and scan.position == 0 and scan.start == 0:
        return _every_eligible_root(model, request, smallest, verdicts)
    found: list[str] = []
    excluded: dict[int, int] = {}
    known_key = model.root_keys.get
    position = scan.position
    # From where the scan is to the end, then round to where it began;
    # indexed, so that resuming costs nothing per root already scanned.
    start, count = scan.start, len(roots)
    first = start + position
    indexes = (
        itertools.chain(range(first, count), range(start))
        if first < count
        else range(first - count, start)
    )
    # One pass of plain dict lookups per root: this loop sees every root of
    # the cloud on an unlimited request.
    for root in map(roots.__getitem__, indexes):
        position += 1
        key = known_key(root.uuid)
        if key is None:
            key = model.root_key(root.uuid)
        problem = verdicts.get(key, _UNKNOWN)
        if problem is _UNKNOWN:
            problem = verdicts[key] = root_problem(model, root, request, smallest)
        if problem is None:
            found.append(root.uuid)
            if len(found) == wanted:
                break
        else:
            excluded[key] = excluded.get(key, 0) + 1
    outcome = _roots_outcome(len(found), {key: (verdicts[key], n) for key, n in excluded.items()})
    return found, RootScan(position, position >= len(roots), start), outcome


def _every_eligible_root(
    model: ReadModel,
    request: CandidateRequest,
    smallest: dict[str, int],
    verdicts: dict[int, Exclusion | None],
) -> tuple[list[str], RootScan, StageOutcome]:
    """``eligible_roots`` over the whole cloud: one verdict per root key,
    then the positions of the roots that passed, back in model order."""
    roots = model.snapshot.roots
    positions: list[int] = []
    excluded: dict[int, tuple[Exclusion | None, int]] = {}
    for key, at in model.roots_by_key.items():
        problem = verdicts.get(key, _UNKNOWN)
        if problem is _UNKNOWN:
            problem = verdicts[key] = root_problem(model, roots[at[0]], request, smallest)
        if problem is None:
            positions += at
        else:
            excluded[key] = (problem, len(at))
    # Each key's positions ascend: sorting merges those runs.
    positions.sort()
    outcome = _roots_outcome(len(positions), excluded)
    return [roots[position].uuid for position in positions], RootScan(len(roots), True), outcome


def _more_room(exclusion: Exclusion, than: Exclusion) -> bool:
    room, other = exclusion.room, than.room
    return room is not None and (other is None or room > other)


def _roots_outcome(
    kept: int, excluded: Mapping[int, tuple[Exclusion | None, int]]
) -> StageOutcome:
    """The eligible_roots report from (exclusion, how many roots) per root key."""
    problems = [(problem, count) for problem, count in excluded.values() if problem is not None]
    reasons: Counter = Counter()
    # Counted per kind of exclusion first: roots of one kind are many, and
    # their exclusions differ only in the numbers the closest one keeps.
    kinds: dict[tuple, tuple[Exclusion, int]] = {}
    for problem, count in problems:
        reasons[problem.reason] += count
        kind = (problem.reason, problem.resource_class, problem.trait, problem.group, problem.stage)
        closest, total = kinds.get(kind, (problem, 0))
        if _more_room(problem, closest):
            closest = problem
        kinds[kind] = (closest, total + count)
    details = merge_counts(counted(problem, weight) for problem, weight in kinds.values())
    report = StageReport(
        "eligible_roots", None, kept, tuple(sorted(reasons.items())), details
    )
    return StageOutcome(report, tuple(problem for problem, _ in problems))


# --- Stages 2 and 3: one batch, tree by tree ----------------------------------------------
#
# Every root of a batch becomes a stream of its candidates (and exclusions),
# produced lazily, in the reference's order for that root. Three kinds:
#
# * a *lone* tree (one provider, nothing shares with it) is answered by
#   checking that provider against every group: one candidate or none (all
#   of a request's lone candidates are renamings of the first);
# * *twin* trees (the same shape: structure, inventories, usage, traits,
#   aggregates, and the sharing providers serving them; when no group
#   filters on aggregates, aggregates are left out and sharing providers
#   need only be in the same state) are answered once: the first twin's
#   stream is computed and the others replay it with their own provider
#   uuids (and their own sharing providers');
# * every other tree (one holding a sharing provider, or any tree when a
#   group names ``in_tree``) goes through the reference's group stages.


def candidates_of_batch(
    model: ReadModel,
    request: CandidateRequest,
    batch: Sequence[str],
    max_candidates: int,
    strategy: GenerationStrategy,
    seen: set[tuple],
) -> tuple[list[AnyCandidate], list[reference.StageOutcome]]:
    """Candidates anchored at the ``batch`` roots, at most ``max_candidates``
    (-1: all), in the reference's order (depth first) or round robin;
    ``seen`` holds the identities of the candidates that could repeat
    (those wholly from sharing providers) found so far, and gains this
    batch's."""
    by_uuid = model.snapshot.by_uuid
    tree_roots = [_tree_root(model, group) for group in request.groups]
    twins_allowed = all(group.in_tree is None for group in request.groups)
    with_aggregates = any(group.member_of or group.forbidden_aggregates for group in request.groups)
    lone: list[str] = []
    first_twin: dict[tuple, str] = {}
    twin_of: dict[str, str] = {}
    worked: list[str] = []
    for root in batch:
        if model.is_lone(root):
            lone.append(root)
            continue
        shape = model.twin_key(root, with_aggregates) if twins_allowed else None
        if shape is not None and shape in first_twin:
            twin_of[root] = first_twin[shape]
            continue
        if shape is not None:
            first_twin[shape] = root
        worked.append(root)
    outcomes = [
        reference.stage_outcome("lone_trees", None, len(lone), ()),
        reference.stage_outcome("twin_trees", None, len(twin_of), ()),
    ]
    # The worked trees and the trees of the sharing providers serving them:
    # on a cloud of many storage pools, not every pool.
    sharing_root = model.sharing_root_of
    snapshot = model.sub_snapshot(frozenset(worked).union(
        sharing_root[uuid] for root in worked for uuid in model.serving_sharing(root)
    ))
    indexed: list[dict[str, list[reference.GroupChoice]]] = []
    for group in request.groups if worked else ():
        choices, group_outcomes = reference.group_choices(snapshot, group, frozenset(worked))
        outcomes.extend(group_outcomes)
        by_anchor: dict[str, list[reference.GroupChoice]] = defaultdict(list)
        for choice in choices:
            by_anchor[choice.anchor].append(choice)
        indexed.append(by_anchor)
    pruned: Counter = Counter()
    replays: dict[str, _Replay] = {}

    def replay_of(original: str) -> _Replay:
        if original not in replays:
            replays[original] = _Replay(
                anchor_stream(snapshot, request, indexed, original, pruned),
                model.twin_names(original),
                model.sharing_root_of,
            )
        return replays[original]

    lone_roots, twinned = set(lone), set(twin_of.values())
    check = LoneCheck(request, tree_roots)

    def stream(root: str) -> Iterable[AnyCandidate | Exclusion]:
        if root in lone_roots:
            candidate = check.candidate(by_uuid[root])
            if candidate is None:  # the slow way, for the reason
                return lone_stream(by_uuid[root], request, tree_roots)
            return (candidate,)
        if root in twin_of:
            return replay_of(twin_of[root]).renamed(model.twin_names(root), root)
        if root in twinned:
            return replay_of(root)
        return anchor_stream(snapshot, request, indexed, root, pruned)

    if strategy is GenerationStrategy.DEPTH_FIRST:
        # Lazily: with a limit, the roots after it is reached are never looked at.
        ordered: Iterator = itertools.chain.from_iterable(map(stream, batch))
    else:
        ordered = reference.round_robin([iter(stream(root)) for root in batch])
    candidates: list[AnyCandidate] = []
    exclusions: list[Exclusion] = []
    sharing = model.sharing_root_of
    for item in ordered:
        if isinstance(item, Exclusion):
            exclusions.append(item)
            continue
        # A candidate taking from its anchor's own tree is found under that
        # anchor only. One taken wholly from sharing providers can repeat
        # under another anchor (in this batch or an earlier one): keep the
        # first.
        if type(item) is ReplayedCandidate:
            shared_only = item.template.shared_only
        else:
            shared_only = all(provider in sharing for provider, _, _ in item.allocations)
        if shared_only:
            if item.identity in seen:
                continue
            seen.add(item.identity)
        candidates.append(item)
        if 0 <= max_candidates <= len(candidates):
            break
    outcome = reference.stage_outcome("combine", None, len(candidates), exclusions)
    counts = Counter(dict(outcome.report.excluded)) + pruned
    details = merge_counts(itertools.chain(
        outcome.report.details,
        (ReasonCount(reason, count) for reason, count in sorted(pruned.items())),
    ))
    report = StageReport(
        "combine", None, len(candidates), tuple(sorted(counts.items())), details
    )
    outcomes.append(reference.StageOutcome(report, outcome.exclusions))
    return candidates, outcomes


def _tree_root(model: ReadModel, group) -> str | None:
    """Root of the group's ``in_tree`` provider; "" when it does not exist."""
    if group.in_tree is None:
        return None
    provider = model.snapshot.by_uuid.get(group.in_tree)
    return provider.root_uuid if provider else ""


class LoneCheck:
    """Every group of a request folded into one test of one provider, for
    lone trees: ``candidate`` is what ``lone_stream`` finds, or None where
    ``lone_stream`` would say why not (ask it then)."""

    def __init__(self, request: CandidateRequest, tree_roots: Sequence[str | None]) -> None:
        groups = request.groups
        self.tree_roots = {root for root in tree_roots if root is not None}
        self.required = [any_of for group in groups for any_of in group.required_traits]
        self.forbidden = frozenset().union(*(group.forbidden_traits for group in groups))
        self.member_of = [any_of for group in groups for any_of in group.member_of]
        self.forbidden_aggregates = frozenset().union(
            *(group.forbidden_aggregates for group in groups)
        )
        amounts: dict[str, list[int]] = {}
        for group in groups:
            for resource_class, amount in group.resources:
                amounts.setdefault(resource_class, []).append(amount)
        self.classes = sorted(
            (resource_class, tuple(each), sum(each)) for resource_class, each in amounts.items()
        )
        self.suffixes = sorted(group.suffix for group in groups)
        self.isolation_fails = (
            request.group_policy is GroupPolicy.ISOLATE
            and sum(group.suffix != "" for group in groups) > 1
        )
        self.template: CandidateTemplate | None = None

    def candidate(self, provider: Provider) -> ReplayedCandidate | None:
        uuid = provider.uuid
        if self.isolation_fails or (self.tree_roots and self.tree_roots != {uuid}):
            return None
        traits, aggregates = provider.traits, provider.aggregates
        for any_of in self.required:
            if any_of.isdisjoint(traits):
                return None
        for any_of in self.member_of:
            if any_of.isdisjoint(aggregates):
                return None
        if not (self.forbidden.isdisjoint(traits)
                and self.forbidden_aggregates.isdisjoint(aggregates)):
            return None
        inventories = provider.inventories
        for resource_class, amounts, total in self.classes:
            inventory = inventories.get(resource_class)
            if inventory is None:
                return None
            # Each group's amount must be a valid unit; the sum must fit.
            step = inventory.step_size
            for amount in amounts:
                if amount < inventory.min_unit or (step != 1 and amount % step):
                    return None
            if total > inventory.max_unit or inventory.used + total > inventory.capacity:
                return None
        # Every lone candidate of a request takes the same amounts: the
        # first is the template the others are renamed from.
        if self.template is None:
            self.template = CandidateTemplate.of(_new_tuple(Candidate, (
                tuple([_new_tuple(Allocation, (uuid, resource_class, total))
                       for resource_class, _, total in self.classes]),
                tuple([(suffix, (uuid,)) for suffix in self.suffixes]),
                uuid,
            )), {uuid: 0}.get, ())
        return _new_tuple(ReplayedCandidate, (self.template, (uuid,), uuid))


def lone_stream(
    provider: Provider, request: CandidateRequest, tree_roots: Sequence[str | None]
) -> list[Candidate | Exclusion]:
    """The one candidate of a tree of one provider that nothing shares with:
    every group on that provider, their amounts summed; or why not."""
    stage = "lone_trees"
    totals: dict[str, int] = {}
    suffixed = 0
    for group, tree_root in zip(request.groups, tree_roots, strict=False):
        problem = reference._single_provider_problem(provider, group, tree_root, stage)
        if problem is not None:
            return [problem]
        suffixed += group.suffix != ""
        for resource_class, amount in group.resources:
            totals[resource_class] = totals.get(resource_class, 0) + amount
    if request.group_policy is GroupPolicy.ISOLATE and suffixed > 1:
        return [Exclusion(stage, "group_policy", None, provider.uuid)]
    allocations = []
    for resource_class, amount in sorted(totals.items()):
        inventory = provider.inventories[resource_class]
        if not inventory.has_room(amount) or amount > inventory.max_unit:
            fits = inventory.has_room(amount)
            return [Exclusion(stage, "above_max_unit" if fits else "insufficient_capacity",
                              None, provider.uuid, resource_class, amount,
                              inventory.used, inventory.capacity)]
        allocations.append(Allocation(provider.uuid, resource_class, amount))
    mappings = tuple(sorted((group.suffix, (provider.uuid,)) for group in request.groups))
    return [Candidate(tuple(allocations), mappings, provider.uuid)]


def anchor_stream(
    snapshot: Snapshot,
    request: CandidateRequest,
    indexed: Sequence[dict[str, list[reference.GroupChoice]]],
    anchor: str,
    pruned: Counter,
) -> Iterator[Candidate | Exclusion]:
    """The reference's combine for one anchor, lazily, pruning each partial
    choice as soon as it fails.

    Group by group, a partial pick is dropped once its summed allocations
    exceed some capacity or max_unit, or two suffixed groups share a
    provider under ``isolate``: sums only grow, so no completion could pass.
    That is what makes a host with 64 identical devices cheap: after
    ``gpu0`` is taken, the next group skips it in one check instead of
    trying every completion that reuses it. Complete picks then go through
    the reference's own checks, in the reference's order.
    """
    stage = "combine"
    per_group = [by_anchor.get(anchor, ()) for by_anchor in indexed]
    if not all(per_group):
        return
    isolate = request.group_policy is GroupPolicy.ISOLATE
    picked: list[reference.GroupChoice] = []
    totals: dict[tuple[str, str], int] = {}

    def partial_problem() -> str | None:
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

    def complete() -> Candidate | Exclusion:
        if reference.violates_same_subtree(snapshot, request, picked):
            return Exclusion(stage, "same_subtree", None, anchor)
        candidate = reference.consolidate(picked, anchor)
        problem = reference.capacity_problem(snapshot, candidate)
        if problem is not None:
            return problem
        if not request.nested_aware and reference.nested_problem(snapshot, candidate):
            return Exclusion(stage, "nested_before_1.29", None, anchor)
        return candidate

    def extend(depth: int) -> Iterator[Candidate | Exclusion]:
        if depth == len(per_group):
            yield complete()
            return
        for choice in per_group[depth]:
            picked.append(choice)
            problem = partial_problem()
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


class _Replay:
    """A stream computed once and read by several twin trees, each as far as
    it needs: items are pulled from the source only when first asked for."""

    def __init__(self, source: Iterator, names: Sequence[str], sharing: Mapping[str, str]) -> None:
        self._source = source
        self._items: list = []
        self._templates: list = []
        self._done = False
        self._sharing = sharing
        # Where each provider the original's candidates may use sits in
        # ``ReadModel.twin_names``.
        self._position = {uuid: index for index, uuid in enumerate(names)}

    def __iter__(self) -> Iterator:
        items = self._items
        position = 0
        while position < len(items) or self._pull():
            yield items[position]
            position += 1

    def _pull(self) -> bool:
        """Take one more item from the source; False once it is exhausted."""
        if self._done:
            return False
        item = next(self._source, None)
        if item is None:
            self._done = True
            return False
        self._items.append(item)
        at = self._position.get
        if isinstance(item, Exclusion):
            # An exclusion's template is where its provider sits (-1: it
            # names none, or one the twins do not rename).
            self._templates.append((-1 if item.provider is None else at(item.provider, -1),))
        else:
            self._templates.append(CandidateTemplate.of(item, at, self._sharing))
        return True

    def renamed(self, names: Sequence[str], anchor: str) -> Iterator:
        """The stream with the original's uuids replaced by ``names`` (the
        twin's ``twin_names``, by position)."""
        items, templates = self._items, self._templates
        position = 0
        while position < len(items) or self._pull():
            item, template = items[position], templates[position]
            position += 1
            if isinstance(item, Exclusion):
                # Past its reason an exclusion is read only as a near miss
                # (nearest_misses): only those need the twin's own uuid.
                at = template[0]
                if at < 0 or (item.shortfall or 0) <= 0:
                    yield item
                    continue
                yield Exclusion(
                    item.stage, item.reason, item.group, names[at],
                    item.resource_class, item.requested, item.used, item.capacity, item.trait,
                    item.free,
                )
                continue
            yield _new_tuple(ReplayedCandidate, (template, names, anchor))


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
    # sample needs every candidate (up to max_candidates) to draw from, and
    # so do summaries before 1.29, which list what any candidate in the kept
    # trees takes from, not only what the kept candidates take.
    stop_at = _stop_at(request.limit if request.nested_aware else None, options)
    # Round robin under a limit spreads the answer over many roots instead
    # of exhausting the first one's combinations.
    limited = request.limit is not None and not options.randomize
    strategy = GenerationStrategy.BREADTH_FIRST if limited else options.strategy
    outcomes: list[reference.StageOutcome] = []
    found: list[AnyCandidate] = []
    seen: set[tuple] = set()
    roots = len(model.snapshot.roots)
    scan = RootScan(start=options.start % roots if limited and roots else 0)
    verdicts: dict[int, Exclusion | None] = {}
    while not scan.exhausted and (stop_at < 0 or len(found) < stop_at):
        missing = None if stop_at < 0 else max(min_batch, _BATCH_FACTOR * (stop_at - len(found)))
        # Cheap per-root checks first: two dict lookups per tree decide
        # which trees the per-provider stages ever look at.
        batch, scan, outcome = eligible_roots(model, request, scan, missing, verdicts)
        outcomes.append(outcome)
        if not batch:
            continue
        # The reference stages next, on this batch only: they define what
        # a candidate is, so the two engines cannot drift apart.
        remaining = -1 if stop_at < 0 else stop_at - len(found)
        candidates, batch_outcomes = candidates_of_batch(
            model, request, batch, remaining, strategy, seen
        )
        outcomes.extend(batch_outcomes)
        found.extend(candidates)
    # Summaries from the trees the candidates use, then the limit (or the
    # shuffle), exactly as the reference does them.
    summaries = summarize(model, found, request.nested_aware)
    candidates, summaries = reference.apply_limit(
        model.snapshot, found, summaries, request.limit, options
    )
    return CandidateResult(tuple(candidates), tuple(summaries), _explain(outcomes, roots))


def summarize(
    model: ReadModel, candidates: Sequence[AnyCandidate], nested_aware: bool
) -> list[ProviderSummary]:
    """The reference's ``summarize`` from the model's summaries: every
    provider of the trees the candidates take from (before 1.29, only the
    providers they take from), tree by tree in the order candidates first
    use them (``provider_summaries`` is a JSON object: order is not part of
    the answer)."""
    by_uuid = model.snapshot.by_uuid
    if nested_aware:
        # A candidate takes from its anchor's tree and sharing providers.
        sharing_roots = model.sharing_root_of
        sharing_root = sharing_roots.get
        roots: dict[str, None] = {}
        for candidate in candidates:
            if type(candidate) is ReplayedCandidate:
                template = candidate.template
                if not template.shared_only:
                    roots.setdefault(candidate.anchor)
                if template.pools:
                    for pool in candidate.pools():
                        # A pool is a sharing provider: it has a root there.
                        roots.setdefault(sharing_roots[pool])
                continue
            for provider, _, _ in candidate.allocations:
                roots.setdefault(sharing_root(provider, candidate.anchor))
        return list(itertools.chain.from_iterable(map(model.summaries_of_tree, roots)))
    used = dict.fromkeys(
        allocation.provider for candidate in candidates for allocation in candidate.allocations
    )
    return [model.summary(by_uuid[uuid]) for uuid in used]


def _stop_at(limit: int | None, options: EngineOptions) -> int:
    """How many distinct candidates to generate; -1 for all."""
    bound = options.max_candidates
    # Upstream checks its cap after keeping a candidate, so 0 keeps one.
    bound = 1 if bound == 0 else bound
    if limit is None or options.randomize:
        return bound
    return limit if bound < 0 else min(limit, bound)


def _explain(outcomes: Sequence[reference.StageOutcome], trees: int) -> Explanation:
    """Per (stage, group) counts summed over batches, plus the capacity
    misses that came closest to fitting."""
    kept: dict[tuple[str, str | None], int] = {}
    excluded: dict[tuple[str, str | None], Counter] = {}
    details: dict[tuple[str, str | None], list[ReasonCount]] = {}
    for outcome in outcomes:
        key = (outcome.report.stage, outcome.report.group)
        kept[key] = kept.get(key, 0) + outcome.report.kept
        excluded.setdefault(key, Counter()).update(dict(outcome.report.excluded))
        details.setdefault(key, []).extend(outcome.report.details)
    return Explanation(
        stages=tuple(
            StageReport(
                stage, group, count, tuple(sorted(excluded[(stage, group)].items())),
                merge_counts(details[(stage, group)]),
            )
            for (stage, group), count in kept.items()
        ),
        nearest_misses=reference.nearest_misses(outcomes),
        trees=trees,
    )
