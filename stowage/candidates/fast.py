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
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from stowage.candidates import attribution, reference
from stowage.candidates.attribution import (
    COMBINATIONS,
    TREES,
    ExclusionTally,
    StageOutcome,
    TreeTally,
)
from stowage.candidates.readmodel import ReadModel
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
    TreeVerdict,
    merge_counts,
)
from stowage.candidates.snapshot import Provider, Snapshot

# Named tuples made from a tuple of their fields without the keyword-aware
# constructor: less than half the cost, for the tens of thousands of
# candidates and allocations of a big answer.
_new_tuple = tuple.__new__

# Root keys counted in a list by ``eligible_roots`` (the others in a dict).
_KEYS_LISTED = 1 << 14

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


smallest_amounts = reference.smallest_amounts


class SharedClasses:
    """Whether any sharing provider of the model has a class: looked up
    once per class and request, only when a tree lacks the class (the
    explanation's ``no_sharing_provider`` reason). Also holds the
    exclusions ``reference.room_problem`` made for the request (``made``)."""

    def __init__(self, model: ReadModel) -> None:
        self._sharing = model.sharing_providers
        self._known: dict[str, bool] = {}
        self.made: dict[tuple, Exclusion] = {}

    def __call__(self, resource_class: str) -> bool:
        known = self._known.get(resource_class)
        if known is None:
            known = self._known[resource_class] = any(
                resource_class in provider.inventories for provider in self._sharing
            )
        return known


def root_problem(
    model: ReadModel,
    root: Provider,
    request: CandidateRequest,
    smallest: dict[str, int],
    shares_class: SharedClasses,
) -> Exclusion | None:
    """Why ``root``'s tree cannot anchor any candidate, or None if it might.

    Only necessary conditions: a tree passing here may still yield nothing.
    Checked in the order of ``attribution``'s steps 1 to 3, so that the
    reason is the one the tree is counted under.
    """
    stage = "eligible_roots"
    problem = reference.root_trait_problem(root, request, stage)
    if problem is not None:
        return problem
    # A sharing provider serving the tree may make up for what it lacks.
    problem = reference.room_problem(
        root.uuid, model.free_by_root.get(root.uuid, {}), lambda: model.shared_room(root.uuid),
        smallest, shares_class, stage, shares_class.made,
    )
    if problem is not None:
        return problem
    if model.is_lone(root.uuid):
        # Every group of a lone tree's candidate is on its root.
        for group in request.groups:
            problem = reference.trait_problem(root, group, stage)
            if problem is not None:
                return problem
    return None


def eligible_roots(
    model: ReadModel,
    request: CandidateRequest,
    scan: RootScan,
    wanted: int | None,
    verdicts: dict[int, Exclusion | None],
    trees: TreeTally | None = None,
) -> tuple[list[str], RootScan, StageOutcome]:
    """Up to ``wanted`` (None: all) roots from ``scan`` on that pass
    ``root_problem``, in model order, where the scan stopped, and how many
    roots were excluded for which reason (also counted in ``trees``, when
    explaining; without, the outcome is empty).

    Roots with the same ``root_key`` (room per class, sharing providers,
    traits) get the same verdict, so ``verdicts`` (key → exclusion or None,
    kept across the batches of one request) spares all but the first of a
    kind the work: on a cloud of identical compute nodes, a dict lookup.
    The outcome keeps one exclusion per kind, the first root's, for the
    nearest misses: memory grows with the kinds of roots, not the roots.
    """
    roots = model.snapshot.roots
    smallest = smallest_amounts(request)
    shares_class = SharedClasses(model)
    if wanted is None and scan.position == 0 and scan.start == 0:
        return _every_eligible_root(model, request, smallest, shares_class, verdicts, trees)
    found: list[str] = []
    # Roots turned away, when explaining: those of the first verdict met
    # (on most clouds, most of them: its trees come first and alike) are
    # counted at the end, from how many were turned away; the others per
    # root key (keys are small numbers: a list is the cheapest counter for
    # a loop over every root; past it, a dict).
    by_key = [0] * _KEYS_LISTED if trees is not None else None
    more: dict[int, int] = {}
    commonest: Exclusion | None = None
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
            problem = verdicts[key] = _root_verdict(
                model, root, request, smallest, shares_class, trees
            )
        if problem is None:
            found.append(root.uuid)
            if len(found) == wanted:
                break
        elif by_key is not None and problem is not commonest:
            if commonest is None:
                commonest = problem
                continue
            try:
                by_key[key] += 1
            except IndexError:
                more[key] = more.get(key, 0) + 1
    excluded = None
    if by_key is not None and trees is not None:
        excluded = _RootsExcluded(trees)
        others = 0
        for key, problem in verdicts.items():
            turned = (by_key[key] if key < _KEYS_LISTED else 0) + more.get(key, 0)
            if turned and problem is not None:
                excluded.add(problem, turned)
                others += turned
        if commonest is not None:
            excluded.add(commonest, position - scan.position - len(found) - others)
    outcome = _roots_outcome(len(found), excluded)
    return found, RootScan(position, position >= len(roots), start), outcome


