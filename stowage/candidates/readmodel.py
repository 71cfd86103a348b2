"""The fast engine's in-memory read model: every provider, at one revision.

A ``ReadModel`` wraps a ``Snapshot`` of *all* providers (not just those in
play for one request) plus the indexes the fast engine uses to skip trees
cheaply. A worker keeps one per process (``stowage.domain.candidates``
holds it; ``stowage.storage.changes`` loads it) and brings it to the
database's revision as that moves, in time proportional to the trees that
changed, whatever the change:

* the common change (a claim, an inventory or trait update: trees keep
  their providers) is patched in place, entry by entry (``patch``); every
  entry is replaced by one assignment and no index gains or loses a key;
* trees created, deleted or reshaped, and sharing providers changing
  aggregates, give a new model (``with_trees``) that shares the big
  indexes with this one: they are changed in place too, but the roots a
  request scans by position are a list of each model's own, so that a
  request on the replaced model goes on scanning the roots it started with.

Either way a request running meanwhile sees each tree either before or
after, never a crash. What that takes:

* Keyed indexes (``by_uuid``, ``tree_members``, ``provider_ids``,
  ``uuid_by_id``, ``free_by_root``) are one dict each, shared by every
  model of the process. Entries are replaced by one assignment; the
  entries of a deleted tree stay until every model that still lists the
  tree is gone (``_Lineage``), so that a request on one never misses a key.
* ``snapshot.roots`` is a list per model, in creation (storage id) order
  as a fresh load has it. The newest model's list and its predecessor's
  take turns (``_RootLists``): a new model gets the other list brought up
  to date, not a copy of 100,000 roots. Positions in it are found by
  bisection on storage ids (``root_positions``), so nothing is renumbered
  when a tree comes or goes.
* ``snapshot.providers`` (every provider in storage id order; the engine
  does not iterate it) is one list changed in place.
* Caches filled as requests ask are ``Memo`` entries keyed by the objects
  they were worked out from, or per-model dicts whose entries for changed
  trees are dropped.
"""
from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
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


# Operations on a list of roots, replayed on the other list (``_RootLists``).
_SET, _INSERT, _DELETE = 0, 1, 2


def _apply(roots: list[Provider], operation: tuple[int, int, Provider | None]) -> None:
    kind, index, root = operation
    if kind == _SET:
        roots[index] = root  # type: ignore[assignment]
    elif kind == _INSERT:
        roots.insert(index, root)  # type: ignore[arg-type]
    else:
        del roots[index]


class _RootLists:
    """The roots in creation order, two lists taking turns.

    ``current`` is the newest model's list; ``spare`` the list of the model
    it replaced (``holder``, weakly: requests may still be scanning it by
    position, so it is left alone). What changed in ``current`` since waits
    in ``pending`` and is replayed on the spare once the holder is gone. A
    new model takes the spare, brought up to date, and leaves ``current``
    to its predecessor: a list of its own without copying one. Only the
    refresher (one at a time) calls these.
    """

    __slots__ = ("current", "holder", "pending", "spare")

    def __init__(self, roots: list[Provider]) -> None:
        self.current = roots
        self.spare: list[Provider] | None = None
        self.holder: weakref.ref | None = None
        self.pending: list[tuple[int, int, Provider | None]] = []

    def change(self, kind: int, index: int, root: Provider | None = None) -> None:
        """Change ``current`` (and, now or later, the spare alike)."""
        operation = (kind, index, root)
        _apply(self.current, operation)
        if self.spare is None:
            return
        if self._spare_free():
            _apply(self.spare, operation)
        elif len(self.pending) > len(self.current) // 8 + 64:
            # A request on the old model ran for long: a copy is cheaper.
            self.spare, self.holder, self.pending = None, None, []
        else:
            self.pending.append(operation)

    def next_list(self, holder: object) -> list[Provider]:
        """A list equal to ``current`` that no model reads, made current;
        the old one is left to ``holder``, the model about to be replaced."""
        spare = self.spare
        if spare is not None and self._spare_free():
            for operation in self.pending:
                _apply(spare, operation)
        else:
            spare = list(self.current)
        self.spare, self.holder, self.pending = self.current, weakref.ref(holder), []
        self.current = spare
        return spare

    def _spare_free(self) -> bool:
        if self.holder is not None and self.holder() is not None:
            return False
        for operation in self.pending:
            _apply(self.spare, operation)  # type: ignore[arg-type]
        self.holder, self.pending = None, []
        return True


