"""The read model brought up to date tree by tree equals a fresh load.

A drawn forest is changed step by step, as the change feed reports writes:
claims and inventory updates (trees keep their providers), trees created
(at the end of the id order, or between older ids, as transactions that
commit out of order leave them), deleted, reshaped (a child added or
removed, a child made a root of its own) and providers moving in and out
of aggregates. After every step the model, patched in place or succeeded
by a model sharing its indexes, must hold exactly what a fresh build of
the same data holds and answer as the reference engine does on it; the
model it replaced, still answering, must not fail and may only offer
allocations that fit each provider as it was before or after.
"""
from __future__ import annotations

import dataclasses
import gc
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.candidates import fast, reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.snapshot import SHARING_TRAIT, Provider, Snapshot
from tests.candidates.test_fast_properties import forests_with_twins
from tests.candidates.test_reference_properties import AGGREGATES, identity

KINDS = ["claim", "claim", "create", "delete", "add child", "remove leaf", "make root", "aggregates"]


@dataclasses.dataclass
class Cloud:
    """The data as storage has it: providers by uuid, with storage ids."""

    providers: dict[str, Provider]
    ids: dict[str, int]
    made: itertools.count = dataclasses.field(default_factory=lambda: itertools.count())

    def snapshot(self, roots: set[str] | None = None) -> Snapshot:
        chosen = [p for p in self.providers.values() if roots is None or p.root_uuid in roots]
        return Snapshot.of(sorted(chosen, key=lambda provider: self.ids[provider.uuid]))

    def live_ids(self) -> dict[str, int]:
        return {uuid: self.ids[uuid] for uuid in self.providers}

    def tree(self, root: str) -> list[Provider]:
        return [p for p in self.providers.values() if p.root_uuid == root]

    def roots(self) -> list[str]:
        return sorted((p.uuid for p in self.providers.values() if p.parent_uuid is None), key=self.ids.__getitem__)

    def free_id(self, draw, at_end: bool) -> int:
        """A storage id never used: past the end, or (a transaction that
        committed after a later one) between two ids in use."""
        used = set(self.ids.values())
        if at_end:
            return max(used, default=0) + 10
        return draw(st.sampled_from([n for n in range(max(used, default=0) + 10) if n not in used]))


def change(draw, cloud: Cloud) -> tuple[set[str], set[str]]:
    """One write of a drawn kind: the roots of the trees it touched before
    and after it (as the change feed's triggers note them)."""
    roots = cloud.roots()
    kind = draw(st.sampled_from(KINDS)) if roots else "create"
    if kind == "create":
        number = next(cloud.made)
        uuid = f"new{number}"
        cloud.providers[uuid] = Provider(uuid, uuid, None, {}, frozenset(), frozenset())
        template = draw(st.sampled_from(sorted(cloud.providers.values(), key=lambda p: p.uuid)))
        cloud.providers[uuid] = dataclasses.replace(
            template, uuid=uuid, root_uuid=uuid, parent_uuid=None
        )
        cloud.ids[uuid] = cloud.free_id(draw, draw(st.booleans()))
        return set(), {uuid}
    root = draw(st.sampled_from(roots))
    tree = cloud.tree(root)
    if kind == "claim":
        for provider in tree:
            cloud.providers[provider.uuid] = dataclasses.replace(provider, inventories={
                name: dataclasses.replace(inventory, used=draw(st.integers(0, inventory.capacity)))
                for name, inventory in provider.inventories.items()
            }, traits=provider.traits ^ draw(st.sampled_from([frozenset(), frozenset({"CUSTOM_CHANGED"})])))
        return {root}, {root}
    if kind == "delete":
        for provider in tree:
            del cloud.providers[provider.uuid]
        return {root}, set()
    if kind == "add child":
        parent = draw(st.sampled_from(tree))
        uuid = f"child{next(cloud.made)}"
        template = draw(st.sampled_from(tree))
        cloud.providers[uuid] = dataclasses.replace(
            template, uuid=uuid, root_uuid=root, parent_uuid=parent.uuid
        )
        cloud.ids[uuid] = cloud.free_id(draw, True)
        return {root}, {root}
    parents = {provider.parent_uuid for provider in tree}
    if kind == "remove leaf":
        leaves = [p for p in tree if p.uuid not in parents and p.parent_uuid is not None]
        if leaves:
            del cloud.providers[draw(st.sampled_from(leaves)).uuid]
        return {root}, {root}
    if kind == "make root":
        children = [p for p in tree if p.parent_uuid is not None]
        if not children:
            return {root}, {root}
        moved = draw(st.sampled_from(children))
        below = {moved.uuid}
        for provider in tree:  # in id order: a parent before its children
            if provider.parent_uuid in below:
                below.add(provider.uuid)
        for uuid in below:
            cloud.providers[uuid] = dataclasses.replace(cloud.providers[uuid], root_uuid=moved.uuid)
        cloud.providers[moved.uuid] = dataclasses.replace(cloud.providers[moved.uuid], parent_uuid=None)
        return {root}, {root, moved.uuid}
    provider = draw(st.sampled_from(tree))
    aggregates = frozenset(draw(st.sets(st.sampled_from(AGGREGATES), max_size=2)))
    traits = provider.traits | {SHARING_TRAIT} if draw(st.booleans()) else provider.traits
    cloud.providers[provider.uuid] = dataclasses.replace(provider, aggregates=aggregates, traits=traits)
    return {root}, {root}


