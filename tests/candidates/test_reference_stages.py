"""Table-driven tests of the reference engine's stages on tiny snapshots."""
from __future__ import annotations

import pytest

from stowage.candidates import reference
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GenerationStrategy,
    GroupPolicy,
    RequestGroup,
)
from stowage.candidates.snapshot import SHARING_TRAIT, Inventory, Provider, Snapshot


def provider(uuid, parent=None, root=None, inventory=None, traits=(), aggregates=()):
    """``inventory`` is {class: total} or {class: Inventory}."""
    inventories = {
        name: value if isinstance(value, Inventory) else Inventory(name, value)
        for name, value in (inventory or {}).items()
    }
    return Provider(
        uuid=uuid,
        root_uuid=root or (uuid if parent is None else parent),
        parent_uuid=parent,
        inventories=inventories,
        traits=frozenset(traits),
        aggregates=frozenset(aggregates),
    )


def allocations_of(result) -> list[dict[str, dict[str, int]]]:
    """Each candidate as {provider: {class: amount}}, for readable asserts."""
    found = []
    for candidate in result.candidates:
        by_provider: dict[str, dict[str, int]] = {}
        for allocation in candidate.allocations:
            by_provider.setdefault(allocation.provider, {})[allocation.resource_class] = allocation.amount
        found.append(by_provider)
    return found


# --- single-provider groups -----------------------------------------------------------------

ONE_PROVIDER_CASES = [
    # (case, provider, group, expected reason or None, numbers)
    ("no inventory", provider("p", inventory={"DISK_GB": 5}), RequestGroup("1", (("VCPU", 1),)),
     "no_inventory", {}),
    ("not enough room", provider("p", inventory={"VCPU": Inventory("VCPU", 4, used=3)}),
     RequestGroup("1", (("VCPU", 2),)), "insufficient_capacity", {"requested": 2, "used": 3, "capacity": 4}),
    ("reserved counts against capacity", provider("p", inventory={"VCPU": Inventory("VCPU", 4, reserved=3)}),
     RequestGroup("1", (("VCPU", 2),)), "insufficient_capacity", {"capacity": 1}),
    ("allocation ratio raises capacity",
     provider("p", inventory={"VCPU": Inventory("VCPU", 4, allocation_ratio=2.0, used=6)}),
     RequestGroup("1", (("VCPU", 2),)), None, {}),
    ("below min_unit", provider("p", inventory={"VCPU": Inventory("VCPU", 8, min_unit=2)}),
     RequestGroup("1", (("VCPU", 1),)), "below_min_unit", {}),
    ("above max_unit", provider("p", inventory={"VCPU": Inventory("VCPU", 8, max_unit=2)}),
     RequestGroup("1", (("VCPU", 3),)), "above_max_unit", {}),
    ("off step_size", provider("p", inventory={"VCPU": Inventory("VCPU", 8, step_size=2)}),
     RequestGroup("1", (("VCPU", 3),)), "step_size", {}),
    ("missing trait", provider("p", inventory={"VCPU": 4}, traits=["CUSTOM_A"]),
     RequestGroup("1", (("VCPU", 1),), required_traits=(frozenset({"CUSTOM_B", "CUSTOM_C"}),)),
     "missing_trait", {"trait": "CUSTOM_B|CUSTOM_C"}),
    ("any of the traits will do", provider("p", inventory={"VCPU": 4}, traits=["CUSTOM_C"]),
     RequestGroup("1", (("VCPU", 1),), required_traits=(frozenset({"CUSTOM_B", "CUSTOM_C"}),)),
     None, {}),
    ("forbidden trait", provider("p", inventory={"VCPU": 4}, traits=["CUSTOM_A"]),
     RequestGroup("1", (("VCPU", 1),), forbidden_traits=frozenset({"CUSTOM_A"})), "forbidden_trait",
     {"trait": "CUSTOM_A"}),
    ("not in aggregate", provider("p", inventory={"VCPU": 4}, aggregates=["agg-1"]),
     RequestGroup("1", (("VCPU", 1),), member_of=(frozenset({"agg-2"}),)), "not_in_aggregate", {}),
    ("forbidden aggregate", provider("p", inventory={"VCPU": 4}, aggregates=["agg-1"]),
     RequestGroup("1", (("VCPU", 1),), forbidden_aggregates=frozenset({"agg-1"})),
     "forbidden_aggregate", {}),
    ("outside in_tree", provider("p", inventory={"VCPU": 4}),
     RequestGroup("1", (("VCPU", 1),), in_tree="elsewhere"), "outside_tree", {}),
]


@pytest.mark.parametrize(
    "case, candidate, group, reason, numbers", ONE_PROVIDER_CASES, ids=[c[0] for c in ONE_PROVIDER_CASES]
)
def test_single_provider_stage_keeps_or_explains_each_provider(case, candidate, group, reason, numbers):
    choices, outcome = reference.single_provider_choices(Snapshot.of([candidate]), group, None)
    if reason is None:
        assert [choice.providers for choice in choices] == [frozenset({"p"})]
        assert outcome.exclusions == ()
        return
    assert choices == []
    (exclusion,) = outcome.exclusions
    assert exclusion.reason == reason
    for name, value in numbers.items():
        assert getattr(exclusion, name) == value


