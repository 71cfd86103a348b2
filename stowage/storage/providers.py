"""Resource provider rows: lookup, generation bumps, CRUD, trees and list filters.

``ProviderRow`` is the raw row every resource uses for generation checks;
``ProviderRecord`` is what the API shows (parent and root as uuids).
"""
from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from stowage import errors
from stowage.storage.common import utcnow
from stowage.storage.schema import (
    aggregates,
    allocations,
    inventories,
    provider_aggregates,
    provider_traits,
    resource_classes,
    resource_providers,
    traits,
)

_new_tuple = tuple.__new__


@dataclass(frozen=True)
class ProviderRow:
    id: int
    uuid: str
    name: str
    generation: int
    root_provider_id: int | None
    parent_provider_id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


class ProviderRecord(NamedTuple):
    """A provider as the API shows it: parent and root named by uuid.

    A named tuple: a listing makes one per row, and a tuple is made from
    the row in a tenth of the time of a frozen dataclass.
    """

    id: int
    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self.updated_at or self.created_at


class ListedProvider(NamedTuple):
    """A provider as ``GET /resource_providers`` lists it.

    ``last_modified`` is ``updated_at``, or ``created_at`` for a provider
    never updated. A named tuple, made once per provider listed.
    """

    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    last_modified: datetime.datetime | None


class ProviderDetails(NamedTuple):
    """What a listing from the read model reads of each provider listed:
    the columns the model does not hold."""

    id: int
    name: str
    generation: int
    last_modified: datetime.datetime | None


@dataclass(frozen=True)
class ProviderFilter:
    """Conditions of ``GET /resource_providers``, with names already resolved to ids.

    ``*_any_of`` are ANDed tuples of ORed sets: a provider must match at least
    one member of every set. ``resources`` maps resource class id to amount.
    """

    name: str | None = None
    uuid: str | None = None
    tree_root_id: int | None = None
    aggregates_any_of: tuple[frozenset[str], ...] = ()
    forbidden_aggregates: frozenset[str] = frozenset()
    traits_any_of: tuple[frozenset[int], ...] = ()
    forbidden_traits: frozenset[int] = frozenset()
    resources: dict[int, int] = field(default_factory=dict)


_PROVIDER_COLUMNS = [
    resource_providers.c.id,
    resource_providers.c.uuid,
    resource_providers.c.name,
    resource_providers.c.generation,
    resource_providers.c.root_provider_id,
    resource_providers.c.parent_provider_id,
    resource_providers.c.created_at,
    resource_providers.c.updated_at,
]


def find_provider(connection: Connection, uuid: str) -> ProviderRow | None:
    row = connection.execute(
        select(*_PROVIDER_COLUMNS).where(resource_providers.c.uuid == uuid)
    ).first()
    return ProviderRow(*row) if row else None


def find_providers(connection: Connection, uuids: Iterable[str]) -> dict[str, ProviderRow]:
    """The providers of ``uuids`` that exist, by uuid, in one statement."""
    wanted = sorted(set(uuids))
    if not wanted:
        return {}
    rows = connection.execute(_PROVIDERS_BY_UUID, {"uuids": wanted})
    return {row.uuid: ProviderRow(*row) for row in rows}


_PROVIDERS_BY_UUID = select(*_PROVIDER_COLUMNS).where(
    resource_providers.c.uuid.in_(bindparam("uuids", expanding=True))
)


def get_provider(connection: Connection, uuid: str) -> ProviderRow:
    """The provider with ``uuid``; raises ``NotFound`` (404) if there is none."""
    provider = find_provider(connection, uuid)
    if provider is None:
        raise errors.ProviderNotFound(uuid)
    return provider


_NEXT_GENERATION = (
    update(resource_providers)
    .where(
        resource_providers.c.id == bindparam("provider_id"),
        resource_providers.c.generation == bindparam("seen"),
    )
    .values(generation=bindparam("next"), updated_at=bindparam("now"))
)


