"""Property tests: the reference engine against an independent brute force.

Hypothesis draws small random forests (nested trees, sharing providers,
traits, aggregates, partly used inventories) and random requests (an
unsuffixed group and/or suffixed groups, resourceless groups in a
same_subtree, traits, aggregates, in_tree, root traits, group policy).

The brute force below does not reuse the engine: for every root and every
way of assigning a provider to each "slot" (one per class of the unsuffixed
group, one per suffixed group) it checks the whole assignment against the
rules as the API documents them. The engine must return exactly the
distinct valid assignments, none twice, and nothing over capacity.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.candidates.reference import find_candidates
from stowage.candidates.request import (
    CandidateRequest,
    EngineOptions,
    GroupPolicy,
    RequestGroup,
)
from stowage.candidates.snapshot import SHARING_TRAIT, Inventory, Provider, Snapshot

CLASSES = ("VCPU", "DISK_GB")
TRAITS = ("CUSTOM_A", "CUSTOM_B", "CUSTOM_C")
AGGREGATES = ("agg-1", "agg-2")


# --- Strategies -----------------------------------------------------------------------


def sometimes(draw, strategy, otherwise):
    """A drawn value one time in four, so that many requests can match."""
    return draw(strategy) if draw(st.integers(0, 3)) == 0 else otherwise


@st.composite
def inventories(draw, resource_class: str) -> Inventory:
    total = draw(st.integers(1, 6))
    reserved = sometimes(draw, st.integers(0, total - 1), 0)
    ratio = sometimes(draw, st.sampled_from([1.5, 2.0]), 1.0)
    min_unit = sometimes(draw, st.integers(1, 2), 1)
    max_unit = sometimes(draw, st.integers(min_unit, 4), total)
    capacity = int((total - reserved) * ratio)
    return Inventory(
        resource_class=resource_class,
        total=total,
        reserved=reserved,
        min_unit=min_unit,
        max_unit=max_unit,
        step_size=sometimes(draw, st.integers(1, 2), 1),
        allocation_ratio=ratio,
        used=sometimes(draw, st.integers(0, capacity), 0),
    )


@st.composite
def snapshots(draw) -> Snapshot:
    """One to three trees up to three levels deep, plus up to two sharing
    providers of their own; any provider may share and be in aggregates."""
    providers: list[Provider] = []

    def add(parent: Provider | None, sharing: bool = False) -> Provider:
        classes = draw(st.sets(st.sampled_from(CLASSES), max_size=2))
        traits = set(draw(st.sets(st.sampled_from(TRAITS), max_size=2)))
        if sharing or draw(st.integers(0, 4)) == 0:
            traits.add(SHARING_TRAIT)
        uuid = f"p{len(providers)}"
        provider = Provider(
            uuid=uuid,
            root_uuid=parent.root_uuid if parent else uuid,
            parent_uuid=parent.uuid if parent else None,
            inventories={name: draw(inventories(name)) for name in sorted(classes)},
            traits=frozenset(traits),
            aggregates=frozenset(draw(st.sets(st.sampled_from(AGGREGATES), max_size=2))),
        )
        providers.append(provider)
        return provider

    for _tree in range(draw(st.integers(1, 3))):
        root = add(None)
        for _child in range(draw(st.integers(0, 2))):
            child = add(root)
            if draw(st.integers(0, 2)) == 0:
                add(child)
    for _shared in range(draw(st.integers(0, 2))):
        add(None, sharing=True)
    return Snapshot.of(providers)


def any_of_sets(values, max_size):
    return st.lists(
        st.frozensets(st.sampled_from(values), min_size=1, max_size=2), max_size=max_size
    ).map(tuple)


@st.composite
def groups(draw, suffix: str, snapshot: Snapshot, resourceless: bool) -> RequestGroup:
    resources = ()
    if not resourceless:
        classes = draw(
            st.lists(st.sampled_from(CLASSES), min_size=1, max_size=2 if suffix == "" else 1, unique=True)
        )
        resources = tuple((name, sometimes(draw, st.integers(2, 3), 1)) for name in classes)
    in_tree = None
    if draw(st.integers(0, 4)) == 0:
        in_tree = draw(st.sampled_from([p.uuid for p in snapshot.providers] + ["missing"]))
    return RequestGroup(
        suffix=suffix,
        resources=resources,
        required_traits=sometimes(draw, any_of_sets(TRAITS + (SHARING_TRAIT,), 2), ()),
        forbidden_traits=sometimes(draw, st.frozensets(st.sampled_from(TRAITS), max_size=1), frozenset()),
        member_of=sometimes(draw, any_of_sets(AGGREGATES, 1), ()),
        forbidden_aggregates=sometimes(
            draw, st.frozensets(st.sampled_from(AGGREGATES), max_size=1), frozenset()
        ),
        in_tree=in_tree,
    )


@st.composite
def requests(draw, snapshot: Snapshot) -> CandidateRequest:
    with_unsuffixed = draw(st.booleans())
    suffixes = ["1", "2"][: draw(st.integers(0 if with_unsuffixed else 1, 2))]
    same_subtree = draw(st.booleans()) and bool(suffixes)
    drawn = []
    if with_unsuffixed:
        drawn.append(draw(groups("", snapshot, resourceless=False)))
    for index, suffix in enumerate(suffixes):
        # A suffixed group may lack resources only inside a same_subtree,
        # and some group must ask for resources.
        may_be_resourceless = same_subtree and (with_unsuffixed or index > 0)
        resourceless = may_be_resourceless and draw(st.booleans())
        drawn.append(draw(groups(suffix, snapshot, resourceless)))
    same_subtrees = (frozenset(suffixes),) if same_subtree else ()
    return CandidateRequest(
        groups=tuple(drawn),
        group_policy=draw(st.sampled_from([None, GroupPolicy.NONE, GroupPolicy.ISOLATE])),
        root_required=sometimes(draw, st.frozensets(st.sampled_from(TRAITS), max_size=1), frozenset()),
        root_forbidden=sometimes(draw, st.frozensets(st.sampled_from(TRAITS), max_size=1), frozenset()),
        same_subtrees=same_subtrees,
        nested_aware=draw(st.integers(0, 3)) > 0,
    )


# --- The brute force ------------------------------------------------------------------


class BruteForce:
    """Every valid candidate, found by checking every assignment."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.providers = list(snapshot.providers)
        self.by_uuid = {provider.uuid: provider for provider in self.providers}

    def ancestors(self, uuid: str) -> set[str]:
        found = set()
        while uuid is not None:
            found.add(uuid)
            uuid = self.by_uuid[uuid].parent_uuid
        return found

    def shares_into(self, provider: Provider, anchor: str) -> bool:
        """A sharing provider in an aggregate with some provider of anchor's tree."""
        return provider.traits.__contains__(SHARING_TRAIT) and any(
            other.root_uuid == anchor and other.aggregates & provider.aggregates
            for other in self.providers
        )

    @staticmethod
    def fits(provider: Provider, resource_class: str, amount: int) -> bool:
        inventory = provider.inventories.get(resource_class)
        if inventory is None:
            return False
        return (
            inventory.min_unit <= amount <= inventory.max_unit
            and amount % inventory.step_size == 0
            and inventory.used + amount <= (inventory.total - inventory.reserved) * inventory.allocation_ratio
        )

    @staticmethod
    def meets(have: frozenset[str], any_of_sets) -> bool:
        return all(any_of & have for any_of in any_of_sets)

    def tree_of(self, uuid: str | None) -> str | None:
        if uuid is None:
            return None
        provider = self.by_uuid.get(uuid)
        return provider.root_uuid if provider else "<none>"

    def single_ok(self, group: RequestGroup, provider: Provider, anchor: str) -> bool:
        if not (provider.root_uuid == anchor or self.shares_into(provider, anchor)):
            return False
        tree = self.tree_of(group.in_tree)
        if tree is not None and provider.root_uuid != tree:
            return False
        return (
            self.meets(provider.traits, group.required_traits)
            and not provider.traits & group.forbidden_traits
            and self.meets(provider.aggregates, group.member_of)
            and not provider.aggregates & group.forbidden_aggregates
            and all(self.fits(provider, name, amount) for name, amount in group.resources)
        )

    def spread_slot_ok(
        self, group: RequestGroup, provider: Provider, resource_class: str, amount: int, anchor: str
    ) -> bool:
        tree = self.tree_of(group.in_tree)
        root = self.by_uuid[anchor]
        if provider.root_uuid == anchor:
            if tree is not None and anchor != tree:
                return False
        elif not (
            tree is None
            and self.shares_into(provider, anchor)
            and self.meets(provider.aggregates, group.member_of)
        ):
            return False
        if group.member_of and not (
            self.meets(provider.aggregates, group.member_of)
            or self.meets(root.aggregates, group.member_of)
        ):
            return False
        if (provider.aggregates | root.aggregates) & group.forbidden_aggregates:
            return False
        return self.fits(provider, resource_class, amount)

    def candidates(self, request: CandidateRequest) -> set:
        found = set()
        for anchor in (p.uuid for p in self.providers if p.parent_uuid is None):
            root = self.by_uuid[anchor]
            if not request.root_required <= root.traits or root.traits & request.root_forbidden:
                continue
            found |= self._candidates_for(request, anchor)
        return found

    def _candidates_for(self, request: CandidateRequest, anchor: str) -> set:
        # One slot per (group, class) of the unsuffixed group, one per other group.
        slots = []
        for group in request.groups:
            if group.single_provider or not group.resources:
                options = [p for p in self.providers if self.single_ok(group, p, anchor)]
                slots.append((group, None, options))
            else:
                for name, amount in group.resources:
                    options = [
                        p for p in self.providers if self.spread_slot_ok(group, p, name, amount, anchor)
                    ]
                    slots.append((group, (name, amount), options))
        found = set()
        for assignment in itertools.product(*(options for _g, _r, options in slots)):
            candidate = self._check(request, list(zip(slots, assignment, strict=False)))
            if candidate is not None:
                found.add(candidate)
        return found

    def _check(self, request: CandidateRequest, assignment) -> tuple | None:
        totals: dict[tuple[str, str], int] = defaultdict(int)
        mappings: dict[str, set[str]] = defaultdict(set)
        spread_traits: dict[str, set[str]] = defaultdict(set)
        for (group, resource, _options), provider in assignment:
            mappings[group.suffix].add(provider.uuid)
            if resource is None:
                for name, amount in group.resources:
                    totals[(provider.uuid, name)] += amount
            else:
                totals[(provider.uuid, resource[0])] += resource[1]
                spread_traits[group.suffix] |= provider.traits
        # The unsuffixed group's providers, together, carry its traits.
        for group in request.groups:
            if group.single_provider or not group.resources:
                continue
            have = frozenset(spread_traits[group.suffix])
            if not self.meets(have, group.required_traits) or have & group.forbidden_traits:
                return None
        if request.group_policy is GroupPolicy.ISOLATE:
            picked = [next(iter(mappings[g.suffix])) for g in request.groups if g.suffix]
            if len(set(picked)) != len(picked):
                return None
        for suffixes in request.same_subtrees:
            chosen = set().union(*(mappings[suffix] for suffix in suffixes))
            common = set.intersection(*(self.ancestors(uuid) for uuid in chosen))
            if not common & chosen:
                return None
        for (uuid, name), amount in totals.items():
            inventory = self.by_uuid[uuid].inventories[name]
            if inventory.used + amount > inventory.capacity or amount > inventory.max_unit:
                return None
        if not request.nested_aware:
            used = {uuid for uuid, _name in totals}
            if len({self.by_uuid[uuid].root_uuid for uuid in used}) != len(used):
                return None
        return (
            frozenset((uuid, name, amount) for (uuid, name), amount in totals.items()),
            frozenset((suffix, frozenset(uuids)) for suffix, uuids in mappings.items()),
        )


