"""Helpers shared by the storage modules: clocks, revision bumps, upserts."""
from __future__ import annotations

import datetime

from sqlalchemy import Connection, Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from stowage.storage.schema import revision


def utcnow() -> datetime.datetime:
    """Naive UTC now, as stored in every timestamp column."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def bump_revision(connection: Connection) -> None:
    """Mark the data changed; call inside every write transaction.

    ``UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1``
    """
    connection.execute(update(revision).where(revision.c.id == 1).values(revision=revision.c.revision + 1))


def insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict]) -> None:
    """Insert ``rows``, silently skipping those that violate a unique key.

    ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so that
    workers starting together can all run the same idempotent sync.
    """
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement = pg_insert(table).values(rows).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(table).values(rows).on_conflict_do_nothing()
    else:  # MySQL / MariaDB
        statement = table.insert().values(rows).prefix_with("IGNORE")
    connection.execute(statement)