def increment_generation(connection: Connection, provider: ProviderRow) -> int:
    """Bump the provider's generation if it is still ``provider.generation``.

    Raises ``ProviderGenerationMoved`` when another writer got there first;
    returns the new generation. Also bumps the data revision.

    ``UPDATE resource_providers SET generation = :g + 1, updated_at = now
    WHERE id = :id AND generation = :g``
    """
    result = connection.execute(
        _NEXT_GENERATION,
        {"provider_id": provider.id, "seen": provider.generation, "next": provider.generation + 1,
         "now": utcnow()},
    )
    if result.rowcount != 1:
        raise errors.ProviderGenerationMoved(provider.uuid, provider.generation)
    return provider.generation + 1


# --- records with parent and root uuids --------------------------------------

_parent = resource_providers.alias("parent_provider")
_root = resource_providers.alias("root_provider")


def _record_select():
    """``SELECT rp.*, parent.uuid, root.uuid FROM resource_providers rp
    LEFT JOIN resource_providers parent ON parent.id = rp.parent_provider_id
    LEFT JOIN resource_providers root ON root.id = rp.root_provider_id``
    """
    provider = resource_providers
    return select(
        provider.c.id,
        provider.c.uuid,
        provider.c.name,
        provider.c.generation,
        _parent.c.uuid,
        # A root row always points at itself; fall back to our own uuid
        # should a legacy row still lack root_provider_id.
        func.coalesce(_root.c.uuid, provider.c.uuid),
        provider.c.created_at,
        provider.c.updated_at,
    ).select_from(
        provider.outerjoin(_parent, _parent.c.id == provider.c.parent_provider_id).outerjoin(
            _root, _root.c.id == provider.c.root_provider_id
        )
    )


def find_record(connection: Connection, uuid: str) -> ProviderRecord | None:
    row = connection.execute(_record_select().where(resource_providers.c.uuid == uuid)).first()
    return _new_tuple(ProviderRecord, row) if row else None


def find_provider_named(connection: Connection, name: str) -> ProviderRow | None:
    row = connection.execute(
        select(*_PROVIDER_COLUMNS).where(resource_providers.c.name == name)
    ).first()
    return ProviderRow(*row) if row else None


# --- writes --------------------------------------------------------------------


def insert_provider(
    connection: Connection, uuid: str, name: str, parent: ProviderRow | None
) -> ProviderRow:
    """Insert a provider with generation 0; a root provider is its own root.

    A root is inserted, then pointed at itself, which (as upstream) counts
    as its first update: only a child starts with no ``updated_at``.
    Raises ``Duplicate`` if a concurrent writer took the uuid or name first.
    """
    now = utcnow()
    try:
        # inserted_primary_key: RETURNING where the database has it for
        # INSERT, the driver's lastrowid where it does not (MySQL).
        inserted = connection.execute(
            insert(resource_providers).values(
                uuid=uuid,
                name=name,
                generation=0,
                parent_provider_id=parent.id if parent else None,
                root_provider_id=parent.root_provider_id if parent else None,
                created_at=now,
                updated_at=None,
            )
        ).inserted_primary_key
        assert inserted is not None  # set for every single-row INSERT
        provider_id = inserted[0]
    except IntegrityError:
        raise errors.Duplicate(f"Conflicting resource provider {name} already exists.") from None
    if parent is None:
        connection.execute(
            update(resource_providers)
            .where(resource_providers.c.id == provider_id)
            .values(root_provider_id=provider_id, updated_at=now)
        )
    return get_provider(connection, uuid)


