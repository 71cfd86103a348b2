"""Consumers and the names they hang off: projects, users and consumer types.

Projects, users and consumer types are created on demand with
``INSERT ... ON CONFLICT DO NOTHING`` followed by a read, so two requests
naming the same new project at once both succeed. A consumer's
``generation`` is bumped by compare-and-swap on every allocation write.
"""
from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from stowage import errors
from stowage.storage.common import insert_ignoring_duplicates, insert_new_row, utcnow
from stowage.storage.schema import allocations, consumer_types, consumers, projects, users


@dataclass(frozen=True)
class ConsumerRow:
    id: int
    uuid: str
    project_id: int
    user_id: int
    generation: int
    consumer_type_id: int | None
    project_external_id: str
    user_external_id: str
    consumer_type: str | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


def _ensure_named_row(connection: Connection, table: Table, column: str, value: str, missing: bool) -> int:
    """The id of the row of ``table`` whose ``column`` is ``value``, made if
    missing; ``missing``: the caller has just looked and found none, so the
    insert comes first (one statement, unless a concurrent writer made it)."""
    key = table.c[column]
    if not missing:
        found = connection.execute(select(table.c.id).where(key == value)).scalar()
        if found is not None:
            return found
    made = insert_new_row(connection, table, {column: value, "created_at": utcnow()})
    if made is not None:
        return made
    return connection.execute(select(table.c.id).where(key == value)).scalar_one()


def ensure_project(connection: Connection, external_id: str, missing: bool = False) -> int:
    """The internal id of project ``external_id``, created if missing
    (``missing``: the caller found none just now)."""
    return _ensure_named_row(connection, projects, "external_id", external_id, missing)


def ensure_user(connection: Connection, external_id: str, missing: bool = False) -> int:
    """The internal id of user ``external_id``, created if missing
    (``missing``: the caller found none just now)."""
    return _ensure_named_row(connection, users, "external_id", external_id, missing)


def ensure_consumer_type(connection: Connection, name: str, missing: bool = False) -> int:
    """The id of consumer type ``name``, created if missing (``missing``:
    the caller found none just now)."""
    return _ensure_named_row(connection, consumer_types, "name", name, missing)


def _consumer_query(uuid) -> Select:
    """``SELECT c.*, p.external_id, u.external_id, ct.name FROM consumers c
    JOIN projects p ON p.id = c.project_id JOIN users u ON u.id = c.user_id
    LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id WHERE c.uuid = :uuid``"""
    joined = (
        consumers.join(projects, projects.c.id == consumers.c.project_id)
        .join(users, users.c.id == consumers.c.user_id)
        .outerjoin(consumer_types, consumer_types.c.id == consumers.c.consumer_type_id)
    )
    return (
        select(
            consumers.c.id,
            consumers.c.uuid,
            consumers.c.project_id,
            consumers.c.user_id,
            consumers.c.generation,
            consumers.c.consumer_type_id,
            projects.c.external_id,
            users.c.external_id,
            consumer_types.c.name,
            consumers.c.created_at,
            consumers.c.updated_at,
        )
        .select_from(joined)
        .where(consumers.c.uuid == uuid)
    )


def find_consumer(connection: Connection, uuid: str) -> ConsumerRow | None:
    """The consumer with ``uuid`` with its project, user and type names."""
    row = connection.execute(_consumer_query(uuid)).first()
    return ConsumerRow(*row) if row else None


def lock_consumer(connection: Connection, uuid: str) -> int | None:
    """Row-lock the consumer with ``uuid`` until the transaction ends; its
    id, or None if there is none.

    ``SELECT id FROM consumers WHERE uuid = :uuid FOR UPDATE``

    A writer of its allocations bumps this row before touching them, so
    whoever locks it next waits for that writer and then, under READ
    COMMITTED, reads the allocations it left. SQLite ignores FOR UPDATE
    (its writes are serial already).
    """
    return connection.execute(_LOCK_CONSUMER, {"uuid": uuid}).scalar()


_LOCK_CONSUMER = select(consumers.c.id).where(consumers.c.uuid == bindparam("uuid")).with_for_update()


@dataclass(frozen=True)
class ConsumerLookup:
    """A consumer (None if unknown) and the ids of the project, user and
    type a write names (None where no such row exists yet)."""

    consumer: ConsumerRow | None
    project_id: int | None
    user_id: int | None
    consumer_type_id: int | None


