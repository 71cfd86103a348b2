"""The fast engine's in-memory read model: every provider, at one revision.

A ``ReadModel`` wraps a ``Snapshot`` of *all* providers (not just those in
play for one request) plus the indexes the fast engine uses to skip trees
cheaply. A worker keeps one per process (``stowage.domain.candidates``
holds it; ``stowage.storage.changes`` loads it) and brings it to the
database's revision as that moves:

* the common change (a claim, an inventory or trait update: trees keep
  their providers) is patched in place, entry by entry, in time
  proportional to the changed trees (``patch``); every entry is replaced by
  one assignment and no index gains or loses a key, so a request running
  meanwhile sees each tree either before or after, never a crash;
* trees created, deleted or reshaped, and sharing providers changing
  aggregates, give a new model sharing the unchanged providers
  (``with_trees``), swapped in whole.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Final

from stowage.candidates.reference import provider_summary
from stowage.candidates.results import ProviderSummary
from stowage.candidates.snapshot import Provider, Snapshot


class _Missing(Enum):
    """No entry yet (None may be an entry). An enum member rather than a
    bare ``object()``, so that ``is not _MISSING`` narrows a looked-up
    value to the entry's type."""

    MISSING = "missing"


_MISSING: Final = _Missing.MISSING


class Memo:
    """A cache that successive models share instead of copying.

    Each entry keeps the object it was worked out from (a provider, or a
    tree's list of members) and counts only for a model in which that very
    object is still in place. A refresh replaces the objects of the trees
    that changed and keeps the others, so an entry of an unchanged tree
    holds on, one of a changed tree is passed over (and overwritten when the
    new model works it out), and an older model still answering a request
    never takes a newer model's entry for its own, nor the reverse.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[str, tuple[object, object]] = {}

    def get(self, key: str, basis: object):
        """The value for ``key`` worked out from ``basis``, or ``_MISSING``."""
        entry = self.entries.get(key)
        if entry is not None and entry[0] is basis:
            return entry[1]
        return _MISSING

    def put(self, key: str, basis: object, value):
        self.entries[key] = (basis, value)
        return value

    def __len__(self) -> int:
        return len(self.entries)


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
    # Filled as requests ask and shared with the models that replace this
    # one (see ``Memo``): root uuid → tree shape, root key, serving sharing
    # providers, twin names, summaries of the tree; provider uuid → summary,
    # state of a sharing provider. A dict item assignment is atomic, so
    # threads may fill them together.
    shapes: Memo = field(default_factory=Memo, compare=False, repr=False)
    loose_shapes: Memo = field(default_factory=Memo, compare=False, repr=False)
    root_key_memo: Memo = field(default_factory=Memo, compare=False, repr=False)
    serving: Memo = field(default_factory=Memo, compare=False, repr=False)
    names: Memo = field(default_factory=Memo, compare=False, repr=False)
    tree_summaries: Memo = field(default_factory=Memo, compare=False, repr=False)
    summaries: Memo = field(default_factory=Memo, compare=False, repr=False)
    pool_states: Memo = field(default_factory=Memo, compare=False, repr=False)
    # This model's own root uuid → root key, for the root filter's loop.
    root_keys: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    _twin_keys: dict[tuple[str, bool], tuple | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _root_key_numbers: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    _shape_numbers: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    _shape_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

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
        replaced = {uuid_of[root_id] for root_id in changed_root_ids if root_id in uuid_of}
        replaced |= {provider.root_uuid for provider in loaded.providers}
        model = self._with_same_trees(revision, replaced, loaded)
        if model is None:
            model = self._with_other_trees(revision, replaced, loaded, loaded_ids)
        self._carry_over(model)
        return model

    def patch(self, revision: int, changed_root_ids: set[int], loaded: Snapshot) -> bool:
        """Bring this model to ``revision`` in place, in time proportional
        to the ``loaded`` trees, when the change is one a scheduler makes
        all the time: every tree rooted at ``changed_root_ids`` still has
        exactly its providers, each with its aggregates and sharing role
        (usage, inventories or other traits changed). False, and nothing
        touched, otherwise (``with_trees`` then builds a new model).

        Requests running on the model meanwhile see each index entry
        either before or after (each is replaced by one assignment, no
        index gains or loses a key): data at least as new as the revision
        they started at, as ``ReadModelCache`` promises, never a crash.
        Only the refresher (one at a time) calls this.
        """
        uuid_of = self.uuid_by_id
        replaced = {uuid_of[root_id] for root_id in changed_root_ids if root_id in uuid_of}
        if len(replaced) != len(changed_root_ids) or not isinstance(self.snapshot.providers, list):
            return False
        old_members, new_members = self.snapshot.tree_members, loaded.tree_members
        if set(new_members) != replaced:
            return False
        by_uuid = self.snapshot.by_uuid
        sharing_changed = False
        for root in replaced:
            old = old_members.get(root)
            new = new_members[root]
            if old is None or len(old) != len(new):
                return False
            for before, after in zip(old, new, strict=True):
                if (before.uuid, before.parent_uuid, before.aggregates, before.is_sharing) != (
                    after.uuid, after.parent_uuid, after.aggregates, after.is_sharing
                ):
                    return False
                sharing_changed = sharing_changed or after.is_sharing
        snapshot = self.snapshot
        providers = snapshot.providers
        position = snapshot.order
        roots = snapshot.roots
        trait_rank = snapshot.trait_rank
        free = _free_by_root(loaded.providers)
        # A trait deleted and made again has a new id: ranked as a build would.
        trait_rank.update(loaded.trait_rank)
        for root in replaced:
            for provider in new_members[root]:
                providers[position[provider.uuid]] = provider
                by_uuid[provider.uuid] = provider
            snapshot.tree_members[root] = new_members[root]
            roots[self.root_positions[root]] = by_uuid[root]
            self.free_by_root[root] = free.get(root, {})
            self.root_keys.pop(root, None)
            self._twin_keys.pop((root, True), None)
            self._twin_keys.pop((root, False), None)
        if sharing_changed:
            # A pool's state is part of the twin keys of every tree it serves.
            sharing = tuple(by_uuid[provider.uuid] for provider in self.sharing_providers)
            self.__dict__["sharing_providers"] = sharing
            self.__dict__["sharing_by_aggregate"] = _sharing_by_aggregate(sharing)
            self.__dict__["_twin_keys"] = {}
        # Grouped by root keys, which the changed trees may have changed;
        # worked out again on first use.
        self.__dict__.pop("roots_by_key", None)
        # Last: a request that sees the new revision sees every change.
        self.__dict__["revision"] = revision
        return True

    def _with_same_trees(
        self, revision: int, replaced: set[str], loaded: Snapshot
    ) -> ReadModel | None:
        """The common case (allocations, inventories, traits changed): every
        replaced tree still has exactly its providers, so every position
        stays and the big indexes are copied and patched, not rebuilt.
        None when a tree was created, deleted or gained or lost providers."""
        old_members, new_members = self.snapshot.tree_members, loaded.tree_members
        if set(new_members) != replaced:
            return None
        for root in replaced:
            old = old_members.get(root)
            if old is None or [p.uuid for p in old] != [p.uuid for p in new_members[root]]:
                return None
        position = self.snapshot.order
        providers = list(self.snapshot.providers)
        by_uuid = dict(self.snapshot.by_uuid)
        for provider in loaded.providers:
            providers[position[provider.uuid]] = provider
            by_uuid[provider.uuid] = provider
        members = {**old_members, **new_members}
        roots = list(self.snapshot.roots)
        for root in replaced:
            roots[self.root_positions[root]] = by_uuid[root]
        snapshot = Snapshot(tuple(providers), {**self.snapshot.trait_rank, **loaded.trait_rank})
        # Snapshot's indexes are cached properties, kept in the instance
        # dict: seeding them there is what computing them would do.
        snapshot.__dict__.update(
            by_uuid=by_uuid, tree_members=members, roots=tuple(roots), order=position
        )
        free = {**self.free_by_root, **_free_by_root(loaded.providers)}
        return self._ready(
            revision, snapshot, free, self.provider_ids, self._sharing_after(replaced, loaded),
            uuid_by_id=self.uuid_by_id, root_positions=self.root_positions,
        )

    def _with_other_trees(
        self, revision: int, replaced: set[str], loaded: Snapshot, loaded_ids: Mapping[str, int]
    ) -> ReadModel:
        """Trees created, deleted or reshaped: providers re-sorted by id."""
        members = self.snapshot.tree_members
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
        by_uuid = dict(self.snapshot.by_uuid)
        members = dict(members)
        for root in replaced:
            for provider in members.pop(root, ()):
                del by_uuid[provider.uuid]
        by_uuid.update(loaded.by_uuid)
        members.update(loaded.tree_members)
        snapshot.__dict__["by_uuid"] = by_uuid
        snapshot.__dict__["tree_members"] = members
        sharing = self._sharing_after(replaced, loaded, ids)
        return self._ready(revision, snapshot, free, ids, sharing)

    def _sharing_after(
        self, replaced: set[str], loaded: Snapshot, ids: Mapping[str, int] | None = None
    ) -> tuple[Provider, ...]:
        """Sharing providers once the ``replaced`` trees are ``loaded``."""
        ids = self.provider_ids if ids is None else ids
        sharing = [p for p in self.sharing_providers if p.root_uuid not in replaced]
        sharing += [p for p in loaded.providers if p.is_sharing]
        return tuple(sorted(sharing, key=lambda provider: ids[provider.uuid]))

    def _carry_over(self, model: ReadModel) -> None:
        """Share what was worked out: entries of unchanged trees still hold
        and the others are passed over (``Memo``). Shapes, root keys,
        serving sharing providers and twin names depend on which sharing
        providers serve a tree too: they start afresh when a sharing
        provider came, went or changed aggregates."""
        # Entries of deleted trees and numbers of every state a tree was
        # ever in stay behind: start afresh once they outgrow the model.
        numbers = len(self._shape_numbers) + len(self._root_key_numbers)
        if (numbers > 8 * len(self.snapshot.roots) + 1000
                or len(self.summaries) > 2 * len(self.snapshot.providers) + 1000):
            return
        # The numbering lock goes with the numbers: threads on the old and
        # the new model must not give two shapes one number.
        shared: tuple[str, ...] = ("summaries", "tree_summaries", "pool_states",
                                   "_shape_numbers", "_root_key_numbers", "_shape_lock")
        if _sharing_layout(model) == _sharing_layout(self):
            shared += ("shapes", "loose_shapes", "root_key_memo", "serving", "names")
        # The model is frozen; its fields live in the instance dict.
        model.__dict__.update((name, getattr(self, name)) for name in shared)

    @classmethod
    def _ready(
        cls,
        revision: int,
        snapshot: Snapshot,
        free: Mapping[str, Mapping[str, int]],
        provider_ids: Mapping[str, int],
        sharing_providers: tuple[Provider, ...] | None = None,
        **carried,
    ) -> ReadModel:
        # Lists and a dict of the model's own, so that ``patch`` can
        # replace entries in place.
        if not isinstance(snapshot.providers, list):
            object.__setattr__(snapshot, "providers", list(snapshot.providers))
        snapshot.__dict__["roots"] = list(snapshot.roots)
        snapshot.__dict__["trait_rank"] = dict(snapshot.trait_rank)
        model = cls(revision, snapshot, free if isinstance(free, dict) else dict(free), provider_ids)
        if sharing_providers is not None:
            model.__dict__["sharing_providers"] = sharing_providers
        # Indexes that did not change (the caller vouches), as they were.
        model.__dict__.update(carried)
        # Fill the lazy indexes once, while only this thread can see the
        # model, so that request threads only ever read them.
        _ = (snapshot.by_uuid, snapshot.roots, snapshot.tree_members, snapshot.order)
        _ = (model.sharing_providers, model.uuid_by_id, model.root_positions)
        _ = (model.sharing_aggregates, model.sharing_by_aggregate, model.sharing_root_of)
        return model

    @cached_property
    def root_positions(self) -> dict[str, int]:
        """Root uuid → its index in ``snapshot.roots``."""
        return {root.uuid: index for index, root in enumerate(self.snapshot.roots)}

    @cached_property
    def uuid_by_id(self) -> dict[int, str]:
        return {provider_id: uuid for uuid, provider_id in self.provider_ids.items()}

    @cached_property
    def sharing_providers(self) -> tuple[Provider, ...]:
        return tuple(provider for provider in self.snapshot.providers if provider.is_sharing)

    @cached_property
    def sharing_root_of(self) -> dict[str, str]:
        """Sharing provider uuid → its root's uuid."""
        return {provider.uuid: provider.root_uuid for provider in self.sharing_providers}

    @cached_property
    def sharing_aggregates(self) -> frozenset[str]:
        """Aggregates some sharing provider is in."""
        return frozenset(
            aggregate for provider in self.sharing_providers for aggregate in provider.aggregates
        )

    @cached_property
    def sharing_by_aggregate(self) -> dict[str, tuple[Provider, ...]]:
        """Aggregate → the sharing providers in it."""
        return _sharing_by_aggregate(self.sharing_providers)

    def serving_sharing(self, root: str) -> tuple[str, ...]:
        """Uuids of the sharing providers serving the tree (sharing an
        aggregate with one of its providers) in creation order, worked out
        once per tree."""
        members = self.snapshot.tree_members[root]
        found = self.serving.get(root, members)
        if found is _MISSING:
            if self.sharing_aggregates:
                found = tuple(sorted({
                    sharing.uuid
                    for member in members
                    for aggregate in member.aggregates & self.sharing_aggregates
                    for sharing in self.sharing_by_aggregate[aggregate]
                }, key=self.provider_ids.__getitem__))
            else:
                found = ()
            self.serving.put(root, members, found)
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
        return not provider.is_sharing and provider.aggregates.isdisjoint(self.sharing_aggregates)

    def twin_key(self, root: str, with_aggregates: bool) -> tuple | None:
        """A key for what the candidate stages see of a tree without its own
        uuids: two trees with the same key have the same candidates, in the
        same order, up to renaming the providers ``twin_names`` lists. None
        when a provider of the tree is itself a sharing provider.

        It is the tree's shape (``tree_shape``) plus the sharing providers
        serving it: the same ones when a request's groups filter on
        aggregates (``with_aggregates``), otherwise any in the same state.
        """
        # Kept per model, not carried over: a pool's state is part of it.
        found = self._twin_keys.get((root, with_aggregates), _MISSING)
        if found is not _MISSING:
            return found
        shape = self.tree_shape(root, with_aggregates)
        serving = self.serving_sharing(root)
        if shape is None:
            found = None
        elif with_aggregates:
            found = shape, serving
        else:
            found = shape, tuple(self.pool_state(uuid) for uuid in serving)
        self._twin_keys[root, with_aggregates] = found
        return found

    def twin_names(self, root: str) -> list[str]:
        """The uuids a twin key leaves out, in the order twins are matched
        by: the tree's providers, then the sharing providers serving it."""
        members = self.snapshot.tree_members[root]
        found = self.names.get(root, members)
        if found is _MISSING:
            found = [provider.uuid for provider in members] + list(self.serving_sharing(root))
            self.names.put(root, members, found)
        return found

    def tree_shape(self, root: str, with_aggregates: bool = True) -> int | None:
        """A number for a tree without its uuids: its structure,
        inventories with usage, traits (and with ``with_aggregates``, its
        aggregates), and for each sharing provider serving it (in creation
        order) where it falls in the tree's creation order (the order
        choices are tried in) and which of the tree's providers it shares an
        aggregate with. None when a provider of the tree is itself a sharing
        provider.
        """
        cache = self.shapes if with_aggregates else self.loose_shapes
        members = self.snapshot.tree_members[root]
        found = cache.get(root, members)
        if found is not _MISSING:
            return found
        if any(provider.is_sharing for provider in members):
            return cache.put(root, members, None)
        # Looked up with each provider's parent: a root's, None, is not in it.
        position: dict[str | None, int] = {
            provider.uuid: index for index, provider in enumerate(members)
        }
        ids = [self.provider_ids[provider.uuid] for provider in members]
        by_uuid = self.snapshot.by_uuid
        shape = (
            tuple(
                (
                    position.get(provider.parent_uuid, -1),
                    tuple(sorted(provider.inventories.items())),
                    provider.traits,
                    provider.aggregates if with_aggregates else None,
                )
                for provider in members
            ),
            tuple(
                (
                    sum(1 for id_ in ids if id_ < self.provider_ids[uuid]),
                    tuple(
                        index for index, member in enumerate(members)
                        if not member.aggregates.isdisjoint(by_uuid[uuid].aggregates)
                    ),
                )
                for uuid in self.serving_sharing(root)
            ),
        )
        return cache.put(root, members, self._number(shape))

    def pool_state(self, uuid: str) -> int:
        """A number for a sharing provider without its uuid and aggregates:
        inventories with usage, traits, and its place (root or not, its
        root's traits)."""
        provider = self.snapshot.by_uuid[uuid]
        number = self.pool_states.get(uuid, provider)
        if number is _MISSING:
            number = self._number((
                tuple(sorted(provider.inventories.items())),
                provider.traits,
                provider.parent_uuid is None,
                self.snapshot.by_uuid[provider.root_uuid].traits,
            ))
            self.pool_states.put(uuid, provider, number)
        return number

    def _number(self, shape: tuple) -> int:
        # Numbered under a lock: two threads must not give two shapes one number.
        with self._shape_lock:
            return self._shape_numbers.setdefault(shape, len(self._shape_numbers))

    def root_key(self, root: str) -> int:
        """A number for what the root filter sees of a tree: the room per
        class, the sharing providers serving it, the root's traits and
        whether the tree is lone (``is_lone``). Two roots with one number
        pass or fail every request's filter alike."""
        number = self.root_keys.get(root)
        if number is None:
            members = self.snapshot.tree_members[root]
            number = self.root_key_memo.get(root, members)
            if number is _MISSING:
                key = (
                    tuple(sorted(self.free_by_root.get(root, {}).items())),
                    self.serving_sharing(root),
                    self.snapshot.by_uuid[root].traits,
                    self.is_lone(root),
                )
                with self._shape_lock:
                    number = self._root_key_numbers.setdefault(key, len(self._root_key_numbers))
                self.root_key_memo.put(root, members, number)
            self.root_keys[root] = number
        return number

    @cached_property
    def roots_by_key(self) -> dict[int, list[int]]:
        """Root key → positions in ``snapshot.roots`` of the roots with it,
        ascending: a request over every root decides each kind once instead
        of looking at each root. Worked out on first use (an O(roots) pass,
        like one scan of the root filter), then kept while the model is."""
        grouped: dict[int, list[int]] = {}
        key_of = self.root_key
        for position, root in enumerate(self.snapshot.roots):
            grouped.setdefault(key_of(root.uuid), []).append(position)
        return grouped

    def summary(self, provider: Provider) -> ProviderSummary:
        """The provider as ``provider_summaries`` lists it, worked out once."""
        found = self.summaries.get(provider.uuid, provider)
        if found is _MISSING:
            found = self.summaries.put(
                provider.uuid, provider, provider_summary(self.snapshot, provider)
            )
        return found

    def summaries_of_tree(self, root: str) -> tuple[ProviderSummary, ...]:
        """Every provider of ``root``'s tree as ``provider_summaries`` lists
        them, worked out once."""
        members = self.snapshot.tree_members[root]
        found = self.tree_summaries.get(root, members)
        if found is _MISSING:
            found = self.tree_summaries.put(
                root, members, tuple(self.summary(provider) for provider in members)
            )
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


def _sharing_by_aggregate(sharing: Iterable[Provider]) -> dict[str, tuple[Provider, ...]]:
    found: dict[str, list[Provider]] = {}
    for provider in sharing:
        for aggregate in provider.aggregates:
            found.setdefault(aggregate, []).append(provider)
    return {aggregate: tuple(providers) for aggregate, providers in found.items()}


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