def update_provider_row(
    connection: Connection,
    provider: ProviderRow,
    name: str,
    parent_provider_id: int | None,
    root_provider_id: int,
    subtree_ids: list[int],
) -> None:
    """Rename and (re)parent ``provider``, moving ``subtree_ids`` to the new root.

    The generation is left alone: upstream does not bump it for a rename or
    a move. A row is written (and its ``updated_at`` set) only when it
    changes, as upstream's ORM does. Raises ``Duplicate`` if the name is
    taken by the time we write.
    """
    changed = (name, parent_provider_id, root_provider_id) != (
        provider.name,
        provider.parent_provider_id,
        provider.root_provider_id,
    )
    if changed:
        try:
            connection.execute(
                update(resource_providers)
                .where(resource_providers.c.id == provider.id)
                .values(
                    name=name,
                    parent_provider_id=parent_provider_id,
                    root_provider_id=root_provider_id,
                    updated_at=utcnow(),
                )
            )
        except IntegrityError:
            raise errors.Duplicate(f"Conflicting resource provider {name} already exists.") from None
    others = [provider_id for provider_id in subtree_ids if provider_id != provider.id]
    if others:
        connection.execute(
            update(resource_providers)
            .where(
                resource_providers.c.id.in_(others),
                resource_providers.c.root_provider_id != root_provider_id,
            )
            .values(root_provider_id=root_provider_id, updated_at=utcnow())
        )


def subtree_ids(connection: Connection, provider: ProviderRow) -> list[int]:
    """Ids of ``provider`` and all its descendants, the provider first.

    Loads the provider's whole tree (one indexed query on root_provider_id)
    and walks it in memory, which beats a recursive CTE on both backends for
    the tree sizes Placement sees.
    """
    rows = connection.execute(
        select(resource_providers.c.id, resource_providers.c.parent_provider_id).where(
            resource_providers.c.root_provider_id == provider.root_provider_id
        )
    ).all()
    children: dict[int, list[int]] = defaultdict(list)
    for provider_id, parent_id in rows:
        if parent_id is not None:
            children[parent_id].append(provider_id)
    found = [provider.id]
    index = 0
    while index < len(found):
        found.extend(children[found[index]])
        index += 1
    return found


def lock_providers(connection: Connection, provider_ids: set[int]) -> None:
    """Row-lock the given providers until the transaction ends.

    ``SELECT id FROM resource_providers WHERE id IN (:ids) ORDER BY id FOR UPDATE``

    Tree moves lock the roots of the trees they touch, in id order so two
    moves never deadlock; SQLite's writers are serialised already and
    SQLAlchemy leaves ``FOR UPDATE`` out there.
    """
    connection.execute(
        select(resource_providers.c.id)
        .where(resource_providers.c.id.in_(sorted(provider_ids)))
        .order_by(resource_providers.c.id)
        .with_for_update()
    ).all()


def has_children(connection: Connection, provider: ProviderRow) -> bool:
    return connection.execute(
        select(literal(1)).where(resource_providers.c.parent_provider_id == provider.id).limit(1)
    ).first() is not None


def has_allocations(connection: Connection, provider: ProviderRow) -> bool:
    return connection.execute(
        select(literal(1)).where(allocations.c.resource_provider_id == provider.id).limit(1)
    ).first() is not None


def delete_provider_rows(connection: Connection, provider: ProviderRow) -> bool:
    """Delete the provider with its inventories, trait and aggregate links.

    False, having deleted nothing, if the foreign keys refuse it: a child
    or an allocation committed after the caller's checks. A savepoint keeps
    the transaction usable (PostgreSQL aborts it on the error otherwise),
    so the caller can look again for what refused it.
    """
    try:
        with connection.begin_nested():
            for table in (inventories, provider_aggregates, provider_traits):
                connection.execute(delete(table).where(table.c.resource_provider_id == provider.id))
            # A root references itself; clear that so the row can go.
            connection.execute(
                update(resource_providers)
                .where(resource_providers.c.id == provider.id)
                .values(root_provider_id=None)
            )
            connection.execute(delete(resource_providers).where(resource_providers.c.id == provider.id))
    except IntegrityError:
        return False
    return True


# --- name lookups for filters -----------------------------------------------------


def trait_ids(connection: Connection, names: set[str]) -> dict[str, int]:
    """Ids of the named traits that exist (missing names are simply absent)."""
    if not names:
        return {}
    rows = connection.execute(select(traits.c.name, traits.c.id).where(traits.c.name.in_(names)))
    return dict(rows.all())