def _every_eligible_root(
    model: ReadModel,
    request: CandidateRequest,
    smallest: dict[str, int],
    shares_class: SharedClasses,
    verdicts: dict[int, Exclusion | None],
    trees: TreeTally | None,
) -> tuple[list[str], RootScan, StageOutcome]:
    """``eligible_roots`` over the whole cloud: one verdict per root key,
    then the positions of the roots that passed, back in model order."""
    roots = model.snapshot.roots
    positions: list[int] = []
    excluded = _RootsExcluded(trees) if trees is not None else None
    # Most kinds of root share a verdict: a dict update each.
    counted = excluded.weights.get if excluded is not None else None
    for key, at in model.roots_by_key.items():
        problem = verdicts.get(key, _UNKNOWN)
        if problem is _UNKNOWN:
            problem = verdicts[key] = _root_verdict(
                model, roots[at[0]], request, smallest, shares_class, trees
            )
        if problem is None:
            positions += at
        elif counted is not None:
            entry = counted(id(problem))
            if entry is None:
                excluded.add(problem, len(at))  # type: ignore[union-attr]
            else:
                entry[1] += len(at)
    # Each key's positions ascend: sorting merges those runs.
    positions.sort()
    outcome = _roots_outcome(len(positions), excluded)
    return [roots[position].uuid for position in positions], RootScan(len(roots), True), outcome


def _root_verdict(
    model: ReadModel,
    root: Provider,
    request: CandidateRequest,
    smallest: dict[str, int],
    shares_class: SharedClasses,
    trees: TreeTally | None,
) -> Exclusion | None:
    """``root_problem``, one object for roots of other kinds ruled out
    alike when explaining (they are then counted together; room verdicts
    are made once each already)."""
    problem = root_problem(model, root, request, smallest, shares_class)
    if trees is None or problem is None or problem.reason in _ROOM_REASONS:
        return problem
    return trees.same(problem)


_ROOM_REASONS: Final = attribution.ROOM_REASONS


class _RootsExcluded:
    """The roots ``eligible_roots`` turned away, counted as it goes: per
    verdict object first (kinds of roots ruled out alike share one), up to
    ``attribution.TRACKED`` of them, past which straight into the tallies
    of the stage and of the trees."""

    __slots__ = ("tally", "trees", "weights")

    def __init__(self, trees: TreeTally) -> None:
        self.trees = trees
        self.tally = ExclusionTally()
        # id(verdict) → [verdict, roots]
        self.weights: dict[int, list] = {}

    def add(self, problem: Exclusion, roots: int) -> None:
        known = self.weights.get(id(problem))
        if known is not None:
            known[1] += roots
        elif len(self.weights) < attribution.TRACKED:
            self.weights[id(problem)] = [problem, roots]
        else:
            self._count(problem, roots)

    def _count(self, problem: Exclusion, roots: int) -> None:
        self.tally.add(problem, roots)
        self.trees.add(attribution.tree_stage_of(problem), problem, roots)

    def outcome(self, kept: int) -> StageOutcome:
        for problem, roots in self.weights.values():
            self._count(problem, roots)
        self.weights.clear()
        return self.tally.outcome("eligible_roots", None, kept, TREES)


