"""Helpers shared by the storage modules: clocks, revision bumps, upserts."""
from __future__ import annotations

import datetime

from sqlalchemy import Connection, Table, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from stowage.storage.schema import changes, revision

# Revisions of change-feed rows kept; a read model further behind reloads.
CHANGES_KEPT = 10_000


def utcnow() -> datetime.datetime:
    """Naive UTC now, as stored in every timestamp column."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


CHANGED_MARK = "stowage.changed"


def bump_revision(connection: Connection) -> None:
    """Mark the data changed; call inside every write transaction.

    The counter itself is bumped once, just before commit, by
    ``Database.write`` (see ``apply_revision_bump``): every transaction then
    takes the single revision row's lock last, so it can never hold that lock
    while waiting for a provider row another writer holds (a deadlock).
    """
    connection.info[CHANGED_MARK] = True


def apply_revision_bump(connection: Connection) -> None:
    """Bump the revision if this transaction changed data; call at commit.

    Then stamp this transaction's change-feed rows (written by triggers,
    still without a revision) with the new revision, and now and then
    prune rows too old for any worker to replay::

        UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1
            RETURNING revision
        UPDATE stowage_changes SET revision = :new WHERE revision IS NULL
        DELETE FROM stowage_changes WHERE revision <= :new - :kept  -- every 1000th

    The revision row stays locked until commit, so revisions are stamped
    in commit order and other writers' uncommitted rows are never seen.
    """
    if connection.info.pop(CHANGED_MARK, False):
        new_revision = connection.execute(
            update(revision)
            .where(revision.c.id == 1)
            .values(revision=revision.c.revision + 1)
            .returning(revision.c.revision)
        ).scalar_one()
        connection.execute(
            update(changes).where(changes.c.revision.is_(None)).values(revision=new_revision)
        )
        if new_revision % 1000 == 0:
            connection.execute(
                delete(changes).where(changes.c.revision <= new_revision - CHANGES_KEPT)
            )


def insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict]) -> int:
    """Insert ``rows``, silently skipping those that violate a unique key.

    ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so that
    workers starting together can all run the same idempotent sync.
    Returns how many rows were actually inserted.
    """
    if not rows:
        return 0
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # Counted from RETURNING: psycopg reports no rowcount for these.
        first_column = next(iter(table.columns))
        statement = insert(table).values(rows).on_conflict_do_nothing().returning(first_column)
        return len(connection.execute(statement).all())
    # MySQL / MariaDB
    return connection.execute(table.insert().values(rows).prefix_with("IGNORE")).rowcount
