"""The explanation keeps counts, not an object per provider or per tree:
what it holds on to stays bounded however many providers each stage
excludes and however different the trees are.

Topology of the engine test (every tree one provider, each with its own
usage, so that no two roots are alike and every verdict is new)::

    h0: VCPU 100,000, 1 used     h1: VCPU 100,000, 2 used     ...     h{n-1}
"""
from __future__ import annotations

import gc
import tracemalloc

from stowage.candidates import fast, reference
from stowage.candidates.attribution import NEAREST_MISSES, ExclusionTally, TreeTally
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import CandidateRequest, GroupPolicy, RequestGroup
from stowage.candidates.results import Exclusion
from stowage.candidates.snapshot import Inventory, Provider, Snapshot

MIB = 2**20


def retained(fill) -> int:
    """Bytes still allocated once ``fill()`` has returned what it keeps."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = fill()
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return current


def test_a_stage_tally_keeps_counts_and_a_few_misses_not_its_exclusions():
    def fill() -> ExclusionTally:
        tally = ExclusionTally()
        for index in range(100_000):
            tally.add(Exclusion("single_provider", "insufficient_capacity", "1", f"p{index}",
                                "VCPU", 8, 3 + index % 4, 10))
            tally.add(Exclusion("single_provider", "missing_trait", "1", f"p{index}",
                                trait="CUSTOM_X"))
        return tally

    assert retained(fill) < 1 * MIB
    outcome = fill().outcome("single_provider", "1", 0, "providers")
    assert dict(outcome.report.excluded) == {"insufficient_capacity": 100_000,
                                             "missing_trait": 100_000}
    assert len(outcome.nearest) == NEAREST_MISSES
    # The closest keep their numbers: 3 used of 10, 8 wanted.
    assert {(miss.shortfall, miss.used) for miss in outcome.nearest} == {(1, 3)}
    capacity = next(c for c in outcome.report.details if c.reason == "insufficient_capacity")
    assert (capacity.count, capacity.requested, capacity.free) == (100_000, 8, 7)


def test_a_tree_tally_of_trees_all_different_keeps_one_count_per_reason():
    def fill() -> TreeTally:
        trees = TreeTally()
        for index in range(100_000):
            trees.add("tree_room", Exclusion("eligible_roots", "no_room_in_tree", None,
                                             f"h{index}", "VCPU", 100, free=index % 90))
        return trees

    assert retained(fill) < 2 * MIB
    (count,) = fill().counts()
    assert (count.count, count.free, count.stage) == (100_000, 89, "tree_room")


def different_hosts(count: int) -> Snapshot:
    return Snapshot.of(
        Provider(f"h{index}", f"h{index}",
                 inventories={"VCPU": Inventory("VCPU", 100_000, used=1 + index)},
                 aggregates=frozenset({f"agg{index}"}))
        for index in range(count)
    )


def explained_memory(count: int, request: CandidateRequest) -> int:
    """What explaining adds to the fast engine's peak, in bytes."""
    model = ReadModel.build(1, different_hosts(count))
    fast.find_candidates(model, request)  # the model's per-tree memos
    peaks = []
    for explain in (False, True):
        gc.collect()
        tracemalloc.start()
        try:
            fast.find_candidates(model, request, explain=explain)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return peaks[1] - peaks[0]


def test_the_explanation_of_trees_all_different_does_not_grow_with_them():
    """20,000 different trees cost the explanation no more than 5,000 do:
    the room filter (every tree short of VCPU, each by its own amount), the
    lone trees' group stage (every tree in the wrong aggregate), and a
    second group each tree is short for by its own amount."""
    short = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 100_000),)),))
    elsewhere = CandidateRequest(groups=(RequestGroup(
        resources=(("VCPU", 1),), member_of=(frozenset({"agg-none"}),)
    ),))
    second = CandidateRequest(groups=(
        RequestGroup("1", (("VCPU", 1),)), RequestGroup("2", (("VCPU", 100_000),)),
    ), group_policy=GroupPolicy.NONE)
    for request in (short, elsewhere, second):
        small, large = explained_memory(5_000, request), explained_memory(20_000, request)
        assert large < small + 1 * MIB, (small, large)


def test_both_engines_explain_trees_all_different_with_one_count_per_reason():
    request = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 100_000),)),))
    snapshot = different_hosts(2_000)
    for result in (reference.find_candidates(snapshot, request),
                   fast.find_candidates(ReadModel.build(1, snapshot), request)):
        (count,) = result.explanation.excluded_trees
        assert (count.count, count.reason, count.requested, count.free) == (
            2_000, "no_room_in_tree", 100_000, 99_999
        )