def _roots_outcome(kept: int, excluded: _RootsExcluded | None) -> StageOutcome:
    """The eligible_roots report: one count per verdict, not per root; each
    root also counted as a tree under the step its reason is
    (``attribution.tree_stage_of``). Without explaining, only what it kept."""
    if excluded is None:
        return StageOutcome(StageReport("eligible_roots", None, kept, unit=TREES))
    return excluded.outcome(kept)


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
    trees: TreeTally | None = None,
) -> tuple[list[AnyCandidate], list[StageOutcome], set[str]]:
    """Candidates anchored at the ``batch`` roots, at most ``max_candidates``
    (-1: all), in the reference's order (depth first) or round robin;
    ``seen`` holds the identities of the candidates that could repeat
    (those wholly from sharing providers) found so far, and gains this
    batch's. Explaining (``trees`` given), each tree of the batch looked at
    to the end of its stream and found no candidate is counted there, and
    the anchors of the candidates found are returned (else an empty set)."""
    explain = trees is not None
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
    outcomes = [StageOutcome(StageReport("twin_trees", None, len(twin_of), unit=TREES))]
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
    # Worked root → [its verdict, how many trees it was read for] when some
    # group has no choice for it (None: every group has one); its twins
    # share it.
    misses: dict[str, list | None] = {}

    def missed(root: str) -> list | None:
        """Why no candidate is anchored at ``root`` (a worked tree) when
        some group has no choice for it: nothing to combine, only why."""
        misses[root] = None
        for group, by_anchor, tree_root in zip(request.groups, indexed, tree_roots, strict=True):
            if root not in by_anchor:
                miss = _group_miss(model, root, group, tree_root) if explain else _NO_CHOICE
                misses[root] = [trees.same(miss) if trees is not None else miss, 0]
                break
        return misses[root]

    def replay_of(original: str) -> _Replay:
        if original not in replays:
            replays[original] = _Replay(
                anchor_stream(snapshot, request, indexed, original, pruned, explain),
                model.twin_names(original),
                model.sharing_root_of,
            )
        return replays[original]

    lone_roots, twinned = set(lone), set(twin_of.values())
    check = LoneCheck(request, tree_roots)

    def stream(root: str) -> Iterable[AnyCandidate | Exclusion | TreeVerdict]:
        if root in lone_roots:
            candidate = check.candidate(by_uuid[root])
            if candidate is None:  # the slow way, for the reason
                return lone_stream(by_uuid[root], request, tree_roots, explain)
            return (candidate,)
        original = twin_of.get(root, root)
        miss = misses[original] if original in misses else missed(original)
        if miss is not None:
            # Known at once, for the tree and each of its twins alike.
            miss[1] += 1
            return ()
        if root in twin_of:
            return replay_of(original).renamed(model.twin_names(root), root)
        if root in twinned:
            return replay_of(root)
        return anchor_stream(snapshot, request, indexed, root, pruned, explain)

    if strategy is GenerationStrategy.DEPTH_FIRST:
        # Lazily: with a limit, the roots after it is reached are never looked at.
        ordered: Iterator = itertools.chain.from_iterable(map(stream, batch))
    else:
        ordered = reference.round_robin([iter(stream(root)) for root in batch])
    candidates: list[AnyCandidate] = []
    combined = ExclusionTally()
    lone_trees = ExclusionTally()
    # Anchors of candidates dropped as repeats: their trees fit all the same.
    repeated: set[str] = set()
    sharing = model.sharing_root_of
    for item in ordered:
        kind = type(item)
        if kind is TreeVerdict:
            if trees is not None:
                # Trees ruled out alike, counted as one verdict.
                verdict = trees.same(item.exclusion)
                trees.add(item.stage, verdict)
                if item.lone:
                    lone_trees.add(verdict)
            continue
        if kind is Exclusion:
            if explain:
                combined.add(item)
            continue
        # A candidate taking from its anchor's own tree is found under that
        # anchor only. One taken wholly from sharing providers can repeat
        # under another anchor (in this batch or an earlier one): keep the
        # first.
        if kind is ReplayedCandidate:
            shared_only = item.template.shared_only
        else:
            shared_only = all(provider in sharing for provider, _, _ in item.allocations)
        if shared_only:
            if item.identity in seen:
                if explain:
                    repeated.add(item.anchor)
                continue
            seen.add(item.identity)
        candidates.append(item)
        if 0 <= max_candidates <= len(candidates):
            break
    fitting = set()
    if trees is not None:
        for miss in misses.values():
            if miss is not None and miss[1]:
                trees.add(attribution.GROUPS, miss[0], miss[1])
    if explain:
        for replay in replays.values():
            for item, readers in replay.explained():
                if type(item) is TreeVerdict:
                    if trees is not None:
                        trees.add(item.stage, item.exclusion, readers)
                elif type(item) is Exclusion:
                    combined.add(item, readers)
        # Both kinds of candidate are named tuples with the anchor third.
        fitting = repeated.union(map(_anchor, candidates))
        lone_fitting = len(lone_roots & fitting)
        outcomes.insert(0, lone_trees.outcome("lone_trees", None, lone_fitting, TREES))
        for reason, count in sorted(pruned.items()):
            combined.add(Exclusion("combine", reason), count)
        outcomes.append(combined.outcome("combine", None, len(candidates), COMBINATIONS))
    return candidates, outcomes, fitting


