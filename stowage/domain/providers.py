"""Resource provider operations: create, show, rename and move, delete, list.

Tree rules (upstream Placement's):

* a new provider may name an existing parent (1.14+); it joins the parent's tree;
* before 1.37 an update may only give a parent to a provider that has none
  (or repeat the current parent);
* from 1.37 (``allow_reparenting``) a provider may move to another parent or
  become a root, taking its whole subtree along;
* a provider may never become its own ancestor.
"""
from __future__ import annotations

import datetime
import uuid as uuid_module
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection

from stowage import errors
from stowage.candidates import listing
from stowage.candidates.listing import ListingConditions
from stowage.candidates.readmodel import ReadModel
from stowage.domain.candidates import ReadModelCache
from stowage.domain.filters import AggregateFilter, ResourceAmount, TraitFilter
from stowage.domain.inventories import MAX_INT
from stowage.storage import providers as storage
from stowage.storage.catalog import STANDARD_CLASSES, STANDARD_TRAITS
from stowage.storage.providers import ListedProvider, ProviderFilter, ProviderRecord, ProviderRow

# Marks an update that leaves the parent as it is.
UNCHANGED = object()


@dataclass(frozen=True)
class ProviderQuery:
    """What GET /resource_providers asked for, names not yet resolved."""

    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    member_of: AggregateFilter = field(default_factory=AggregateFilter)
    required: TraitFilter = field(default_factory=TraitFilter)
    resources: tuple[ResourceAmount, ...] = ()


def canonical_uuid(value: str) -> str:
    """The dashed, lower-case form of a uuid given with or without dashes."""
    return str(uuid_module.UUID(value))


def show_provider(connection: Connection, uuid: str) -> ProviderRecord:
    """Raises ``NotFound`` when there is no such provider."""
    record = storage.find_record(connection, uuid)
    if record is None:
        raise errors.ProviderNotFound(uuid)
    return record


def create_provider(
    connection: Connection, name: str, uuid: str | None, parent_uuid: str | None
) -> ProviderRecord:
    """Create a provider (a new uuid if none is given) under ``parent_uuid``.

    Raises ``Duplicate`` when the uuid or name is taken and ``BadRequest``
    when the parent is the provider itself or does not exist.
    """
    uuid = canonical_uuid(uuid) if uuid else str(uuid_module.uuid4())
    failure = f'Unable to create resource provider "{name}", {uuid}: {_refused("create")}'
    if not name:
        raise errors.BadRequest(failure + "name is required")
    parent = None
    if parent_uuid is not None:
        if canonical_uuid(parent_uuid) == uuid:
            raise errors.BadRequest(
                failure + "parent provider UUID cannot be same as UUID. Please set "
                "parent provider UUID to None if there is no parent."
            )
        (parent,) = _read_locking_trees(connection, [canonical_uuid(parent_uuid)])
        if parent is None:
            raise errors.BadRequest(failure + "parent provider UUID does not exist.")
    # Upstream finds duplicates only when it writes, after the parent checks.
    taken = []
    if storage.find_provider(connection, uuid) is not None:
        taken.append(f"uuid: {uuid}")
    if storage.find_provider_named(connection, name) is not None:
        taken.append(f"name: {name}")
    if taken:
        raise errors.Duplicate(f"Conflicting resource provider {', '.join(taken)} already exists.")
    storage.insert_provider(connection, uuid, name, parent)
    return show_provider(connection, uuid)


@dataclass(frozen=True)
class ProviderUpdate:
    """A provider as an update left it, and when it was updated before.

    Upstream reports ``previously_updated_at`` as the update's last-modified
    time (the timestamp it read before writing), and none for a provider
    never updated before.
    """

    record: ProviderRecord
    previously_updated_at: datetime.datetime | None


