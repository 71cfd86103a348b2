"""The fast engine's in-memory read model: every provider, at one revision.

A ``ReadModel`` is immutable. It wraps a ``Snapshot`` of *all* providers
(not just those in play for one request) plus the indexes the fast engine
uses to skip trees cheaply. A worker keeps one per process and replaces it
wholesale when the database's revision moves (``stowage.domain.candidates``
holds it; ``stowage.storage.changes`` loads it), so threads never see a
half-updated model.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

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
        _ = (model.sharing_providers, model.sharing_roots, model.shared_classes, model.uuid_by_id)
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
    def shared_classes(self) -> frozenset[str]:
        """Classes some sharing provider has inventory of."""
        return frozenset(
            name for provider in self.sharing_providers for name in provider.inventories
        )

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
