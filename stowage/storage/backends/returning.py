"""Statements SQLite and PostgreSQL share: both have ``RETURNING`` and ``ON CONFLICT``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, bindparam, exists, update

from stowage.storage.schema import changes, revision


def insert_counting_new_rows(
    connection: Connection, table: Table, rows: list[dict], insert: Callable[[Table], Any]
) -> int:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING <first column>``, counted
    from RETURNING (psycopg reports no rowcount for these); ``insert`` is
    the dialect's own ``insert`` construct."""
    if not rows:
        return 0
    first_column = next(iter(table.columns))
    statement = insert(table).values(rows).on_conflict_do_nothing().returning(first_column)
    return len(connection.execute(statement).all())


def insert_returning_id(connection: Connection, table: Table, row: dict, insert: Callable[[Table], Any]) -> int | None:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: the new row's id,
    or None for a duplicate."""
    return connection.execute(insert(table).values(row).on_conflict_do_nothing().returning(table.c.id)).scalar()


def advance_revision_returning(connection: Connection) -> int | None:
    """``UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1 AND
    EXISTS (SELECT 1 FROM stowage_changes WHERE revision IS NULL) RETURNING revision``,
    then ``UPDATE stowage_changes SET revision = :new WHERE revision IS NULL``.

    Unstamped rows are this transaction's: SQLite's writers are serial, and
    on PostgreSQL other writers' unstamped rows are uncommitted, so
    invisible to the UPDATE.
    """
    new_revision = connection.execute(_ADVANCE).scalar_one_or_none()
    if new_revision is not None:
        connection.execute(_STAMP, {"new": new_revision})
    return new_revision


_UNSTAMPED = changes.c.revision.is_(None)
_STAMP = update(changes).where(_UNSTAMPED).values(revision=bindparam("new"))


_ADVANCE = (
    update(revision)
    .where(revision.c.id == 1, exists().where(_UNSTAMPED))
    .values(revision=revision.c.revision + 1)
    .returning(revision.c.revision)
)