def _group_miss(model: ReadModel, root: str, group, tree_root: str | None) -> Exclusion:
    """Why no provider of ``root``'s tree, nor a sharing provider serving
    it, can satisfy ``group`` (``reference.group_problem``)."""
    by_uuid = model.snapshot.by_uuid
    serving = [
        by_uuid[uuid] for uuid in model.serving_sharing(root)
        if model.sharing_root_of[uuid] != root
    ]
    problem = reference.group_problem(
        by_uuid[root], model.snapshot.tree_members[root], serving, group, tree_root
    )
    return problem or Exclusion("groups", "no_choice", group.suffix, root)


_anchor = operator.itemgetter(2)

# The verdict of a tree some group has no choice for, when not explaining.
_NO_CHOICE: Final = Exclusion("groups", "no_choice")


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
    provider: Provider,
    request: CandidateRequest,
    tree_roots: Sequence[str | None],
    explain: bool = True,
) -> list[Candidate | TreeVerdict]:
    """The one candidate of a tree of one provider that nothing shares with:
    every group on that provider, their amounts summed; or why not (with
    ``explain``; else nothing), by ``attribution``'s steps 4 and 5 as the
    reference would find it."""
    uuid = provider.uuid
    for group, tree_root in zip(request.groups, tree_roots, strict=False):
        problem = reference.group_problem(provider, (provider,), (), group, tree_root)
        if problem is not None:
            if not explain:
                return []
            return [TreeVerdict(attribution.GROUPS, problem, lone=True)]
    picked = [
        reference.GroupChoice(
            group.suffix, uuid,
            tuple(Allocation(uuid, resource_class, amount) for resource_class, amount in group.resources),
            frozenset([uuid]),
        )
        for group in request.groups
    ]
    failure = reference.combination_problem(Snapshot((provider,)), request, picked, uuid)
    if failure is not None:
        if not explain:
            return []
        return [TreeVerdict(attribution.COMBINE, failure[1], lone=True)]
    return [reference.consolidate(picked, uuid)]