class _Lineage:
    """What successive models of one process share: the root lists, and
    the entries of deleted trees still kept for older models.

    Models are numbered in the order they were made; a deleted tree's or
    provider's entries are dropped (``ReadModel.release_deleted``) once no
    model up to the last one that listed it is left.
    """

    __slots__ = ("__weakref__", "gone_ids", "gone_providers", "gone_roots", "models", "roots")

    def __init__(self, roots: list[Provider]) -> None:
        self.roots = _RootLists(roots)
        self.models: list[tuple[int, weakref.ref]] = []
        # Root uuid / provider uuid / storage id → number of the last model
        # that had it.
        self.gone_roots: dict[str, int] = {}
        self.gone_providers: dict[str, int] = {}
        self.gone_ids: dict[int, int] = {}

    def oldest(self) -> int:
        """The number of the oldest model still referenced."""
        alive = [(number, model) for number, model in self.models if model() is not None]
        self.models[:] = alive
        return min(number for number, _model in alive)


class _RootPositions(Mapping[str, int]):
    """Root uuid → its index in a model's ``snapshot.roots``, by bisection
    on storage ids (the list is in id order): nothing to renumber when a
    tree comes or goes."""

    __slots__ = ("ids", "roots")

    def __init__(self, roots: list[Provider], ids: Mapping[str, int]) -> None:
        self.roots, self.ids = roots, ids

    def __getitem__(self, uuid: str) -> int:
        ids, roots = self.ids, self.roots
        index = bisect_left(roots, ids[uuid], key=lambda root: ids[root.uuid])
        if index < len(roots) and roots[index].uuid == uuid:
            return index
        raise KeyError(uuid)

    def __iter__(self) -> Iterator[str]:
        return (root.uuid for root in self.roots)

    def __len__(self) -> int:
        return len(self.roots)


def _index_of(providers: list[Provider], provider_id: int, ids: Mapping[str, int]) -> int:
    """Where the provider with ``provider_id`` is (or goes) in ``providers``
    (in id order; every provider in it has its id in ``ids``)."""
    return bisect_left(providers, provider_id, key=lambda provider: ids[provider.uuid])