def test_a_sharing_provider_serves_its_own_tree_and_its_aggregate_peers():
    snapshot = Snapshot.of([
        provider("cn1", aggregates=["agg"]),
        provider("cn2"),
        provider("ss", inventory={"DISK_GB": 100}, traits=[SHARING_TRAIT], aggregates=["agg"]),
    ])
    choices, _ = reference.single_provider_choices(snapshot, RequestGroup("1", (("DISK_GB", 10),)), None)
    assert [choice.anchor for choice in choices] == ["cn1", "ss"]


def test_root_traits_restrict_the_anchors():
    snapshot = Snapshot.of([
        provider("cn1", inventory={"VCPU": 4}, traits=["CUSTOM_ROOT"]),
        provider("cn2", inventory={"VCPU": 4}),
    ])
    request = CandidateRequest((RequestGroup("", (("VCPU", 1),)),), root_required=frozenset({"CUSTOM_ROOT"}))
    assert allocations_of(reference.find_candidates(snapshot, request)) == [{"cn1": {"VCPU": 1}}]
    request = CandidateRequest((RequestGroup("", (("VCPU", 1),)),), root_forbidden=frozenset({"CUSTOM_ROOT"}))
    assert allocations_of(reference.find_candidates(snapshot, request)) == [{"cn2": {"VCPU": 1}}]


# --- the unsuffixed group --------------------------------------------------------------------

NUMA_HOST = [
    provider("cn", aggregates=["agg-root"], traits=["CUSTOM_ROOT"]),
    provider("numa0", parent="cn", inventory={"VCPU": 4, "MEMORY_MB": 1024}, traits=["CUSTOM_A"]),
    provider("numa1", parent="cn", inventory={"VCPU": 4}, traits=["CUSTOM_B"]),
    provider("other", inventory={"VCPU": 4}, aggregates=["agg-root"]),
]


@pytest.mark.parametrize(
    "case, group, expected",
    [
        ("resources spread over children of one tree",
         RequestGroup("", (("VCPU", 1), ("MEMORY_MB", 512))),
         [{"numa0": {"VCPU": 1, "MEMORY_MB": 512}}, {"numa0": {"MEMORY_MB": 512}, "numa1": {"VCPU": 1}}]),
        ("the providers used carry the required traits together",
         RequestGroup("", (("VCPU", 1), ("MEMORY_MB", 512)), required_traits=(frozenset({"CUSTOM_B"}),)),
         [{"numa0": {"MEMORY_MB": 512}, "numa1": {"VCPU": 1}}]),
        ("traits of a root that gives nothing do not count",
         RequestGroup("", (("VCPU", 1),), required_traits=(frozenset({"CUSTOM_ROOT"}),)),
         []),
        ("a forbidden trait on any provider used excludes the combination",
         RequestGroup("", (("VCPU", 1), ("MEMORY_MB", 512)), forbidden_traits=frozenset({"CUSTOM_B"})),
         [{"numa0": {"VCPU": 1, "MEMORY_MB": 512}}]),
        ("member_of is met by the root of the tree",
         RequestGroup("", (("MEMORY_MB", 512),), member_of=(frozenset({"agg-root"}),)),
         [{"numa0": {"MEMORY_MB": 512}}]),
        ("a forbidden aggregate on the root excludes its children",
         RequestGroup("", (("VCPU", 1),), forbidden_aggregates=frozenset({"agg-root"})),
         []),
        ("in_tree confines the group to one tree",
         RequestGroup("", (("VCPU", 1),), in_tree="other"),
         [{"other": {"VCPU": 1}}]),
    ],
)
def test_the_unsuffixed_group_spreads_over_a_tree(case, group, expected):
    result = reference.find_candidates(Snapshot.of(NUMA_HOST), CandidateRequest((group,)))
    assert allocations_of(result) == expected


SHARED_STORAGE = [
    provider("cn1", inventory={"VCPU": 4}, aggregates=["agg"]),
    provider("cn2", inventory={"VCPU": 4, "DISK_GB": 100}),
    provider("ss", inventory={"DISK_GB": 100}, traits=[SHARING_TRAIT], aggregates=["agg"]),
]


def test_the_unsuffixed_group_takes_from_a_sharing_provider_in_an_aggregate():
    group = RequestGroup("", (("VCPU", 1), ("DISK_GB", 10)))
    result = reference.find_candidates(Snapshot.of(SHARED_STORAGE), CandidateRequest((group,)))
    assert allocations_of(result) == [
        {"cn1": {"VCPU": 1}, "ss": {"DISK_GB": 10}},
        {"cn2": {"VCPU": 1, "DISK_GB": 10}},
    ]


def test_in_tree_on_the_unsuffixed_group_ignores_sharing_providers():
    group = RequestGroup("", (("VCPU", 1), ("DISK_GB", 10)), in_tree="cn1")
    result = reference.find_candidates(Snapshot.of(SHARED_STORAGE), CandidateRequest((group,)))
    assert result.candidates == ()