def anchor_stream(
    snapshot: Snapshot,
    request: CandidateRequest,
    indexed: Sequence[dict[str, list[reference.GroupChoice]]],
    anchor: str,
    pruned: Counter,
    explain: bool = True,
) -> Iterator[Candidate | Exclusion | TreeVerdict]:
    """The reference's combine for one anchor, lazily, pruning each partial
    choice as soon as it fails (``reference.partial_problem``).

    Group by group, a partial pick is dropped once its summed allocations
    exceed some capacity or max_unit, or two suffixed groups share a
    provider under ``isolate``: sums only grow, so no completion could pass.
    That is what makes a host with 64 identical devices cheap: after
    ``gpu0`` is taken, the next group skips it in one check instead of
    trying every completion that reuses it. Complete picks then go through
    the reference's own checks, in the reference's order. With ``explain``,
    a stream that found no candidate ends with its tree's verdict: the pick
    that got furthest (``reference.combination_problem``'s ranking).
    """
    stage = "combine"
    per_group = [by_anchor.get(anchor, ()) for by_anchor in indexed]
    if not all(per_group):
        return
    isolate = request.group_policy is GroupPolicy.ISOLATE
    by_uuid = snapshot.by_uuid
    picked: list[reference.GroupChoice] = []
    totals: dict[tuple[str, str], int] = {}
    # The failed pick that got furthest: (how far, why).
    closest: list[tuple[int, Exclusion]] = []
    found = False

    # How far that pick got (-1: none failed yet), for a quick look.
    deepest = [-1]

    def failed(depth: int, problem: Exclusion) -> None:
        if explain and (not closest or reference.further((depth, problem), closest[0])):
            closest[:] = [(depth, problem)]
            deepest[0] = depth

    def partial_problem(choice: reference.GroupChoice) -> str | None:
        # ``reference.partial_problem``'s reason, without making the
        # exclusion: this runs for every partial pick.
        for allocation in choice.allocations:
            key = (allocation.provider, allocation.resource_class)
            amount = totals.get(key, 0) + allocation.amount
            inventory = by_uuid[allocation.provider].inventories[allocation.resource_class]
            if not inventory.has_room(amount):
                return "insufficient_capacity"
            if amount > inventory.max_unit:
                return "above_max_unit"
        if isolate and choice.suffix != "":
            provider = next(iter(choice.providers))
            if any(earlier.suffix != "" and provider in earlier.providers for earlier in picked):
                return "group_policy"
        return None

    def pruned_at(depth: int, choice: reference.GroupChoice) -> None:
        problem = reference.partial_problem(by_uuid, isolate, picked, choice, totals, anchor)
        if problem is not None:
            failed(depth, problem)

    def complete() -> Candidate | Exclusion:
        if reference.violates_same_subtree(snapshot, request, picked):
            subtree = Exclusion(stage, "same_subtree", None, anchor)
            failed(len(picked), subtree)
            return subtree
        candidate = reference.consolidate(picked, anchor)
        problem = reference.capacity_problem(snapshot, candidate)
        if problem is not None:
            return problem
        if not request.nested_aware and reference.nested_problem(snapshot, candidate):
            nested = Exclusion(stage, "nested_before_1.29", None, anchor)
            failed(len(picked) + 1, nested)
            return nested
        return candidate

    def extend(depth: int) -> Iterator[Candidate | Exclusion]:
        nonlocal found
        if depth == len(per_group):
            item = complete()
            found = found or type(item) is not Exclusion
            yield item
            return
        for choice in per_group[depth]:
            reason = partial_problem(choice)
            if reason is not None:
                pruned[reason] += 1
                # Made into an exclusion only if it may be the furthest: an
                # isolation failure is never closer than another at its depth.
                if explain and (depth > deepest[0] or (
                    depth == deepest[0] and reason != "group_policy"
                )):
                    pruned_at(depth, choice)
                continue
            picked.append(choice)
            for allocation in choice.allocations:
                key = (allocation.provider, allocation.resource_class)
                totals[key] = totals.get(key, 0) + allocation.amount
            yield from extend(depth + 1)
            for allocation in choice.allocations:
                totals[(allocation.provider, allocation.resource_class)] -= allocation.amount
            picked.pop()

    yield from extend(0)
    if explain and not found and closest:
        yield TreeVerdict(attribution.COMBINE, closest[0][1])


class _Replay:
    """A stream computed once and read by several twin trees, each as far as
    it needs: items are pulled from the source only when first asked for.

    Readers get the candidates only. The exclusions and the verdict of the
    original's stream are the same for every twin: ``finished`` counts the
    readers that read it to the end, and ``explained`` gives each with that
    weight, so a twin's explanation costs nothing per item."""

    def __init__(self, source: Iterator, names: Sequence[str], sharing: Mapping[str, str]) -> None:
        self._source = source
        self._items: list = []
        # A candidate's template; None for an exclusion or a verdict.
        self._templates: list[CandidateTemplate | None] = []
        self._done = False
        self._sharing = sharing
        # Where each provider the original's candidates may use sits in
        # ``ReadModel.twin_names``.
        self._position = {uuid: index for index, uuid in enumerate(names)}
        self.finished = 0

    def __iter__(self) -> Iterator:
        items, templates = self._items, self._templates
        position = 0
        while position < len(items) or self._pull():
            item, template = items[position], templates[position]
            position += 1
            if template is not None:
                yield item
        self.finished += 1

    def _pull(self) -> bool:
        """Take one more item from the source; False once it is exhausted."""
        if self._done:
            return False
        item = next(self._source, None)
        if item is None:
            self._done = True
            return False
        self._items.append(item)
        kind = type(item)
        if kind is TreeVerdict or kind is Exclusion:
            self._templates.append(None)
        else:
            self._templates.append(CandidateTemplate.of(item, self._position.get, self._sharing))
        return True

    def renamed(self, names: Sequence[str], anchor: str) -> Iterator:
        """The stream's candidates with the original's uuids replaced by
        ``names`` (the twin's ``twin_names``, by position)."""
        items, templates = self._items, self._templates
        position = 0
        while position < len(items) or self._pull():
            template = templates[position]
            position += 1
            if template is not None:
                yield _new_tuple(ReplayedCandidate, (template, names, anchor))
        self.finished += 1

    def explained(self) -> Iterator[tuple[Exclusion | TreeVerdict, int]]:
        """Each exclusion and verdict of the stream, with how many readers
        (the original and its twins) read past it: those that finished."""
        if self.finished:
            for item, template in zip(self._items, self._templates, strict=True):
                if template is None:
                    yield item, self.finished