def refreshed(model: ReadModel, cloud: Cloud, before: set[str], after: set[str]) -> ReadModel:
    """``model`` brought to the next revision as ``stowage.domain.candidates``
    does: only the touched trees are reloaded."""
    changed_ids = {model.provider_ids[root] for root in before} | {cloud.ids[root] for root in after}
    loaded = cloud.snapshot(after)
    if model.patch(model.revision + 1, changed_ids, loaded):
        return model
    successor = model.with_trees(
        model.revision + 1, changed_ids, loaded, {p.uuid: cloud.ids[p.uuid] for p in loaded.providers}
    )
    assert successor is not None
    return successor


def assert_same_model(model: ReadModel, fresh: ReadModel) -> None:
    assert list(model.snapshot.providers) == list(fresh.snapshot.providers)
    assert model.snapshot.by_uuid == fresh.snapshot.by_uuid
    assert list(model.snapshot.roots) == list(fresh.snapshot.roots)
    assert dict(model.snapshot.tree_members) == dict(fresh.snapshot.tree_members)
    assert dict(model.free_by_root) == dict(fresh.free_by_root)
    assert dict(model.provider_ids) == dict(fresh.provider_ids)
    assert model.uuid_by_id == fresh.uuid_by_id
    assert dict(model.root_positions) == dict(fresh.root_positions)
    assert model.sharing_providers == fresh.sharing_providers
    assert model.sharing_by_aggregate == fresh.sharing_by_aggregate
    assert model.sharing_root_of == fresh.sharing_root_of
    assert sorted(model.roots_by_key.values()) == sorted(fresh.roots_by_key.values())
    assert model.revision == fresh.revision