def test_a_sharing_provider_alone_is_one_candidate_whatever_it_serves():
    group = RequestGroup("", (("DISK_GB", 10),))
    snapshot = Snapshot.of(SHARED_STORAGE[::2])
    result = reference.find_candidates(snapshot, CandidateRequest((group,)))
    assert allocations_of(result) == [{"ss": {"DISK_GB": 10}}]


# --- combining groups ----------------------------------------------------------------------

TWO_GROUPS = (RequestGroup("1", (("VCPU", 2),)), RequestGroup("2", (("VCPU", 2),)))


@pytest.mark.parametrize(
    "case, inventory, policy, expected",
    [
        ("groups may share a provider", {"VCPU": 4}, GroupPolicy.NONE, [{"cn": {"VCPU": 4}}]),
        ("isolate keeps groups apart", {"VCPU": 4}, GroupPolicy.ISOLATE, []),
        ("summed groups must still fit", {"VCPU": 3}, GroupPolicy.NONE, []),
        ("summed groups must respect max_unit", {"VCPU": Inventory("VCPU", 8, max_unit=3)},
         GroupPolicy.NONE, []),
    ],
)
def test_combining_groups_on_one_provider(case, inventory, policy, expected):
    snapshot = Snapshot.of([provider("cn", inventory=inventory)])
    result = reference.find_candidates(snapshot, CandidateRequest(TWO_GROUPS, group_policy=policy))
    assert allocations_of(result) == expected


def test_same_subtree_needs_one_chosen_provider_above_the_others():
    snapshot = Snapshot.of([
        provider("cn"),
        provider("nic1", parent="cn", root="cn", traits=["CUSTOM_NIC"]),
        provider("pf1", parent="nic1", root="cn", inventory={"CUSTOM_VF": 4}),
        provider("nic2", parent="cn", root="cn", traits=["CUSTOM_NIC"]),
    ])
    request = CandidateRequest(
        (
            RequestGroup("_NIC", required_traits=(frozenset({"CUSTOM_NIC"}),)),
            RequestGroup("_PORT", (("CUSTOM_VF", 1),)),
        ),
        group_policy=GroupPolicy.NONE,
        same_subtrees=(frozenset({"_NIC", "_PORT"}),),
    )
    result = reference.find_candidates(snapshot, request)
    assert [dict(candidate.mappings) for candidate in result.candidates] == [
        {"_NIC": ("nic1",), "_PORT": ("pf1",)}
    ]


def test_before_1_29_a_candidate_may_not_use_two_providers_of_one_tree():
    group = RequestGroup("", (("VCPU", 1), ("MEMORY_MB", 512)))
    snapshot = Snapshot.of(NUMA_HOST)
    old = reference.find_candidates(snapshot, CandidateRequest((group,), nested_aware=False))
    assert allocations_of(old) == [{"numa0": {"VCPU": 1, "MEMORY_MB": 512}}]
    assert [summary.uuid for summary in old.summaries] == ["numa0"]
    new = reference.find_candidates(snapshot, CandidateRequest((group,)))
    assert [summary.uuid for summary in new.summaries] == ["cn", "numa0", "numa1"]


@pytest.mark.parametrize(
    "strategy, expected_anchors",
    [(GenerationStrategy.DEPTH_FIRST, ["a", "a"]), (GenerationStrategy.BREADTH_FIRST, ["a", "b"])],
)
def test_the_generation_strategy_decides_which_anchors_fill_max_candidates(strategy, expected_anchors):
    snapshot = Snapshot.of([
        provider("a"), provider("a1", parent="a", inventory={"VCPU": 1}),
        provider("a2", parent="a", inventory={"VCPU": 1}),
        provider("b"), provider("b1", parent="b", inventory={"VCPU": 1}),
    ])
    options = EngineOptions(max_candidates=2, strategy=strategy)
    result = reference.find_candidates(snapshot, CandidateRequest((RequestGroup("", (("VCPU", 1),)),)), options)
    assert [candidate.anchor for candidate in result.candidates] == expected_anchors


def test_a_limit_keeps_the_summaries_of_the_trees_still_used():
    result = reference.find_candidates(
        Snapshot.of(SHARED_STORAGE), CandidateRequest((RequestGroup("", (("VCPU", 1),)),), limit=1)
    )
    assert allocations_of(result) == [{"cn1": {"VCPU": 1}}]
    assert [summary.uuid for summary in result.summaries] == ["cn1"]


def test_no_candidates_comes_with_the_nearest_miss():
    snapshot = Snapshot.of([
        provider("small", inventory={"VCPU": Inventory("VCPU", 4, used=3)}),
        provider("smaller", inventory={"VCPU": Inventory("VCPU", 2, used=2)}),
    ])
    result = reference.find_candidates(snapshot, CandidateRequest((RequestGroup("", (("VCPU", 2),)),)))
    assert result.candidates == ()
    nearest = result.explanation.nearest_misses[0]
    assert (nearest.provider, nearest.requested, nearest.used, nearest.capacity) == ("small", 2, 3, 4)
    assert ("insufficient_capacity", 2) in result.explanation.stages[1].excluded
