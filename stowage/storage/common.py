"""Helpers shared by the storage modules: clocks, revision bumps, upserts."""
from __future__ import annotations

import datetime

from sqlalchemy import Connection, Table, delete, func, insert, select

from stowage.storage.backends import Backend, backend_for
from stowage.storage.schema import changes, tree_revisions

# Revisions of change-feed rows kept; a read model further behind asks
# stowage_tree_revisions which trees changed.
CHANGES_KEPT = 10_000


def utcnow() -> datetime.datetime:
    """Naive UTC now, as stored in every timestamp column."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


def apply_revision_bump(connection: Connection, backend: Backend) -> None:
    """Bump the revision if this transaction changed any tree; called by
    ``Database.write`` just before every commit.

    Whether it did is what its triggers wrote: the change-feed rows of its
    own, not yet stamped. So no write path can forget to bump, and writes
    that changed no tree (consumers' projects, a catalog insert) take no
    revision. The backend stamps those rows with the new revision in the
    same step (one statement on PostgreSQL); every 1000th revision, rows
    too old for the feed to keep are folded into ``stowage_tree_revisions``
    and pruned::

        UPDATE stowage_revision SET revision = revision + 1 WHERE id = 1
           AND EXISTS (<this transaction's unstamped rows>)
            RETURNING revision                    -- backend.advance_revision
        UPDATE stowage_changes SET revision = :new
         WHERE <this transaction's rows>          -- the same
        -- every 1000th: fold_pruned_changes, then
        DELETE FROM stowage_changes WHERE revision BETWEEN 1 AND :new - :kept

    Taken last, the revision row is never held while waiting for a provider
    row another writer holds (a deadlock); it stays locked until commit, so
    revisions are stamped in commit order and other writers' uncommitted
    rows are never seen. (The prune's lower bound keeps it off rows not
    stamped yet, whatever a backend marks them with.)
    """
    new_revision = backend.advance_revision(connection)
    if new_revision is not None and new_revision % 1000 == 0:
        upto = new_revision - CHANGES_KEPT
        fold_pruned_changes(connection, upto)
        connection.execute(delete(changes).where(changes.c.revision.between(1, upto)))


def fold_pruned_changes(connection: Connection, upto: int) -> None:
    """Keep what the feed's rows of revisions up to ``upto`` say, per tree,
    in ``stowage_tree_revisions`` (the last revision that changed each tree;
    root 0, every tree, for the feed's old NULL rows)::

        DELETE FROM stowage_tree_revisions WHERE root_provider_id IN
               (SELECT COALESCE(root_provider_id, 0) FROM stowage_changes
                 WHERE revision BETWEEN 1 AND :upto)
        INSERT INTO stowage_tree_revisions (root_provider_id, revision)
        SELECT COALESCE(root_provider_id, 0), MAX(revision) FROM stowage_changes
         WHERE revision BETWEEN 1 AND :upto GROUP BY 1

    A row deleted here is older than the one that replaces it: the earlier
    folds took only revisions before these.
    """
    root = func.coalesce(changes.c.root_provider_id, 0)
    pruned = changes.c.revision.between(1, upto)
    connection.execute(
        delete(tree_revisions).where(tree_revisions.c.root_provider_id.in_(select(root).where(pruned)))
    )
    connection.execute(
        insert(tree_revisions).from_select(
            ["root_provider_id", "revision"],
            select(root, func.max(changes.c.revision)).where(pruned).group_by(root),
        )
    )


def insert_new_row(connection: Connection, table: Table, row: dict) -> int | None:
    """Insert ``row`` and return its id, in one statement; None (nothing
    inserted) if a concurrent writer made the same unique key first."""
    return backend_for(connection).insert_new_row(connection, table, row)


def insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict]) -> int:
    """Insert ``rows``, silently skipping those that violate a unique key.

    So that workers starting together can all run the same idempotent sync,
    and concurrent creators of one name both succeed. Returns how many rows
    were actually inserted; any other error is raised.
    """
    return backend_for(connection).insert_ignoring_duplicates(connection, table, rows)
