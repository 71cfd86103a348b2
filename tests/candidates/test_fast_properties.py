"""Property tests: the fast engine against the reference engine (the oracle).

The random forests and requests are the reference property tests' own
generators. Without a limit the fast engine must return exactly the
reference's candidates (as a set, and here even in the same order); with a
limit, a subset of the right size, spread over roots, never twice.
"""
from __future__ import annotations

import dataclasses
import gc
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.api.handlers.allocation_candidates import serialize_result
from stowage.api.versions import Version
from stowage.candidates import fast, reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GenerationStrategy,
    RequestGroup,
)
from stowage.candidates.results import Allocation, ReplayedCandidate
from stowage.candidates.snapshot import Inventory, Provider, Snapshot
from tests.candidates.test_reference_properties import identity, scenarios


def model_of(snapshot: Snapshot) -> ReadModel:
    return ReadModel.build(1, snapshot)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.sampled_from([1, 64]))
def test_without_a_limit_the_fast_engine_returns_exactly_the_reference_candidates(
    scenario, min_batch
):
    snapshot, request = scenario
    expected = reference.find_candidates(snapshot, request)
    found = fast.find_candidates(model_of(snapshot), request, min_batch=min_batch)
    assert [identity(c) for c in found.candidates] == [identity(c) for c in expected.candidates]
    assert {s.uuid for s in found.summaries} == {s.uuid for s in expected.summaries}
    assert set(found.summaries) == set(expected.summaries)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    scenarios(), st.integers(1, 4), st.booleans(), st.integers(0, 2**16), st.sampled_from([1, 64]),
    st.integers(0, 50),
)
def test_with_a_limit_the_fast_engine_returns_a_subset_of_the_right_size(
    scenario, limit, randomize, seed, min_batch, start
):
    """From any ``start`` of the scan (spread_limited_candidates) too."""
    snapshot, request = scenario
    everything = {identity(c) for c in reference.find_candidates(snapshot, request).candidates}
    limited_request = dataclasses.replace(request, limit=limit)
    options = EngineOptions(randomize=randomize, seed=seed, start=start)
    model = model_of(snapshot)
    limited = fast.find_candidates(model, limited_request, options, min_batch=min_batch)
    found = [identity(c) for c in limited.candidates]
    assert len(found) == len(set(found)), "a candidate was returned twice"
    assert len(found) == min(limit, len(everything))
    assert set(found) <= everything
    # Summaries cover exactly the trees the kept candidates take from.
    used_roots = {
        snapshot.by_uuid[uuid].root_uuid for c in limited.candidates for uuid in c.providers
    }
    assert {s.root_uuid for s in limited.summaries} == used_roots if request.nested_aware else True
    again = fast.find_candidates(model, limited_request, options, min_batch=min_batch)
    assert [identity(c) for c in again.candidates] == found


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.integers(0, 5), st.sampled_from(list(GenerationStrategy)))
def test_max_candidates_bounds_the_fast_engine_as_it_bounds_the_reference(
    scenario, max_candidates, strategy
):
    snapshot, request = scenario
    everything = {identity(c) for c in reference.find_candidates(snapshot, request).candidates}
    options = EngineOptions(max_candidates=max_candidates, strategy=strategy)
    found = [identity(c) for c in fast.find_candidates(model_of(snapshot), request, options).candidates]
    # Upstream checks its cap after keeping a candidate: 0 keeps one.
    assert len(found) == min(max(max_candidates, 1), len(everything))
    assert len(found) == len(reference.find_candidates(snapshot, request, options).candidates)
    assert set(found) <= everything


# --- Twin trees: answered once, replayed under other uuids -------------------------------