def resource_class_ids(connection: Connection, names: set[str]) -> dict[str, int]:
    """Ids of the named resource classes that exist."""
    if not names:
        return {}
    rows = connection.execute(
        select(resource_classes.c.name, resource_classes.c.id).where(
            resource_classes.c.name.in_(names)
        )
    )
    return dict(rows.all())


# --- listing ----------------------------------------------------------------------


def any_provider_in_aggregates(connection: Connection, member_of: Iterable[frozenset[str]]) -> bool:
    """Whether some provider is, for every set, in one of its aggregates.

    ``SELECT 1 FROM resource_providers rp WHERE rp.id IN (<members of set 1>)
    AND rp.id IN (<members of set 2>) ... LIMIT 1``
    """
    query = select(resource_providers.c.id).limit(1)
    for uuids in member_of:
        query = query.where(_with_any_aggregate(uuids))
    return connection.execute(query).first() is not None


def _with_any_aggregate(uuids: frozenset[str]):
    """``rp.id IN (SELECT rpa.resource_provider_id FROM resource_provider_aggregates rpa
    JOIN placement_aggregates a ON a.id = rpa.aggregate_id WHERE a.uuid IN (:uuids))``
    """
    return resource_providers.c.id.in_(
        select(provider_aggregates.c.resource_provider_id)
        .select_from(
            provider_aggregates.join(
                aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id
            )
        )
        .where(aggregates.c.uuid.in_(sorted(uuids)))
    )


def _with_any_trait(ids: frozenset[int]):
    """``rp.id IN (SELECT resource_provider_id FROM resource_provider_traits
    WHERE trait_id IN (:ids))``"""
    return resource_providers.c.id.in_(
        select(provider_traits.c.resource_provider_id).where(
            provider_traits.c.trait_id.in_(sorted(ids))
        )
    )


def _with_capacity(resource_class_id: int, amount: int):
    """Providers that could take ``amount`` more of the class right now.

    ::

        rp.id IN (SELECT inv.resource_provider_id FROM inventories inv
                  WHERE inv.resource_class_id = :class
                    AND :amount BETWEEN inv.min_unit AND inv.max_unit
                    AND :amount % inv.step_size = 0
                    AND (SELECT COALESCE(SUM(a.used), 0) FROM allocations a
                         WHERE a.resource_provider_id = inv.resource_provider_id
                           AND a.resource_class_id = :class) + :amount
                        <= (inv.total - inv.reserved) * inv.allocation_ratio)
    """
    used = (
        select(func.coalesce(func.sum(allocations.c.used), 0))
        .where(
            allocations.c.resource_provider_id == inventories.c.resource_provider_id,
            allocations.c.resource_class_id == resource_class_id,
        )
        .scalar_subquery()
    )
    return resource_providers.c.id.in_(
        select(inventories.c.resource_provider_id).where(
            inventories.c.resource_class_id == resource_class_id,
            inventories.c.min_unit <= amount,
            inventories.c.max_unit >= amount,
            literal(amount) % inventories.c.step_size == 0,
            used + amount
            <= (inventories.c.total - inventories.c.reserved) * inventories.c.allocation_ratio,
        )
    )


def list_records(connection: Connection, conditions: ProviderFilter) -> list[ListedProvider]:
    """Providers matching every condition of ``conditions``, in creation order."""
    provider = resource_providers
    query = _listing_select()
    if conditions.name is not None:
        query = query.where(provider.c.name == conditions.name)
    if conditions.uuid is not None:
        query = query.where(provider.c.uuid == conditions.uuid)
    if conditions.tree_root_id is not None:
        query = query.where(provider.c.root_provider_id == conditions.tree_root_id)
    for uuids in conditions.aggregates_any_of:
        query = query.where(_with_any_aggregate(uuids))
    if conditions.forbidden_aggregates:
        query = query.where(~_with_any_aggregate(conditions.forbidden_aggregates))
    for ids in conditions.traits_any_of:
        query = query.where(_with_any_trait(ids))
    if conditions.forbidden_traits:
        query = query.where(~_with_any_trait(conditions.forbidden_traits))
    for resource_class_id, amount in conditions.resources.items():
        query = query.where(_with_capacity(resource_class_id, amount))
    rows = connection.execute(query.order_by(provider.c.id)).all()
    return [_new_tuple(ListedProvider, row) for row in rows]