def update_provider(
    connection: Connection,
    uuid: str,
    name: str,
    parent_uuid: str | object | None = UNCHANGED,
    allow_reparenting: bool = False,
) -> ProviderUpdate:
    """Rename the provider and, if ``parent_uuid`` is given, move it.

    Moving re-roots the provider's whole subtree. Raises ``NotFound``,
    ``Duplicate`` for a taken name, and ``BadRequest`` for a missing parent,
    a forbidden move or a loop.
    """
    failure = f"Unable to save resource provider {uuid}: "
    refused = failure + _refused("update")
    if isinstance(parent_uuid, str):
        provider, parent = _read_locking_trees(connection, [uuid, canonical_uuid(parent_uuid)])
    elif parent_uuid is None:
        provider, parent = _read_locking_trees(connection, [uuid])[0], None
    else:
        provider, parent = storage.find_provider(connection, uuid), None
    if provider is None:
        raise errors.ProviderNotFound(uuid)
    parent_id = provider.parent_provider_id
    root_id = _root_id(provider)
    moved: list[int] = []
    if parent_uuid is not UNCHANGED and parent_uuid is not None:
        if parent is None:
            # Upstream names this check "create" in an update too.
            raise errors.BadRequest(failure + _refused("create") + "parent provider UUID does not exist.")
        if (
            provider.parent_provider_id is not None
            and provider.parent_provider_id != parent.id
            and not allow_reparenting
        ):
            raise errors.BadRequest(
                refused + "re-parenting a provider is not currently allowed."
            )
        moved = storage.subtree_ids(connection, provider)
        if parent.id in moved:
            raise errors.BadRequest(
                refused + "creating loop in the provider tree is not allowed."
            )
        parent_id = parent.id
        root_id = _root_id(parent)
    elif parent_uuid is None and provider.parent_provider_id is not None:
        if not allow_reparenting:
            raise errors.BadRequest(
                refused + "un-parenting a provider is not currently allowed."
            )
        moved = storage.subtree_ids(connection, provider)
        parent_id = None
        root_id = provider.id
    if name != provider.name and storage.find_provider_named(connection, name) is not None:
        raise errors.Duplicate(f"Conflicting resource provider {name} already exists.")
    storage.update_provider_row(connection, provider, name, parent_id, root_id, moved)
    return ProviderUpdate(show_provider(connection, uuid), provider.updated_at)


def _refused(action: str) -> str:
    """How upstream's objects word a refused create or update."""
    return f"Object action {action} failed because: "


def _root_id(provider: ProviderRow) -> int:
    return provider.root_provider_id if provider.root_provider_id is not None else provider.id


def _read_locking_trees(connection: Connection, uuids: list[str]) -> list[ProviderRow | None]:
    """The providers named (``None`` if absent), read after locking their trees.

    Two concurrent moves could each pass the loop check and together make a
    cycle, and a child created during a move could get a stale root; locking
    the roots of every tree involved serialises such writers, and the rows
    are read again once locked. If a root changed in between (a move
    committed after our read), the new roots are locked as well.
    """
    locked: set[int] = set()
    while True:
        found = [storage.find_provider(connection, uuid) for uuid in uuids]
        roots = {_root_id(provider) for provider in found if provider is not None}
        if roots <= locked:
            return found
        storage.lock_providers(connection, roots | locked)
        locked |= roots


def delete_provider(connection: Connection, uuid: str) -> None:
    """Delete the provider with its inventories, traits and aggregate links.

    Raises ``NotFound``, ``CannotDeleteParent`` while it has children and
    ``ResourceProviderInUse`` while it has allocations, also when one of
    them arrives while the delete runs. Raises ``TransactionAborted`` (the
    request runs again) if what refused the delete has gone again.
    """
    provider = storage.find_provider(connection, uuid)
    if provider is None:
        raise errors.NotFound(f"No resource provider with uuid {uuid} found for delete")
    _refuse_while_in_use(connection, provider, uuid)
    if not storage.delete_provider_rows(connection, provider):
        # A child or a claim committed after the checks, and the foreign
        # keys refused: writes run at READ COMMITTED, so the checks see it now.
        _refuse_while_in_use(connection, provider, uuid)
        raise errors.TransactionAborted(
            f"Resource provider {uuid} changed while being deleted; please retry."
        )


def _refuse_while_in_use(connection: Connection, provider: ProviderRow, uuid: str) -> None:
    """Raise ``CannotDeleteParent`` or ``ResourceProviderInUse``, checked in
    upstream's order, unless nothing keeps the provider from being deleted;
    the messages name it as the request did (``uuid``)."""
    if storage.has_children(connection, provider):
        raise errors.CannotDeleteParent(
            f"Unable to delete parent resource provider {uuid}: "
            "It has child resource providers."
        )
    if storage.has_allocations(connection, provider):
        raise errors.ResourceProviderInUse(
            f"Unable to delete resource provider {uuid}: Resource provider has allocations."
        )