@st.composite
def forests_with_twins(draw):
    """A drawn scenario plus copies of its trees (new uuids, same everything
    else), so that the fast engine's twin-tree shortcut is in play. A copy
    either keeps the aggregates (copies of trees in a sharing aggregate stay
    in it) or gets aggregates of its own (copied sharing providers serve the
    copied trees). The copies' uuids sort in the reverse order of the
    originals', as real uuids may."""
    snapshot, request = draw(scenarios())
    providers = list(snapshot.providers)
    for copy in range(draw(st.integers(1, 2))):
        prefix = f"copy{copy}-" if draw(st.booleans()) else ""
        for root in snapshot.roots:
            members = snapshot.tree_members[root.uuid]
            names = {
                provider.uuid: f"twin{copy}-{root.uuid}-{len(members) - index}"
                for index, provider in enumerate(members)
            }
            clones = [
                dataclasses.replace(
                    provider,
                    uuid=names[provider.uuid],
                    root_uuid=names[provider.root_uuid],
                    parent_uuid=names.get(provider.parent_uuid),
                    aggregates=frozenset(prefix + aggregate for aggregate in provider.aggregates),
                )
                for provider in members
            ]
            # Anywhere after the original: creation order is what ids follow.
            at = draw(st.integers(providers.index(members[-1]) + 1, len(providers)))
            providers[at:at] = clones
    return Snapshot.of(providers, snapshot.trait_rank), request


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins(), st.sampled_from(list(GenerationStrategy)))
def test_twin_trees_get_the_candidates_the_reference_finds_for_each(scenario, strategy):
    snapshot, request = scenario
    options = EngineOptions(strategy=strategy)
    oracle = reference.find_candidates(snapshot, request, options)
    result = fast.find_candidates(model_of(snapshot), request, options)
    expected = [identity(c) for c in oracle.candidates]
    found = [identity(c) for c in result.candidates]
    if strategy is GenerationStrategy.DEPTH_FIRST:
        assert found == expected
    else:
        # Round robin: the fast engine skips a pick that cannot complete
        # without spending that root's turn, so only the multiset is the same.
        assert Counter(found) == Counter(expected)
    assert set(result.summaries) == set(oracle.summaries)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins(), st.sampled_from(["1.10", "1.12", "1.28", "1.39"]))
def test_twin_trees_answer_the_bodies_the_reference_answers(scenario, version):
    """Replayed candidates are written from their templates (shared
    amounts, uuids by position), not from sorted allocations: the JSON must
    still be the reference's, in every body format."""
    snapshot, request = scenario
    at = Version.parse(version)
    found = serialize_result(fast.find_candidates(model_of(snapshot), request), request, at)
    expected = serialize_result(reference.find_candidates(snapshot, request), request, at)
    assert orjson.loads(found) == orjson.loads(expected)


def hosts_with_devices(hosts: int, devices: int, kind: str, inventory: Inventory) -> Snapshot:
    """Identical hosts h0, h1, ... (VCPU 8), each with ``devices`` children
    holding ``inventory``, named ``<a|z><kind><n>-of-h<host>``: they sort
    before their host on even hosts and after it on odd ones, so a twin's
    renamed allocations and mappings must be sorted again."""
    return Snapshot.of(
        provider
        for host in range(hosts)
        for provider in (
            Provider(f"h{host}", f"h{host}", inventories={"VCPU": Inventory("VCPU", 8)}),
            *(
                Provider(f"{'az'[host % 2]}{kind}{device}-of-h{host}", f"h{host}", f"h{host}",
                         inventories={inventory.resource_class: inventory})
                for device in range(devices)
            ),
        )
    )


def json_body(result, request: CandidateRequest) -> dict:
    """The response body at 1.39, as a client parses it."""
    return orjson.loads(serialize_result(result, request, Version(1, 39)))