def _listing_select():
    """``SELECT rp.uuid, rp.name, rp.generation, parent.uuid, root.uuid,
    COALESCE(rp.updated_at, rp.created_at)`` from ``_record_select``'s joins."""
    provider = resource_providers
    return select(
        provider.c.uuid,
        provider.c.name,
        provider.c.generation,
        _parent.c.uuid,
        func.coalesce(_root.c.uuid, provider.c.uuid),
        func.coalesce(provider.c.updated_at, provider.c.created_at),
    ).select_from(
        provider.outerjoin(_parent, _parent.c.id == provider.c.parent_provider_id).outerjoin(
            _root, _root.c.id == provider.c.root_provider_id
        )
    )


_DETAIL_COLUMNS = (
    resource_providers.c.id,
    resource_providers.c.name,
    resource_providers.c.generation,
    func.coalesce(resource_providers.c.updated_at, resource_providers.c.created_at),
)
# The ids are written into the statement: a few thousand bound parameters
# cost PostgreSQL and SQLAlchemy far more than as many integers in the
# text, and SQLite could not bind more than 32,766.
_DETAILS_BY_ID = select(*_DETAIL_COLUMNS).where(
    resource_providers.c.id.in_(bindparam("ids", expanding=True, literal_execute=True))
)
_EVERY_DETAIL = select(*_DETAIL_COLUMNS)
_DETAILS_NAMED = select(resource_providers.c.uuid, *_DETAIL_COLUMNS).where(
    resource_providers.c.name == bindparam("name")
)


def provider_details(connection: Connection, ids: Sequence[int] | None) -> dict[int, ProviderDetails]:
    """Name, generation and last change of the providers ``ids`` names that
    still exist (None: of every provider), by id; one statement::

        SELECT id, name, generation, COALESCE(updated_at, created_at)
          FROM resource_providers [WHERE id IN (<ids as literals>)]
    """
    if ids is None:
        result = connection.execute(_EVERY_DETAIL)
    elif not ids:
        return {}
    else:
        result = connection.execute(_DETAILS_BY_ID, {"ids": [int(value) for value in ids]})
    # Fetched at once: iterating a result fetches row by row.
    return {row[0]: _new_tuple(ProviderDetails, row) for row in result.all()}


def provider_details_named(connection: Connection, name: str) -> tuple[str, ProviderDetails] | None:
    """The uuid and details of the provider called ``name``, if there is one.

    ``SELECT uuid, id, name, generation, COALESCE(updated_at, created_at)
    FROM resource_providers WHERE name = :name``
    """
    row = connection.execute(_DETAILS_NAMED, {"name": name}).first()
    if row is None:
        return None
    return row[0], _new_tuple(ProviderDetails, row[1:])


def lock_provider(connection: Connection, uuid: str) -> ProviderRow:
    """The provider with ``uuid``, row-locked until the transaction ends.

    Writers that change a provider's children (traits, aggregates) take this
    lock first, so concurrent writers of one provider queue here rather than
    deadlocking on child rows, and the row read is the newest committed one.
    SQLite ignores FOR UPDATE (its writes are serial already). Raises
    ``NotFound`` (404) if there is no such provider.

    ``SELECT ... FROM resource_providers WHERE uuid = :uuid FOR UPDATE``
    """
    row = connection.execute(
        select(*_PROVIDER_COLUMNS).where(resource_providers.c.uuid == uuid).with_for_update()
    ).first()
    if row is None:
        raise errors.ProviderNotFound(uuid)
    return ProviderRow(*row)