def assert_fits_before_or_after(result, before: dict[str, Provider], after: dict[str, Provider]) -> None:
    """Every allocation fits its provider in one of the two states."""
    for candidate in result.candidates:
        for allocation in candidate.allocations:
            states = [
                state[allocation.provider].inventories.get(allocation.resource_class)
                for state in (before, after) if allocation.provider in state
            ]
            assert any(
                inventory is not None and inventory.used + allocation.amount <= inventory.capacity
                for inventory in states
            ), allocation


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins(), st.data())
def test_trees_created_deleted_and_reshaped_among_claims_refresh_to_a_fresh_load(scenario, data):
    snapshot, request = scenario
    cloud = Cloud(
        {p.uuid: p for p in snapshot.providers},
        {p.uuid: 10 * index for index, p in enumerate(snapshot.providers)},
    )
    model = ReadModel.build(1, snapshot, cloud.ids)
    limited = dataclasses.replace(request, limit=2)
    for _step in range(data.draw(st.integers(1, 6))):
        # Answer first, so that what the model worked out (summaries,
        # shapes, root keys) must be kept right or dropped.
        fast.find_candidates(model, request)
        fast.find_candidates(model, limited)
        state_before = dict(cloud.providers)
        touched_before, touched_after = change(data.draw, cloud)
        older = model
        model = refreshed(model, cloud, touched_before, touched_after)
        if older is not model:
            # A request that began on the replaced model finishes on it.
            assert_fits_before_or_after(fast.find_candidates(older, request), state_before, cloud.providers)
            fast.find_candidates(older, limited)
            del older
            gc.collect()
            model.release_deleted()
            assert not model.holds_deleted
        now = cloud.snapshot()
        assert_same_model(model, ReadModel.build(model.revision, now, cloud.live_ids()))
        expected = reference.find_candidates(now, request)
        found = fast.find_candidates(model, request)
        assert [identity(c) for c in found.candidates] == [identity(c) for c in expected.candidates]
        assert set(found.summaries) == set(expected.summaries)
        expected_limited = {identity(c) for c in expected.candidates}
        assert {identity(c) for c in fast.find_candidates(model, limited).candidates} <= expected_limited


def hosts(count: int) -> Snapshot:
    return Snapshot.of(Provider(f"h{index}", f"h{index}") for index in range(count))


def test_a_new_tree_is_added_to_the_model_without_copying_its_indexes():
    model = ReadModel.build(1, hosts(3))
    by_uuid, members, providers = model.snapshot.by_uuid, model.snapshot.tree_members, model.snapshot.providers
    new = Provider("h3", "h3")
    successor = model.with_trees(2, set(), Snapshot.of([new]), {"h3": 3})
    assert successor is not None and successor is not model
    assert successor.snapshot.by_uuid is by_uuid
    assert successor.snapshot.tree_members is members
    assert successor.snapshot.providers is providers
    assert [root.uuid for root in successor.snapshot.roots] == ["h0", "h1", "h2", "h3"]
    # The replaced model still scans the roots it had.
    assert [root.uuid for root in model.snapshot.roots] == ["h0", "h1", "h2"]


def test_a_deleted_trees_entries_stay_while_an_older_model_answers():
    model = ReadModel.build(1, hosts(3))
    successor = model.with_trees(2, {1}, Snapshot.of([]), {})
    assert successor is not None
    assert [root.uuid for root in successor.snapshot.roots] == ["h0", "h2"]
    assert "h1" in successor.snapshot.by_uuid and successor.holds_deleted
    assert model.snapshot.tree_members["h1"] == (Provider("h1", "h1"),)
    del model
    gc.collect()
    successor.release_deleted()
    assert "h1" not in successor.snapshot.by_uuid
    assert "h1" not in successor.snapshot.tree_members
    assert 1 not in successor.uuid_by_id and "h1" not in successor.provider_ids


def test_the_second_structural_change_reuses_the_list_the_first_one_left():
    model = ReadModel.build(1, hosts(2))
    first = model.with_trees(2, set(), Snapshot.of([Provider("h2", "h2")]), {"h2": 2})
    assert first is not None
    original_list = model.snapshot.roots
    del model
    gc.collect()
    second = first.with_trees(3, set(), Snapshot.of([Provider("h3", "h3")]), {"h3": 3})
    assert second is not None
    assert second.snapshot.roots is original_list
    assert [root.uuid for root in second.snapshot.roots] == ["h0", "h1", "h2", "h3"]
    assert [root.uuid for root in first.snapshot.roots] == ["h0", "h1", "h2"]


def test_a_refresh_finding_a_known_provider_in_an_unnamed_tree_asks_for_a_full_load():
    model = ReadModel.build(1, hosts(2))
    moved = Provider("h1", "h0", "h0")
    assert model.with_trees(2, {0}, Snapshot.of([Provider("h0", "h0"), moved]), {"h0": 0, "h1": 1}) is None
    assert [root.uuid for root in model.snapshot.roots] == ["h0", "h1"]
    assert model.revision == 1