def test_identical_hosts_are_worked_out_once():
    snapshot = hosts_with_devices(50, 4, "gpu", Inventory("VGPU", 1))
    request = CandidateRequest(
        groups=(RequestGroup(resources=(("VCPU", 1),)),
                RequestGroup(suffix="G", resources=(("VGPU", 1),))),
    )
    result = fast.find_candidates(model_of(snapshot), request)
    assert len(result.candidates) == 50 * 4
    assert result.candidates[0].allocations == (
        Allocation("agpu0-of-h0", "VGPU", 1), Allocation("h0", "VCPU", 1))
    assert result.candidates[4].allocations == (
        Allocation("h1", "VCPU", 1), Allocation("zgpu0-of-h1", "VGPU", 1))
    assert json_body(result, request)["allocation_requests"][4] == {
        "allocations": {"h1": {"resources": {"VCPU": 1}},
                        "zgpu0-of-h1": {"resources": {"VGPU": 1}}},
        "mappings": {"": ["h1"], "G": ["zgpu0-of-h1"]},
    }
    twins = next(s for s in result.explanation.stages if s.stage == "twin_trees")
    assert twins.kept == 49
    # The group stages looked at one host's five providers, not 250.
    single = next(s for s in result.explanation.stages if s.stage == "single_provider")
    assert single.kept + sum(count for _reason, count in single.excluded) == 5


def test_replayed_candidates_are_frozen_values_equal_to_the_candidate_they_stand_for():
    snapshot = hosts_with_devices(3, 2, "gpu", Inventory("VGPU", 1))
    request = CandidateRequest(
        groups=(RequestGroup(resources=(("VCPU", 1),)),
                RequestGroup(suffix="G", resources=(("VGPU", 1),))),
    )
    first = fast.find_candidates(model_of(snapshot), request).candidates
    again = fast.find_candidates(model_of(snapshot), request).candidates
    replayed = [c for c in first if isinstance(c, ReplayedCandidate)]
    assert replayed, "twin hosts are replayed"
    # Another answer's replays are made from other templates, yet equal.
    assert first == again and {hash(c) for c in first} == {hash(c) for c in again}
    expected = reference.find_candidates(snapshot, request).candidates
    assert [c.whole() if isinstance(c, ReplayedCandidate) else c for c in first] == list(expected)
    with pytest.raises(AttributeError):
        replayed[0].anchor = "h0"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        replayed[0].template.shared_only = True  # type: ignore[misc]


def test_a_group_spread_over_a_twin_tree_maps_its_providers_sorted():
    snapshot = hosts_with_devices(4, 1, "numa", Inventory("MEMORY_MB", 1024))
    request = CandidateRequest(groups=(RequestGroup(resources=(("MEMORY_MB", 512), ("VCPU", 1))),))
    result = fast.find_candidates(model_of(snapshot), request)
    expected = [sorted([f"h{host}", f"{'az'[host % 2]}numa0-of-h{host}"]) for host in range(4)]
    assert [list(dict(c.mappings)[""]) for c in result.candidates] == expected
    body = json_body(result, request)
    assert [answer["mappings"][""] for answer in body["allocation_requests"]] == expected
    twins = next(s for s in result.explanation.stages if s.stage == "twin_trees")
    assert twins.kept == 3


def test_hosts_on_pools_in_one_state_are_worked_out_once_each_with_its_pool():
    pools = [
        Provider(f"pool{pool}", f"pool{pool}", inventories={"DISK_GB": Inventory("DISK_GB", 100)},
                 traits=frozenset({"MISC_SHARES_VIA_AGGREGATE"}),
                 aggregates=frozenset({f"agg{pool}"}))
        for pool in range(3)
    ]
    hosts = [
        Provider(f"h{pool}{host}", f"h{pool}{host}", inventories={"VCPU": Inventory("VCPU", 8)},
                 aggregates=frozenset({f"agg{pool}"}))
        for pool in range(3)
        for host in range(2)
    ]
    model = model_of(Snapshot.of(pools + hosts))
    request = CandidateRequest(groups=(RequestGroup(resources=(("DISK_GB", 10), ("VCPU", 1))),))
    result = fast.find_candidates(model, request)
    assert [c.allocations for c in result.candidates] == [
        (Allocation(f"h{pool}{host}", "VCPU", 1), Allocation(f"pool{pool}", "DISK_GB", 10))
        for pool in range(3)
        for host in range(2)
    ]
    twins = next(s for s in result.explanation.stages if s.stage == "twin_trees")
    assert twins.kept == 5
    # Filtering on an aggregate makes each pool's hosts a kind of their own.
    on_two = CandidateRequest(groups=(RequestGroup(
        resources=(("DISK_GB", 10), ("VCPU", 1)), member_of=(frozenset({"agg0", "agg1"}),),
    ),))
    result = fast.find_candidates(model, on_two)
    assert [c.anchor for c in result.candidates] == ["h00", "h01", "h10", "h11"]
    twins = next(s for s in result.explanation.stages if s.stage == "twin_trees")
    assert twins.kept == 3