def identity(candidate) -> tuple:
    return (
        frozenset((a.provider, a.resource_class, a.amount) for a in candidate.allocations),
        frozenset((suffix, frozenset(uuids)) for suffix, uuids in candidate.mappings),
    )


# --- Properties -------------------------------------------------------------------------


@st.composite
def scenarios(draw):
    snapshot = draw(snapshots())
    return snapshot, draw(requests(snapshot))


@settings(max_examples=700, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_the_engine_finds_exactly_the_valid_candidates_once_each(scenario):
    snapshot, request = scenario
    result = find_candidates(snapshot, request)
    found = [identity(candidate) for candidate in result.candidates]
    assert len(found) == len(set(found)), "a candidate was returned twice"
    assert set(found) == BruteForce(snapshot).candidates(request)

    summarised = {summary.uuid for summary in result.summaries}
    for candidate in result.candidates:
        assert candidate.providers <= summarised
        assert {suffix for suffix, _uuids in candidate.mappings} == {g.suffix for g in request.groups}
        for allocation in candidate.allocations:
            inventory = snapshot.by_uuid[allocation.provider].inventories[allocation.resource_class]
            assert inventory.used + allocation.amount <= inventory.capacity, "over capacity"
            assert allocation.amount <= inventory.max_unit, "over max_unit"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.integers(1, 3), st.booleans(), st.integers(0, 2**16))
def test_the_limit_is_respected_and_a_seed_reproduces_the_order(scenario, limit, randomize, seed):
    snapshot, request = scenario
    everything = {identity(c) for c in find_candidates(snapshot, request).candidates}
    limited_request = dataclasses.replace(request, limit=limit)
    options = EngineOptions(randomize=randomize, seed=seed)
    limited = find_candidates(snapshot, limited_request, options)
    found = [identity(c) for c in limited.candidates]
    assert len(found) == min(limit, len(everything))
    assert set(found) <= everything
    again = find_candidates(snapshot, limited_request, options)
    assert [identity(c) for c in again.candidates] == found
