"""Statements SQLite and PostgreSQL share: both have ``RETURNING`` and ``ON CONFLICT``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, update

from stowage.storage.schema import revision


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


def advance_revision_returning(connection: Connection) -> int:
    """``UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision``"""
    return connection.execute(
        update(revision)
        .where(revision.c.id == 1)
        .values(revision=revision.c.revision + 1)
        .returning(revision.c.revision)
    ).scalar_one()