# --- Tiny tables: round robin and wide symmetric trees -------------------------------------


def flat_hosts(count: int, vcpu: int = 4) -> Snapshot:
    """``count`` roots h0..h{count-1}, each VCPU ``vcpu``, nothing used."""
    return Snapshot.of(
        Provider(f"h{index}", f"h{index}", inventories={"VCPU": Inventory("VCPU", vcpu)})
        for index in range(count)
    )


def gpu_host(devices: int) -> Snapshot:
    """One host with ``devices`` identical children of VGPU 1::

        host
          +-- gpu0: VGPU 1
          +-- ...
          +-- gpu{devices-1}: VGPU 1
    """
    host = Provider("host", "host", inventories={"VCPU": Inventory("VCPU", 8)})
    return Snapshot.of(
        [host]
        + [
            Provider(f"gpu{index}", "host", "host", inventories={"VGPU": Inventory("VGPU", 1)})
            for index in range(devices)
        ]
    )


def test_a_limited_request_takes_one_candidate_per_root_in_turn():
    snapshot = flat_hosts(10)
    request = CandidateRequest(
        groups=(RequestGroup(suffix="1", resources=(("VCPU", 1),)),
                RequestGroup(suffix="2", resources=(("VCPU", 1),))),
        limit=5,
    )
    result = fast.find_candidates(model_of(snapshot), request)
    assert [c.anchor for c in result.candidates] == ["h0", "h1", "h2", "h3", "h4"]
    assert {s.uuid for s in result.summaries} == {"h0", "h1", "h2", "h3", "h4"}


def test_a_limited_scan_from_a_start_wraps_round_to_the_first_roots():
    snapshot = flat_hosts(10)
    request = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 1),)),), limit=4)
    result = fast.find_candidates(model_of(snapshot), request, EngineOptions(start=18), min_batch=1)
    assert [c.anchor for c in result.candidates] == ["h8", "h9", "h0", "h1"]


def test_a_limited_scan_from_a_start_skips_full_roots_as_from_the_first():
    snapshot = Snapshot.of(
        Provider(f"h{index}", f"h{index}",
                 inventories={"VCPU": Inventory("VCPU", 4, used=4 if index in (3, 4) else 0)})
        for index in range(6)
    )
    request = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 1),)),), limit=3)
    result = fast.find_candidates(model_of(snapshot), request, EngineOptions(start=3), min_batch=1)
    assert [c.anchor for c in result.candidates] == ["h5", "h0", "h1"]


def test_a_limited_request_on_many_roots_looks_at_only_a_batch_of_them():
    snapshot = flat_hosts(1000)
    request = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 1),)),), limit=3)
    result = fast.find_candidates(model_of(snapshot), request)
    assert len(result.candidates) == 3
    eligible = next(s for s in result.explanation.stages if s.stage == "eligible_roots")
    assert eligible.kept == 64


def test_trees_without_room_are_excluded_before_the_group_stages_with_a_reason():
    snapshot = flat_hosts(3, vcpu=1)
    request = CandidateRequest(groups=(RequestGroup(resources=(("VCPU", 2),)),))
    result = fast.find_candidates(model_of(snapshot), request)
    assert result.candidates == ()
    eligible = next(s for s in result.explanation.stages if s.stage == "eligible_roots")
    assert (eligible.kept, eligible.excluded) == (0, (("no_room_in_tree", 3),))