def _position_of(providers: list[Provider], uuid: str, ids: Mapping[str, int]) -> int:
    """Where the provider ``uuid`` is in ``providers`` (in id order)."""
    index = _index_of(providers, ids[uuid], ids)
    if index == len(providers) or providers[index].uuid != uuid:
        raise LookupError(f"provider {uuid} is not where its id puts it")
    return index


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
    # Root uuid → root key, for the root filter's loop; shared with the
    # next model while the sharing providers keep their aggregates.
    root_keys: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    _twin_keys: dict[tuple[str, bool], tuple | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _root_key_numbers: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    _shape_numbers: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    _shape_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    # This model's number in its lineage (see ``_Lineage``).
    _number_in_lineage: int = field(default=0, compare=False, repr=False)

    @classmethod
    def build(
        cls, revision: int, snapshot: Snapshot, provider_ids: Mapping[str, int] | None = None
    ) -> ReadModel:
        """A model of ``snapshot``, every provider of every tree; without
        ``provider_ids`` (hand-built snapshots) positions stand in for ids."""
        if provider_ids is None:
            provider_ids = {provider.uuid: index for index, provider in enumerate(snapshot.providers)}
        providers = list(snapshot.providers)
        built = Snapshot((), dict(snapshot.trait_rank))
        # Lists and dicts of the model's own, changed in place by refreshes.
        object.__setattr__(built, "providers", providers)
        roots = [provider for provider in providers if provider.parent_uuid is None]
        built.__dict__.update(
            by_uuid=dict(snapshot.by_uuid), tree_members=dict(snapshot.tree_members), roots=roots
        )
        model = cls(revision, built, _free_by_root(providers), dict(provider_ids))
        lineage = _Lineage(roots)
        model.__dict__["_lineage"] = lineage
        model.__dict__["uuid_by_id"] = {number: uuid for uuid, number in model.provider_ids.items()}
        return model._ready()

    @property
    def _lineage(self) -> _Lineage:
        return self.__dict__["_lineage"]

    def _ready(self) -> ReadModel:
        """Fill the lazy indexes once, while only this thread can see the
        model, so that request threads only ever read them; join the lineage."""
        lineage = self._lineage
        lineage.models.append((self._number_in_lineage, weakref.ref(self)))
        if len(lineage.models) > 16:
            lineage.oldest()  # forgets the models gone
        self.__dict__["_root_positions"] = _RootPositions(self.snapshot.roots, self.provider_ids)  # type: ignore[arg-type]
        _ = (self.snapshot.by_uuid, self.snapshot.roots, self.snapshot.tree_members)
        _ = (self.sharing_providers, self.uuid_by_id)
        _ = (self.sharing_aggregates, self.sharing_by_aggregate, self.sharing_root_of)
        return self

    def _live_root(self, root_id: int) -> str | None:
        """The uuid of the tree rooted at ``root_id``, if the model has it."""
        uuid = self.uuid_by_id.get(root_id)
        if uuid is None or uuid not in self.snapshot.tree_members or uuid in self._lineage.gone_roots:
            return None
        return uuid

    def patch(self, revision: int, changed_root_ids: set[int], loaded: Snapshot) -> bool:
        """Bring this model to ``revision`` in place, in time proportional
        to the ``loaded`` trees, when the change is one a scheduler makes
        all the time: every tree rooted at ``changed_root_ids`` still has
        exactly its providers, each with its aggregates and sharing role
        (usage, inventories or other traits changed). False, and nothing
        touched, otherwise (``with_trees`` then makes the next model).

        Requests running on the model meanwhile see each index entry
        either before or after (each is replaced by one assignment, no
        index gains or loses a key): data at least as new as the revision
        they started at, as ``ReadModelCache`` promises, never a crash.
        Only the refresher (one at a time) calls this.
        """
        self._check_newest()
        replaced = {self._live_root(root_id) for root_id in changed_root_ids}
        if None in replaced or len(replaced) != len(changed_root_ids):
            return False
        old_members, new_members = self.snapshot.tree_members, loaded.tree_members
        if set(new_members) != replaced:
            return False
        sharing_changed = False
        for root in new_members:
            old = old_members[root]
            new = new_members[root]
            if len(old) != len(new):
                return False
            for before, after in zip(old, new, strict=True):
                if (before.uuid, before.parent_uuid, before.aggregates, before.is_sharing) != (
                    after.uuid, after.parent_uuid, after.aggregates, after.is_sharing
                ):
                    return False
                sharing_changed = sharing_changed or after.is_sharing
        snapshot = self.snapshot
        providers, by_uuid, ids = self._providers, snapshot.by_uuid, self.provider_ids
        free = _free_by_root(loaded.providers)
        # A trait deleted and made again has a new id: ranked as a build would.
        snapshot.trait_rank.update(loaded.trait_rank)  # type: ignore[attr-defined]
        roots = self._lineage.roots
        for root in new_members:
            # The tree's members last: ``Memo`` entries are keyed by them, so
            # one worked out from the new members must see everything new.
            self.free_by_root[root] = free.get(root, {})  # type: ignore[index]
            for provider in new_members[root]:
                providers[_position_of(providers, provider.uuid, ids)] = provider
                by_uuid[provider.uuid] = provider
            snapshot.tree_members[root] = new_members[root]
            roots.change(_SET, self.root_positions[root], by_uuid[root])
            self._forget_tree(root)
        if sharing_changed:
            # A pool's state is part of the twin keys of every tree it serves.
            sharing = tuple(by_uuid[provider.uuid] for provider in self.sharing_providers)
            self.__dict__["sharing_providers"] = sharing
            self.__dict__["sharing_by_aggregate"] = _sharing_by_aggregate(sharing)
            self.__dict__["_twin_keys"] = {}
        # Last: a request that sees the new revision sees every change.
        self.__dict__["revision"] = revision
        return True

    @property
    def _providers(self) -> list[Provider]:
        """``snapshot.providers``, a list the model changes in place."""
        return self.snapshot.providers  # type: ignore[return-value]

    def _check_newest(self) -> None:
        # An older model's root list is no longer the one refreshes change.
        if self.snapshot.__dict__["roots"] is not self._lineage.roots.current:
            raise ValueError("only the newest model of a process is refreshed")

    @property
    def holds_deleted(self) -> bool:
        """Entries of deleted trees or providers wait for older models to go."""
        lineage = self._lineage
        return bool(lineage.gone_roots or lineage.gone_providers or lineage.gone_ids)

    def _forget_tree(self, root: str) -> None:
        """Drop this model's per-tree entries that are not ``Memo``s."""
        self.root_keys.pop(root, None)
        self._twin_keys.pop((root, True), None)
        self._twin_keys.pop((root, False), None)

    def with_trees(
        self,
        revision: int,
        changed_root_ids: set[int],
        loaded: Snapshot,
        loaded_ids: Mapping[str, int],
    ) -> ReadModel | None:
        """The next model, at ``revision``: the trees rooted at
        ``changed_root_ids`` replaced by ``loaded`` (their current state; a
        tree absent from it was deleted), in time proportional to those
        trees. It shares this model's indexes, changed in place (see the
        module's docstring); this model goes on answering the requests
        that hold it, each tree as before or after.

        None, and nothing touched, if ``loaded`` holds a provider this model
        has in a tree not among those changed: the change feed missed a
        tree, and only a full load can tell the truth.
        Only the refresher (one at a time) calls this.
        """
        self._check_newest()
        snapshot, lineage = self.snapshot, self._lineage
        members, by_uuid = snapshot.tree_members, snapshot.by_uuid
        ids: dict[str, int] = self.provider_ids  # type: ignore[assignment]
        uuid_of: dict[int, str] = self.uuid_by_id
        free: dict[str, Mapping[str, int]] = self.free_by_root  # type: ignore[assignment]
        replaced = {uuid for uuid in map(self._live_root, changed_root_ids) if uuid is not None}
        replaced.update(loaded.tree_members)
        was_root = {root for root in replaced if root in members and root not in lineage.gone_roots}
        old = {provider.uuid: provider for root in was_root for provider in members[root]}
        new = loaded.by_uuid
        for uuid in new:
            if uuid not in old and uuid in by_uuid and uuid not in lineage.gone_providers:
                return None
        # Out first, at their old ids; in after, at their new ones.
        moved = {uuid for uuid in old if uuid not in new or loaded_ids[uuid] != ids[uuid]}
        providers = self._providers
        for uuid in moved:
            del providers[_position_of(providers, uuid, ids)]
        roots = lineage.roots
        root_list = roots.next_list(self)
        positions = _RootPositions(root_list, ids)
        for root in was_root:
            if root in moved or root not in loaded.tree_members:
                roots.change(_DELETE, positions[root])
        # Entries of deleted trees stay for the models still listing them.
        number = self._number_in_lineage
        for uuid in moved:
            lineage.gone_providers[uuid] = number
            lineage.gone_ids[ids[uuid]] = number
        for root in was_root - set(loaded.tree_members):
            lineage.gone_roots[root] = number
        for uuid, provider in new.items():
            by_uuid[uuid] = provider
            ids[uuid] = loaded_ids[uuid]
            uuid_of[loaded_ids[uuid]] = uuid
            lineage.gone_providers.pop(uuid, None)
            lineage.gone_ids.pop(loaded_ids[uuid], None)
        for uuid in sorted(new, key=ids.__getitem__):
            if uuid in moved or uuid not in old:
                providers.insert(_index_of(providers, ids[uuid], ids), new[uuid])
            else:
                providers[_position_of(providers, uuid, ids)] = new[uuid]
        room = _free_by_root(loaded.providers)
        for root, tree in loaded.tree_members.items():
            free[root] = room.get(root, {})
            members[root] = tree  # after what ``Memo`` entries keyed by it read
            lineage.gone_roots.pop(root, None)
            if root in was_root and root not in moved:
                roots.change(_SET, positions[root], new[root])
            else:
                roots.change(_INSERT, bisect_left(
                    root_list, ids[root], key=lambda provider: ids[provider.uuid]
                ), new[root])
        snapshot.trait_rank.update(loaded.trait_rank)  # type: ignore[attr-defined]
        return self._successor(revision, replaced, old.values(), loaded, root_list)

    def _successor(
        self,
        revision: int,
        replaced: set[str],
        old: Iterable[Provider],
        loaded: Snapshot,
        root_list: list[Provider],
    ) -> ReadModel:
        """The model after ``with_trees`` changed the shared indexes."""
        ids = self.provider_ids
        snapshot = Snapshot((), self.snapshot.trait_rank)
        object.__setattr__(snapshot, "providers", self.snapshot.providers)
        snapshot.__dict__.update(
            by_uuid=self.snapshot.by_uuid, tree_members=self.snapshot.tree_members, roots=root_list
        )
        model = type(self)(revision, snapshot, self.free_by_root, ids)
        model.__dict__.update(
            _lineage=self._lineage,
            _number_in_lineage=self._number_in_lineage + 1,
            uuid_by_id=self.uuid_by_id,
        )
        pools_changed = any(p.is_sharing for p in old) or any(p.is_sharing for p in loaded.providers)
        if pools_changed:
            sharing = [p for p in self.sharing_providers if p.root_uuid not in replaced]
            sharing += [p for p in loaded.providers if p.is_sharing]
            sharing.sort(key=lambda provider: ids[provider.uuid])
            model.__dict__["sharing_providers"] = tuple(sharing)
        else:
            # No sharing provider among the changed trees: their indexes hold.
            model.__dict__.update((name, getattr(self, name)) for name in (
                "sharing_providers", "sharing_aggregates", "sharing_by_aggregate", "sharing_root_of"
            ))
        self._carry_over(model, pools_changed)
        for root in replaced:
            model._forget_tree(root)
        model._ready()
        model.release_deleted()
        return model

    def _carry_over(self, model: ReadModel, pools_changed: bool) -> None:
        """Share what was worked out: entries of unchanged trees still hold
        and the others are passed over (``Memo``). Shapes, root keys,
        serving sharing providers and twin names depend on which sharing
        providers serve a tree too: they start afresh when a sharing
        provider came, went or changed aggregates; twin keys hold the
        sharing providers' state as well."""
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
        if not pools_changed or _sharing_layout(model) == _sharing_layout(self):
            shared += ("shapes", "loose_shapes", "root_key_memo", "serving", "names", "root_keys")
            if not pools_changed:
                shared += ("_twin_keys",)
        # The model is frozen; its fields live in the instance dict.
        model.__dict__.update((name, getattr(self, name)) for name in shared)

    def release_deleted(self) -> None:
        """Drop the entries of deleted trees and providers that no model
        still referenced lists (see ``_Lineage``). Only the refresher calls
        this, on the newest model."""
        if not self.holds_deleted:
            return
        lineage = self._lineage
        oldest = lineage.oldest()
        snapshot = self.snapshot
        for root in [root for root, last in lineage.gone_roots.items() if last < oldest]:
            del lineage.gone_roots[root]
            snapshot.tree_members.pop(root, None)
            self.free_by_root.pop(root, None)  # type: ignore[attr-defined]
            self._forget_tree(root)
            for memo in (self.shapes, self.loose_shapes, self.root_key_memo, self.serving,
                         self.names, self.tree_summaries):
                memo.entries.pop(root, None)
        for uuid in [uuid for uuid, last in lineage.gone_providers.items() if last < oldest]:
            del lineage.gone_providers[uuid]
            snapshot.by_uuid.pop(uuid, None)
            self.provider_ids.pop(uuid, None)  # type: ignore[attr-defined]
            self.summaries.entries.pop(uuid, None)
            self.pool_states.entries.pop(uuid, None)
        for number in [number for number, last in lineage.gone_ids.items() if last < oldest]:
            del lineage.gone_ids[number]
            self.uuid_by_id.pop(number, None)

    @property
    def root_positions(self) -> Mapping[str, int]:
        """Root uuid → its index in ``snapshot.roots``."""
        return self.__dict__["_root_positions"]

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
        # Carried over only while no pool changed: a pool's state is part of it.
        found = self._twin_keys.get((root, with_aggregates), _MISSING)
        if found is not _MISSING:
            return found
        members = self.snapshot.tree_members[root]
        shape = self.tree_shape(root, with_aggregates)
        serving = self.serving_sharing(root)
        if shape is None:
            found = None
        elif with_aggregates:
            found = shape, serving
        else:
            found = shape, tuple(self.pool_state(uuid) for uuid in serving)
        if self.snapshot.tree_members.get(root) is members:
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
            # Kept unless a refresh replaced the tree meanwhile (its entry
            # would outlive the refresh that dropped it).
            if self.snapshot.tree_members.get(root) is members:
                self.root_keys[root] = number
        return number

    @property
    def roots_by_key(self) -> dict[int, list[int]]:
        """Root key → positions in ``snapshot.roots`` of the roots with it,
        ascending: a request over every root decides each kind once instead
        of looking at each root. Worked out on first use (an O(roots) pass,
        like one scan of the root filter), then kept until the model is
        patched (tagged with the revision it was begun at, so that one
        worked out across a patch is not kept)."""
        revision = self.revision
        found = self.__dict__.get("_roots_by_key")
        if found is not None and found[0] == revision:
            return found[1]
        grouped: dict[int, list[int]] = {}
        key_of = self.root_key
        for position, root in enumerate(self.snapshot.roots):
            grouped.setdefault(key_of(root.uuid), []).append(position)
        self.__dict__["_roots_by_key"] = (revision, grouped)
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
    """Root uuid → class → the most any one provider of the tree has free.
    Trees with the same room share one mapping (never changed after)."""
    free: dict[str, dict[str, int]] = {}
    for provider in providers:
        tree = free.setdefault(provider.root_uuid, {})
        for name, inventory in provider.inventories.items():
            room = inventory.capacity - inventory.used
            if room > tree.get(name, -1):
                tree[name] = room
    alike: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
    return {root: alike.setdefault(tuple(tree.items()), tree) for root, tree in free.items()}
