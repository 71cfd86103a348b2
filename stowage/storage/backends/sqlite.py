"""SQLite: the embedded default, one file per service.

Every connection gets WAL (readers never block the writer), foreign keys
and a 30 s busy timeout. Writers take the write lock up front with
``BEGIN IMMEDIATE``, so two writers queue instead of both reading under a
shared lock and then failing to upgrade it; SQLite's writes are serial, so
``FOR UPDATE`` (which SQLAlchemy leaves out here) is never needed. The driver's
own transaction handling is switched off so that these statements are ours.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from stowage.storage.backends.feed import CATALOG_EVENTS, ROW_EVENTS, CatalogUse, roots_using
from stowage.storage.backends.returning import (
    advance_revision_returning,
    insert_counting_new_rows,
    insert_returning_id,
)

# The file cannot be written (read-only, or not the service's to write), the
# disk is full, or the file cannot be read or opened at all, or holds
# something other than a database.
_STORAGE_PROBLEMS = {
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT,
}


def database_file(url: URL) -> str | None:
    """The file a SQLite URL names (``sqlite:///path`` or ``sqlite:///file:path?uri=true``);
    None for an in-memory database and for other databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = url.database
    if url.query.get("uri") == "true" and path.startswith("file:"):
        path = path.removeprefix("file:")
    return path


def absent_database_file(url: URL) -> str | None:
    """The file a SQLite URL names if it does not exist: connecting would create it."""
    path = database_file(url)
    return path if path is not None and not os.path.exists(path) else None


class SQLiteBackend:
    name = "sqlite"

    def create_engine(self, url: URL, **options: Any) -> Engine:
        # A file database needs no pool (opening one is cheap); an in-memory
        # one must keep its single connection.
        engine = create_engine(
            url,
            poolclass=None if url.database in (None, "", ":memory:") else NullPool,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _configure_connection)
        return engine

    def begin_write(self, connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    def begin_consistent_read(self, connection: Connection) -> None:
        # In WAL mode a deferred transaction reads one snapshot from its first read on.
        connection.exec_driver_sql("BEGIN")

    def is_transient(self, error: DBAPIError) -> bool:
        """SQLITE_BUSY: the busy timeout passed while another writer held the lock."""
        code = getattr(error.orig, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or "database is locked" in str(
            error.orig
        )

    def storage_problem(self, error: DBAPIError) -> str | None:
        code = getattr(error.orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _STORAGE_PROBLEMS:
            return str(error.orig)
        return None

    def insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: list[dict]) -> int:
        return insert_counting_new_rows(connection, table, rows, insert)

    def insert_new_row(self, connection: Connection, table: Table, row: dict) -> int | None:
        return insert_returning_id(connection, table, row, insert)

    def advance_revision(self, connection: Connection) -> int | None:
        return advance_revision_returning(connection)

    @contextmanager
    def migration_lock(self, connection: Connection) -> Iterator[None]:
        # BEGIN IMMEDIATE already holds the database's write lock.
        yield

    def table_options(self, connection: Connection) -> dict[str, Any]:
        return {}

    def change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        """One trigger per table and event; DDL is transactional here, so a
        failed migration leaves none behind. A catalog table's triggers are
        dropped first: they replace those of an older migration."""
        statements = []
        for table, stem in provider_row_tables:
            for event_name, rows in ROW_EVENTS:
                inserts = " ".join(
                    f"INSERT INTO stowage_changes (root_provider_id) VALUES ({_root_of(row)});"
                    for row in rows
                )
                statements.append(
                    f"CREATE TRIGGER stowage_change_{stem}_{event_name.lower()} AFTER {event_name} ON {table} "
                    f"FOR EACH ROW BEGIN {inserts} END"
                )
        if provider_row_tables:
            for event_name, rows in ROW_EVENTS:
                inserts = " ".join(
                    f"INSERT INTO stowage_changes (root_provider_id) SELECT {row}.root_provider_id "
                    f"WHERE {row}.root_provider_id IS NOT NULL;"
                    for row in rows
                )
                statements.append(
                    f"CREATE TRIGGER stowage_change_providers_{event_name.lower()} AFTER {event_name} "
                    f"ON resource_providers FOR EACH ROW BEGIN {inserts} END"
                )
        for catalog in dict.fromkeys(use.catalog for use in catalog_uses):
            inserts = " ".join(
                f"INSERT INTO stowage_changes (root_provider_id) {roots_using(use)};"
                for use in catalog_uses
                if use.catalog == catalog
            )
            for event_name in CATALOG_EVENTS:
                name = f"stowage_change_{catalog}_{event_name.lower()}"
                statements.append(f"DROP TRIGGER IF EXISTS {name}")
                statements.append(
                    f"CREATE TRIGGER {name} AFTER {event_name} ON {catalog} FOR EACH ROW BEGIN {inserts} END"
                )
        return statements

    def drop_change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        # Dropping stowage_changes is not enough: the triggers belong to the tables they watch.
        names = [f"stowage_change_{stem}_{e.lower()}" for _table, stem in provider_row_tables for e, _ in ROW_EVENTS]
        if provider_row_tables:
            names += [f"stowage_change_providers_{e.lower()}" for e, _ in ROW_EVENTS]
        names += [
            f"stowage_change_{catalog}_{e.lower()}"
            for catalog in dict.fromkeys(use.catalog for use in catalog_uses)
            for e in CATALOG_EVENTS
        ]
        return [f"DROP TRIGGER IF EXISTS {name}" for name in names]

    def follow_written_ids(self, connection: Connection, table: Table) -> None:
        # The next id follows the largest present by itself.
        return None



def _root_of(row: str) -> str:
    return f"(SELECT root_provider_id FROM resource_providers WHERE id = {row}.resource_provider_id)"


def _configure_connection(dbapi_connection, _record) -> None:
    # isolation_level None: the driver issues no BEGIN of its own, so that
    # begin_write can issue BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