def look_up_consumer(
    connection: Connection, uuid: str, project: str, user: str, consumer_type: str | None
) -> ConsumerLookup:
    """The consumer and the owner ids of a write, in one statement::

        SELECT (SELECT id FROM projects WHERE external_id = :project),
               (SELECT id FROM users WHERE external_id = :user),
               (SELECT id FROM consumer_types WHERE name = :type), c.*
          FROM (SELECT 1) one LEFT JOIN (<find_consumer's query>) c ON true
    """
    row = connection.execute(
        _lookup_statement(), {"uuid": uuid, "project": project, "user": user, "type": consumer_type}
    ).one()
    consumer = ConsumerRow(*row[3:]) if row[3] is not None else None
    return ConsumerLookup(consumer, row[0], row[1], row[2])


@functools.cache
def _lookup_statement() -> Select:
    """``look_up_consumer``'s statement, built once (every write runs it)."""
    found = _consumer_query(bindparam("uuid")).subquery("consumer")
    one = select(literal(1).label("one")).subquery("one")
    return select(
        select(projects.c.id).where(projects.c.external_id == bindparam("project")).scalar_subquery(),
        select(users.c.id).where(users.c.external_id == bindparam("user")).scalar_subquery(),
        select(consumer_types.c.id).where(consumer_types.c.name == bindparam("type")).scalar_subquery(),
        *found.c,
    ).select_from(one.outerjoin(found, true()))


class ConsumerRaceLost(errors.TransactionAborted):
    """A concurrent writer created the consumer first: the transaction is
    over (PostgreSQL ends it at the failed INSERT) and may run again."""

    def __init__(self, uuid: str) -> None:
        super().__init__(f"Consumer {uuid} was created by another request at the same time; please retry.")


def insert_consumer(
    connection: Connection,
    uuid: str,
    owner: tuple[int, int, int | None],
    generation: int,
    names: tuple[str, str, str | None],
) -> ConsumerRow:
    """Insert a consumer the caller found missing, at ``generation``.

    Raises ``ConsumerRaceLost`` when a concurrent writer inserted it first
    (on PostgreSQL that ends the transaction, so only a fresh run of the
    whole write can go on). ``names`` are the external ids of the owner.
    """
    project_id, user_id, type_id = owner
    now = utcnow()
    try:
        inserted = connection.execute(
            insert(consumers).values(
                uuid=uuid,
                project_id=project_id,
                user_id=user_id,
                generation=generation,
                consumer_type_id=type_id,
                created_at=now,
            )
        ).inserted_primary_key
    except IntegrityError:
        raise ConsumerRaceLost(uuid) from None
    assert inserted is not None  # set for every single-row INSERT
    return ConsumerRow(inserted[0], uuid, project_id, user_id, generation, type_id, *names, now, None)


def create_consumer(
    connection: Connection,
    uuid: str,
    project_id: int,
    user_id: int,
    consumer_type_id: int | None,
) -> bool:
    """Insert a consumer with generation 0 unless one with ``uuid`` exists;
    False if one did (a concurrent creator wins silently, ``ON CONFLICT DO
    NOTHING``, and the caller re-reads the row)."""
    return insert_ignoring_duplicates(
        connection,
        consumers,
        [
            {
                "uuid": uuid,
                "project_id": project_id,
                "user_id": user_id,
                "generation": 0,
                "consumer_type_id": consumer_type_id,
                "created_at": utcnow(),
            }
        ],
    ) == 1


def update_consumer_owner(
    connection: Connection,
    consumer: ConsumerRow,
    project_id: int,
    user_id: int,
    consumer_type_id: int | None,
) -> None:
    """Point the consumer at a new project, user and type (generation untouched).

    ``UPDATE consumers SET project_id = :p, user_id = :u, consumer_type_id = :t
    WHERE id = :id``
    """
    connection.execute(
        update(consumers)
        .where(consumers.c.id == consumer.id)
        .values(
            project_id=project_id,
            user_id=user_id,
            consumer_type_id=consumer_type_id,
            updated_at=utcnow(),
        )
    )


def increment_consumer_generation(connection: Connection, consumer_id: int, generation: int) -> bool:
    """Bump a consumer's generation if it is still ``generation``; False if not.

    ``UPDATE consumers SET generation = :g + 1 WHERE id = :id AND generation = :g``
    """
    result = connection.execute(
        update(consumers)
        .where(consumers.c.id == consumer_id, consumers.c.generation == generation)
        .values(generation=generation + 1, updated_at=utcnow())
    )
    return result.rowcount == 1


def delete_consumers_without_allocations(connection: Connection, consumer_ids: list[int]) -> None:
    """Delete those of ``consumer_ids`` that hold no allocation any more.

    ``DELETE FROM consumers WHERE id IN (:ids) AND NOT EXISTS
    (SELECT 1 FROM allocations a WHERE a.consumer_id = consumers.id)``
    """
    if not consumer_ids:
        return
    connection.execute(
        delete(consumers).where(
            consumers.c.id.in_(consumer_ids),
            ~exists().where(allocations.c.consumer_id == consumers.c.id),
        )
    )