def list_providers(
    connection: Connection, query: ProviderQuery, read_models: ReadModelCache | None = None
) -> list[ListedProvider]:
    """Providers matching every condition of ``query``, in creation order:
    filtered in the fast engine's read model when ``read_models`` is given
    (brought to what ``connection`` sees first), by SQL otherwise.

    Raises ``BadRequest`` for an unknown resource class or trait; an unknown
    ``in_tree`` provider or aggregate simply matches nothing.
    """
    if read_models is not None:
        return _list_from_model(connection, query, read_models.current(connection))
    # Checked in upstream's order: an unknown tree ends the search before
    # unknown traits, which are reported before unknown resource classes.
    tree_root_id = None
    if query.in_tree is not None:
        tree_member = storage.find_provider(connection, query.in_tree)
        if tree_member is None:
            return []
        tree_root_id = tree_member.root_provider_id
    trait_names = query.required.names
    found_traits = storage.trait_ids(connection, trait_names)
    _refuse_unknown_traits(trait_names - set(found_traits))
    class_ids = storage.resource_class_ids(
        connection, {item.resource_class for item in query.resources}
    )
    _refuse_unknown_classes(query.resources, class_ids)
    if _beyond_any_inventory(query.resources):
        return []
    conditions = ProviderFilter(
        name=query.name,
        uuid=query.uuid,
        tree_root_id=tree_root_id,
        aggregates_any_of=query.member_of.any_of,
        forbidden_aggregates=query.member_of.forbidden,
        traits_any_of=tuple(
            frozenset(found_traits[name] for name in names) for names in query.required.any_of
        ),
        forbidden_traits=frozenset(found_traits[name] for name in query.required.forbidden),
        resources={class_ids[item.resource_class]: item.amount for item in query.resources},
    )
    return storage.list_records(connection, conditions)


def _list_from_model(
    connection: Connection, query: ProviderQuery, model: ReadModel
) -> list[ListedProvider]:
    """``list_providers`` from the read model: the model picks the
    providers, one statement reads their names and generations (the model
    holds neither); a ``name`` is looked up first, which leaves one
    provider at most to the model."""
    # The same checks in the same order as the SQL listing's.
    if query.in_tree is not None and query.in_tree not in model.snapshot.by_uuid:
        return []
    trait_names = query.required.names
    custom = trait_names - STANDARD_TRAITS
    _refuse_unknown_traits(custom - set(storage.trait_ids(connection, custom)))
    classes = {item.resource_class for item in query.resources}
    custom = classes - STANDARD_CLASSES
    known = (classes & STANDARD_CLASSES) | set(storage.resource_class_ids(connection, custom))
    _refuse_unknown_classes(query.resources, known)
    if _beyond_any_inventory(query.resources):
        return []
    uuid = query.uuid
    named = None
    if query.name is not None:
        named = storage.provider_details_named(connection, query.name)
        if named is None or (uuid is not None and named[0] != uuid):
            return []
        uuid = named[0]
    conditions = ListingConditions(
        uuid=uuid,
        in_tree=query.in_tree,
        aggregates_any_of=query.member_of.any_of,
        forbidden_aggregates=query.member_of.forbidden,
        traits_any_of=query.required.any_of,
        forbidden_traits=query.required.forbidden,
        resources=tuple((item.resource_class, item.amount) for item in query.resources),
    )
    matched = listing.matching_providers(model, conditions)
    if named is not None:
        details = {named[1].id: named[1]}
    else:
        ids = [provider_id for provider_id, _provider in matched]
        # Past a third of the providers, reading every row beats naming them.
        wanted = ids if len(ids) * 3 < model.provider_count else None
        details = storage.provider_details(connection, wanted)
    found = []
    listed = tuple.__new__  # the named tuple's own __new__ is a Python call
    for provider_id, provider in matched:
        row = details.get(provider_id)
        # None: created after this transaction's snapshot (the model may be
        # newer) or deleted meanwhile; either way not there to list.
        if row is not None:
            found.append(listed(ListedProvider, (
                provider.uuid, row.name, row.generation, provider.parent_uuid,
                provider.root_uuid, row.last_modified,
            )))
    return found


def _refuse_unknown_traits(missing: set[str]) -> None:
    if missing:
        raise errors.BadRequest(
            'Invalid trait(s) in "required" parameter: No such trait(s): '
            f'{", ".join(sorted(missing))}.'
        )


def _refuse_unknown_classes(resources: tuple[ResourceAmount, ...], known: Collection[str]) -> None:
    """The first unknown class, in the order the query names them."""
    for item in resources:
        if item.resource_class not in known:
            raise errors.BadRequest(
                "Invalid resource class in resources parameter: "
                f"No such resource class {item.resource_class}."
            )


def _beyond_any_inventory(resources: tuple[ResourceAmount, ...]) -> bool:
    """No inventory's max_unit is larger than ``MAX_INT``, so nothing fits
    such an amount (and the database's integer columns could not even be
    compared with it)."""
    return any(item.amount > MAX_INT for item in resources)
