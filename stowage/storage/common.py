"""Helpers shared by the storage modules: clocks, revision bumps, upserts."""
from __future__ import annotations

import datetime

from sqlalchemy import Connection, Table, delete

from stowage.storage.backends import Backend, backend_for
from stowage.storage.schema import changes

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


def apply_revision_bump(connection: Connection, backend: Backend) -> None:
    """Bump the revision if this transaction changed data; call at commit.

    The backend stamps this transaction's change-feed rows (written by
    triggers, still without a revision) with the new revision in the same
    step (one statement on PostgreSQL); now and then rows too old for any
    worker to replay are pruned::

        UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1
            RETURNING revision                    -- backend.advance_revision
        UPDATE stowage_changes SET revision = :new
         WHERE <this transaction's rows>          -- the same
        DELETE FROM stowage_changes
         WHERE revision BETWEEN 1 AND :new - :kept  -- every 1000th

    The revision row stays locked until commit, so revisions are stamped
    in commit order and other writers' uncommitted rows are never seen.
    (The prune's lower bound keeps it off rows not stamped yet, whatever
    a backend marks them with.)
    """
    if connection.info.pop(CHANGED_MARK, False):
        new_revision = backend.advance_revision(connection)
        if new_revision % 1000 == 0:
            connection.execute(
                delete(changes).where(changes.c.revision.between(1, new_revision - CHANGES_KEPT))
            )


def insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict]) -> int:
    """Insert ``rows``, silently skipping those that violate a unique key.

    So that workers starting together can all run the same idempotent sync,
    and concurrent creators of one name both succeed. Returns how many rows
    were actually inserted; any other error is raised.
    """
    return backend_for(connection).insert_ignoring_duplicates(connection, table, rows)