def test_lone_trees_lacking_a_required_trait_are_excluded_by_the_root_filter():
    """A lone tree's groups all land on its root, so the root filter can
    turn it away for a trait; a tree the filter sees alike (same room, same
    root traits) but whose child has the trait must still be answered."""
    lone = Provider("a-lone", "a-lone", inventories={"VCPU": Inventory("VCPU", 8)})
    nested = [
        Provider("b-root", "b-root"),
        Provider("b-child", "b-root", "b-root", inventories={"VCPU": Inventory("VCPU", 8)},
                 traits=frozenset({"HW_CPU_X86_AVX2"})),
    ]
    lone_with_trait = dataclasses.replace(
        lone, uuid="c-lone", root_uuid="c-lone", traits=frozenset({"HW_CPU_X86_AVX2"})
    )
    snapshot = Snapshot.of([lone, *nested, lone_with_trait])
    request = CandidateRequest(groups=(RequestGroup(
        suffix="1", resources=(("VCPU", 1),), required_traits=(frozenset({"HW_CPU_X86_AVX2"}),)
    ),))
    result = fast.find_candidates(model_of(snapshot), request)
    assert [c.anchor for c in result.candidates] == ["b-root", "c-lone"]
    eligible = next(s for s in result.explanation.stages if s.stage == "eligible_roots")
    assert (eligible.kept, eligible.excluded) == (2, (("missing_trait", 1),))


def test_a_wide_symmetric_tree_with_a_limit_stops_at_the_limit():
    snapshot = gpu_host(64)
    request = CandidateRequest(
        groups=tuple(
            RequestGroup(suffix=str(index), resources=(("VGPU", 1),)) for index in range(1, 5)
        ),
        limit=10,
    )
    result = fast.find_candidates(model_of(snapshot), request)
    assert len(result.candidates) == 10
    combine = next(s for s in result.explanation.stages if s.stage == "combine")
    # 64**4 combinations exist; generation stopped after the few it needed.
    assert sum(count for _reason, count in combine.excluded) < 100


def test_a_wide_symmetric_tree_without_a_limit_lists_every_distinct_provider():
    snapshot = gpu_host(64)
    request = CandidateRequest(
        groups=(RequestGroup(suffix="1", resources=(("VGPU", 1),)),)
    )
    result = fast.find_candidates(model_of(snapshot), request)
    assert {c.allocations[0].provider for c in result.candidates} == {
        f"gpu{index}" for index in range(64)
    }


# --- Incremental refresh of the read model -----------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins(), st.data())
def test_replacing_trees_gives_the_model_a_fresh_build_would(scenario, data):
    snapshot, request = scenario
    ids = {provider.uuid: index for index, provider in enumerate(snapshot.providers)}
    roots = [root.uuid for root in snapshot.roots]
    changed = data.draw(st.sets(st.sampled_from(roots)))
    deleted = data.draw(st.sets(st.sampled_from(sorted(changed)))) if changed else set()

    def changed_version(provider: Provider) -> Provider:
        return dataclasses.replace(
            provider,
            inventories={
                name: dataclasses.replace(inventory, used=inventory.capacity)
                for name, inventory in provider.inventories.items()
            },
            traits=provider.traits ^ {"CUSTOM_CHANGED"},
        )

    now = [
        changed_version(provider) if provider.root_uuid in changed else provider
        for provider in snapshot.providers
        if provider.root_uuid not in deleted
    ]
    loaded = Snapshot.of(provider for provider in now if provider.root_uuid in changed)
    before = model_of(snapshot)
    # Answer once first, so that what the model worked out (summaries, tree
    # shapes, root keys) must be carried over correctly or dropped.
    fast.find_candidates(before, request)
    refreshed = before.with_trees(
        2, {ids[root] for root in changed}, loaded, {p.uuid: ids[p.uuid] for p in loaded.providers}
    )
    assert refreshed is not None
    # The replaced model shares the indexes, yet a request still running on
    # it answers (each tree as before or after: tests/candidates/
    # test_read_model_refresh.py); the deleted trees' entries go with it.
    fast.find_candidates(before, request)
    del before
    gc.collect()
    refreshed.release_deleted()
    fresh = ReadModel.build(2, Snapshot.of(now), {p.uuid: ids[p.uuid] for p in now})
    assert refreshed.snapshot.providers == fresh.snapshot.providers
    assert refreshed.snapshot.by_uuid == fresh.snapshot.by_uuid
    assert refreshed.snapshot.roots == fresh.snapshot.roots
    assert dict(refreshed.snapshot.tree_members) == dict(fresh.snapshot.tree_members)
    assert dict(refreshed.free_by_root) == dict(fresh.free_by_root)
    assert refreshed.sharing_providers == fresh.sharing_providers
    assert dict(refreshed.provider_ids) == dict(fresh.provider_ids)
    assert dict(refreshed.root_positions) == dict(fresh.root_positions)
    assert refreshed.uuid_by_id == fresh.uuid_by_id
    expected = reference.find_candidates(Snapshot.of(now), request)
    found = fast.find_candidates(refreshed, request)
    assert [identity(c) for c in found.candidates] == [identity(c) for c in expected.candidates]
    assert set(found.summaries) == set(expected.summaries)


