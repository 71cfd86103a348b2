"""The fast engine's in-memory read model: every provider, at one revision.

A ``ReadModel`` is immutable. It wraps a ``Snapshot`` of *all* providers
(not just those in play for one request) plus the indexes the fast engine
uses to skip trees cheaply. A worker keeps one per process and replaces it
wholesale when the database's revision moves (``stowage.domain.candidates``
holds it; ``stowage.storage.changes`` loads it), so threads never see a
half-updated model.
"""
from __future__ import annotations

import threading

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from stowage.candidates.reference import provider_summary
from stowage.candidates.results import ProviderSummary
from stowage.candidates.snapshot import Provider, Snapshot


@dataclass(frozen=True)
class ReadModel:
    """Every provider at ``revision``, with per-tree free capacity.

    ``free_by_root`` maps a root uuid to, per resource class, the largest
    amount any single provider of that tree still has room for
    (``capacity - used``): a tree where that is below the smallest amount
    requested of a class cannot anchor a candidate by itself.
    """

    revision: int
    snapshot: Snapshot
    free_by_root: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Provider uuid → storage id: the creation order, and how the change
    # feed (which speaks ids) names trees.
    provider_ids: Mapping[str, int] = field(default_factory=dict)
    # Filled as requests ask (a dict item assignment is atomic, so threads
    # may share them): root uuid → tree shape, provider uuid → summary.
    shapes: dict[str, int | None] = field(default_factory=dict, compare=False, repr=False)
    serving: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)
    _shape_numbers: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    _shape_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    summaries: dict[str, ProviderSummary] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(
        cls, revision: int, snapshot: Snapshot, provider_ids: Mapping[str, int] | None = None
    ) -> ReadModel:
        """A model of ``snapshot``, every provider of every tree; without
        ``provider_ids`` (hand-built snapshots) positions stand in for ids."""
        if provider_ids is None:
            provider_ids = {provider.uuid: index for index, provider in enumerate(snapshot.providers)}
        return cls._ready(revision, snapshot, _free_by_root(snapshot.providers), dict(provider_ids))

    def with_trees(
        self,
        revision: int,
        changed_root_ids: set[int],
        loaded: Snapshot,
        loaded_ids: Mapping[str, int],
    ) -> ReadModel:
        """A new model at ``revision``: the trees rooted at ``changed_root_ids``
        replaced by ``loaded`` (their current state; a tree absent from it
        was deleted). Unchanged providers are shared with this model.
        """
        uuid_of = self.uuid_by_id
        members = self.snapshot.tree_members
        replaced = {uuid_of[root_id] for root_id in changed_root_ids if root_id in uuid_of}
        replaced |= {provider.root_uuid for provider in loaded.providers}
        ids = dict(self.provider_ids)
        free = dict(self.free_by_root)
        for root in replaced:
            free.pop(root, None)
            for provider in members.get(root, ()):
                ids.pop(provider.uuid, None)
        ids.update(loaded_ids)
        free.update(_free_by_root(loaded.providers))
        kept = [provider for provider in self.snapshot.providers if provider.root_uuid not in replaced]
        providers = sorted(kept + list(loaded.providers), key=lambda provider: ids[provider.uuid])
        snapshot = Snapshot(tuple(providers), {**self.snapshot.trait_rank, **loaded.trait_rank})
        # Carry the unchanged part of the big indexes over instead of
        # rebuilding them from 100,000 providers: only the replaced trees'
        # entries change. (Snapshot's indexes are cached properties, kept in
        # the instance dict, so seeding them there is what computing does.)
        by_uuid = dict(self.snapshot.by_uuid)
        members = dict(self.snapshot.tree_members)
        for root in replaced:
            for provider in members.pop(root, ()):
                del by_uuid[provider.uuid]
        by_uuid.update(loaded.by_uuid)
        members.update(loaded.tree_members)
        snapshot.__dict__["by_uuid"] = by_uuid
        snapshot.__dict__["tree_members"] = members
        sharing = [p for p in self.sharing_providers if p.root_uuid not in replaced]
        sharing += [p for p in loaded.providers if p.is_sharing]
        sharing.sort(key=lambda provider: ids[provider.uuid])
        model = self._ready(revision, snapshot, free, ids, tuple(sharing))
        # What was worked out for unchanged trees still holds; shapes too,
        # unless a sharing provider came, went or changed aggregates.
        model.summaries.update(
            (uuid, summary) for uuid, summary in self.summaries.items() if uuid in by_uuid
            and by_uuid[uuid].root_uuid not in replaced
        )
        if _sharing_layout(model) == _sharing_layout(self):
            model._shape_numbers.update(self._shape_numbers)
            for mine, theirs in ((self.shapes, model.shapes), (self.serving, model.serving)):
                theirs.update((root, value) for root, value in mine.items() if root not in replaced)
        return model

    @classmethod
    def _ready(
        cls,
        revision: int,
        snapshot: Snapshot,
        free: Mapping[str, Mapping[str, int]],
        provider_ids: Mapping[str, int],
        sharing_providers: tuple[Provider, ...] | None = None,
    ) -> ReadModel:
        model = cls(revision, snapshot, free, provider_ids)
        if sharing_providers is not None:
            model.__dict__["sharing_providers"] = sharing_providers
        # Fill the lazy indexes once, while only this thread can see the
        # model, so that request threads only ever read them. (The full
        # snapshot's ``order`` is not needed: ids give the same order.)
        _ = (snapshot.by_uuid, snapshot.roots, snapshot.tree_members)
        _ = (model.sharing_providers, model.sharing_roots, model.uuid_by_id)
        _ = (model.sharing_aggregates, model.sharing_by_aggregate)
        return model

    @cached_property
    def uuid_by_id(self) -> dict[int, str]:
        return {provider_id: uuid for uuid, provider_id in self.provider_ids.items()}

    @cached_property
    def sharing_providers(self) -> tuple[Provider, ...]:
        return tuple(provider for provider in self.snapshot.providers if provider.is_sharing)

    @cached_property
    def sharing_roots(self) -> frozenset[str]:
        """Roots of the trees holding a sharing provider."""
        return frozenset(provider.root_uuid for provider in self.sharing_providers)

    @cached_property
    def sharing_aggregates(self) -> frozenset[str]:
        """Aggregates some sharing provider is in."""
        return frozenset(
            aggregate for provider in self.sharing_providers for aggregate in provider.aggregates
        )

    @cached_property
    def sharing_by_aggregate(self) -> dict[str, tuple[Provider, ...]]:
        """Aggregate → the sharing providers in it."""
        found: dict[str, list[Provider]] = {}
        for provider in self.sharing_providers:
            for aggregate in provider.aggregates:
                found.setdefault(aggregate, []).append(provider)
        return {aggregate: tuple(providers) for aggregate, providers in found.items()}

    def serving_sharing(self, root: str) -> tuple[str, ...]:
        """Uuids of the sharing providers serving the tree (sharing an
        aggregate with one of its providers), worked out once per tree."""
        found = self.serving.get(root)
        if found is None:
            if self.sharing_aggregates:
                found = tuple(sorted({
                    sharing.uuid
                    for member in self.snapshot.tree_members[root]
                    for aggregate in member.aggregates & self.sharing_aggregates
                    for sharing in self.sharing_by_aggregate[aggregate]
                }))
            else:
                found = ()
            self.serving[root] = found
        return found

    def shared_room(self, root: str) -> dict[str, int]:
        """Per class, the most any sharing provider serving the tree still
        has room for."""
        room: dict[str, int] = {}
        for uuid in self.serving_sharing(root):
            for name, inventory in self.snapshot.by_uuid[uuid].inventories.items():
                room[name] = max(room.get(name, -1), inventory.capacity - inventory.used)
        return room

    def position(self, provider: Provider) -> int:
        """Sort key: the model's (creation) order."""
        return self.provider_ids[provider.uuid]

    def is_lone(self, root: str) -> bool:
        """The tree is its root alone, and no sharing provider serves it."""
        members = self.snapshot.tree_members[root]
        if len(members) != 1:
            return False
        provider = members[0]
        return not provider.is_sharing and not provider.aggregates & self.sharing_aggregates

    def tree_shape(self, root: str) -> int | None:
        """A number for what the candidate stages see of a tree, without its
        own uuids: two trees with the same number have the same candidates,
        in the same order, up to renaming their providers. None when a
        provider of the tree is itself a sharing provider.

        The shape is the tree's structure, inventories with usage, traits and
        aggregates, plus which sharing providers serve it and where they fall
        in the tree's creation order (the order choices are tried in).
        """
        if root in self.shapes:
            return self.shapes[root]
        members = self.snapshot.tree_members[root]
        if any(provider.is_sharing for provider in members):
            self.shapes[root] = None
            return None
        position = {provider.uuid: index for index, provider in enumerate(members)}
        ids = [self.provider_ids[provider.uuid] for provider in members]
        shape = (
            tuple(
                (
                    position.get(provider.parent_uuid, -1),  # type: ignore[arg-type]
                    tuple(sorted(provider.inventories.items())),
                    provider.traits,
                    provider.aggregates,
                )
                for provider in members
            ),
            tuple(
                sorted(
                    (uuid, sum(1 for id_ in ids if id_ < self.provider_ids[uuid]))
                    for uuid in self.serving_sharing(root)
                )
            ),
        )
        # Numbered under a lock: two threads must not give two shapes one number.
        with self._shape_lock:
            number = self._shape_numbers.setdefault(shape, len(self._shape_numbers))
        self.shapes[root] = number
        return number

    def summary(self, provider: Provider) -> ProviderSummary:
        """The provider as ``provider_summaries`` lists it, worked out once."""
        found = self.summaries.get(provider.uuid)
        if found is None:
            found = provider_summary(self.snapshot, provider)
            self.summaries[provider.uuid] = found
        return found

    def providers_of_trees(self, roots: set[str] | frozenset[str]) -> tuple[Provider, ...]:
        """Every provider of these trees, in the model's (creation) order."""
        members = self.snapshot.tree_members
        ids = self.provider_ids
        found = [provider for root in roots for provider in members.get(root, ())]
        found.sort(key=lambda provider: ids[provider.uuid])
        return tuple(found)

    def sub_snapshot(self, roots: set[str] | frozenset[str]) -> Snapshot:
        """A snapshot of these trees only, ordered and ranked as the model."""
        return Snapshot(self.providers_of_trees(roots), self.snapshot.trait_rank)

    @property
    def provider_count(self) -> int:
        return len(self.snapshot.providers)


def _sharing_layout(model: ReadModel) -> list[tuple[str, frozenset[str]]]:
    return [(provider.uuid, provider.aggregates) for provider in model.sharing_providers]


def _free_by_root(providers: Iterable[Provider]) -> dict[str, dict[str, int]]:
    """Root uuid → class → the most any one provider of the tree has free."""
    free: dict[str, dict[str, int]] = {}
    for provider in providers:
        tree = free.setdefault(provider.root_uuid, {})
        for name, inventory in provider.inventories.items():
            room = inventory.capacity - inventory.used
            if room > tree.get(name, -1):
                tree[name] = room
    return free