# --- The pipeline -------------------------------------------------------------------------


def find_candidates(
    model: ReadModel,
    request: CandidateRequest,
    options: EngineOptions | None = None,
    min_batch: int = _MIN_BATCH,
    explain: bool = True,
) -> CandidateResult:
    """Allocation candidates for ``request`` over the read model.

    The stage order is fixed here; the explanation sums each stage's counts
    over the batches, and counts each tree the batches rule out once (see
    ``attribution``). ``min_batch`` is the fewest roots a batch takes (tests
    lower it to exercise batching on small forests). ``explain`` off spares
    the bookkeeping of the explanation (``bench/explain.py`` measures what
    it costs that way): the answer is the same, its explanation empty.
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
    outcomes: list[StageOutcome] = []
    trees = TreeTally() if explain else None
    fitting = 0
    found: list[AnyCandidate] = []
    seen: set[tuple] = set()
    roots = len(model.snapshot.roots)
    scan = RootScan(start=options.start % roots if limited and roots else 0)
    verdicts: dict[int, Exclusion | None] = {}
    while not scan.exhausted and (stop_at < 0 or len(found) < stop_at):
        missing = None if stop_at < 0 else max(min_batch, _BATCH_FACTOR * (stop_at - len(found)))
        # Cheap per-root checks first: two dict lookups per tree decide
        # which trees the per-provider stages ever look at.
        batch, scan, outcome = eligible_roots(model, request, scan, missing, verdicts, trees)
        outcomes.append(outcome)
        if not batch:
            continue
        # The reference stages next, on this batch only: they define what
        # a candidate is, so the two engines cannot drift apart.
        remaining = -1 if stop_at < 0 else stop_at - len(found)
        candidates, batch_outcomes, anchors = candidates_of_batch(
            model, request, batch, remaining, strategy, seen, trees
        )
        outcomes.extend(batch_outcomes)
        found.extend(candidates)
        # Batches take distinct roots: their fitting trees add up.
        fitting += len(anchors)
    # Summaries from the trees the candidates use, then the limit (or the
    # shuffle), exactly as the reference does them.
    summaries = summarize(model, found, request.nested_aware)
    candidates, summaries = reference.apply_limit(
        model.snapshot, found, summaries, request.limit, options
    )
    explanation = Explanation() if trees is None else _explain(outcomes, roots, trees, fitting)
    return CandidateResult(tuple(candidates), tuple(summaries), explanation)


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


def _explain(
    outcomes: Sequence[StageOutcome], roots: int, trees: TreeTally, fitting: int
) -> Explanation:
    """Per (stage, group) counts summed over batches, each tree ruled out
    counted once, plus the capacity misses that came closest to fitting."""
    kept: dict[tuple[str, str | None], int] = {}
    units: dict[tuple[str, str | None], str] = {}
    excluded: dict[tuple[str, str | None], Counter] = {}
    details: dict[tuple[str, str | None], list[ReasonCount]] = {}
    for outcome in outcomes:
        key = (outcome.report.stage, outcome.report.group)
        kept[key] = kept.get(key, 0) + outcome.report.kept
        units[key] = outcome.report.unit
        excluded.setdefault(key, Counter()).update(dict(outcome.report.excluded))
        details.setdefault(key, []).extend(outcome.report.details)
    return Explanation(
        stages=tuple(
            StageReport(
                stage, group, count, tuple(sorted(excluded[(stage, group)].items())),
                merge_counts(details[(stage, group)]), units[(stage, group)],
            )
            for (stage, group), count in kept.items()
        ),
        nearest_misses=attribution.nearest_misses(outcomes),
        trees=roots,
        excluded_trees=trees.counts(),
        fitting_trees=fitting,
    )