def assert_same_model(model: ReadModel, fresh: ReadModel) -> None:
    assert list(model.snapshot.providers) == list(fresh.snapshot.providers)
    assert model.snapshot.by_uuid == fresh.snapshot.by_uuid
    assert list(model.snapshot.roots) == list(fresh.snapshot.roots)
    assert dict(model.snapshot.tree_members) == dict(fresh.snapshot.tree_members)
    assert dict(model.free_by_root) == dict(fresh.free_by_root)
    assert model.sharing_providers == fresh.sharing_providers
    assert model.sharing_by_aggregate == fresh.sharing_by_aggregate
    assert model.roots_by_key.keys() and sorted(map(sorted, model.roots_by_key.values())) == sorted(
        map(sorted, fresh.roots_by_key.values())
    )
    assert model.revision == fresh.revision


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins(), st.data())
def test_patching_changed_trees_in_place_gives_the_model_a_fresh_build_would(scenario, data):
    """Usage, inventories and traits changed (what claims and inventory
    updates do): patched in place, after the model answered once, so that
    what it worked out for the changed trees must be dropped."""
    snapshot, request = scenario
    ids = {provider.uuid: index for index, provider in enumerate(snapshot.providers)}
    changed = data.draw(st.sets(st.sampled_from([root.uuid for root in snapshot.roots])))
    full = data.draw(st.booleans())

    def changed_version(provider: Provider) -> Provider:
        return dataclasses.replace(
            provider,
            inventories={
                name: dataclasses.replace(
                    inventory, used=inventory.capacity if full else 0, total=inventory.total + 1
                )
                for name, inventory in provider.inventories.items()
            },
            traits=provider.traits ^ {"CUSTOM_CHANGED"},
        )

    now = [changed_version(p) if p.root_uuid in changed else p for p in snapshot.providers]
    loaded = Snapshot.of(provider for provider in now if provider.root_uuid in changed)
    model = model_of(snapshot)
    fast.find_candidates(model, request)
    fast.find_candidates(model, dataclasses.replace(request, limit=2))
    assert model.patch(2, {ids[root] for root in changed}, loaded)
    assert_same_model(model, ReadModel.build(2, Snapshot.of(now), ids))
    expected = reference.find_candidates(Snapshot.of(now), request)
    found = fast.find_candidates(model, request)
    assert [identity(c) for c in found.candidates] == [identity(c) for c in expected.candidates]
    assert set(found.summaries) == set(expected.summaries)


def test_a_patch_refuses_trees_whose_providers_or_aggregates_changed():
    hosts = flat_hosts(3)
    model = model_of(hosts)
    moved = dataclasses.replace(hosts.by_uuid["h1"], aggregates=frozenset({"agg"}))
    assert not model.patch(2, {1}, Snapshot.of([moved]))
    grown = Snapshot.of([hosts.by_uuid["h1"], Provider("c", "h1", "h1")])
    assert not model.patch(2, {1}, grown)
    assert model.revision == 1
    assert model.snapshot.by_uuid["h1"] is hosts.by_uuid["h1"]
