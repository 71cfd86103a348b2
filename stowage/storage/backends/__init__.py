"""One object per database dialect: everything SQLite, PostgreSQL and MySQL do differently.

The rest of ``storage/`` is portable SQLAlchemy Core, and code above
``storage/`` never asks which database it runs on. ``backend_for`` picks the
object for an engine, a connection or a URL; ``Database`` holds the one of
its engine.

=========================  ===================  ======================  ==========================
concern                    sqlite               postgresql              mysql (MySQL, MariaDB)
=========================  ===================  ======================  ==========================
write transaction          BEGIN IMMEDIATE      READ COMMITTED          READ COMMITTED
consistent read            deferred BEGIN       REPEATABLE READ         REPEATABLE READ snapshot
transient errors           SQLITE_BUSY          40001, 40P01            1213, 1205
insert ignoring dups       ON CONFLICT          ON CONFLICT             plain INSERT, then per row
revision bump, if changed  UPDATE RETURNING     UPDATE RETURNING (CTE)  LAST_INSERT_ID(expr)
this transaction's feed    revision IS NULL     revision IS NULL        revision = -CONNECTION_ID()
migration lock             the write lock       advisory xact lock      GET_LOCK / RELEASE_LOCK
change-feed triggers       per table and event  plpgsql functions       per table and event
CREATE TABLE options       none                 none                    InnoDB, utf8mb4, binary no-pad
=========================  ===================  ======================  ==========================
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import URL, Connection, Engine, Table, make_url
from sqlalchemy.exc import DBAPIError

from stowage.storage.backends.feed import CatalogUse
from stowage.storage.backends.mysql import MySQLBackend
from stowage.storage.backends.postgresql import PostgreSQLBackend
from stowage.storage.backends.sqlite import SQLiteBackend


class Backend(Protocol):
    """What one database dialect does its own way."""

    name: str
    """"sqlite", "postgresql" or "mysql" (MariaDB included)."""

    def create_engine(self, url: URL, **options: Any) -> Engine:
        """An engine for ``url`` with this dialect's connection settings.

        ``options`` are ``create_engine`` keywords (pool sizes,
        ``connect_args``); SQLite, which needs no pool, ignores them.
        """
        ...

    def begin_write(self, connection: Connection) -> None:
        """Start the write transaction on a fresh connection.

        ``Database.write`` ends it with ``connection.commit()`` or
        ``connection.rollback()``.
        """
        ...

    def begin_consistent_read(self, connection: Connection) -> None:
        """Start a read-only transaction whose statements all see one snapshot;
        ``Database.read`` ends it with ``connection.rollback()``."""
        ...

    def is_transient(self, error: DBAPIError) -> bool:
        """True if a fresh run of the same transaction may succeed (a deadlock,
        a serialisation failure, a lock wait that timed out)."""
        ...

    def storage_problem(self, error: DBAPIError) -> str | None:
        """Why the database cannot store anything just now (its file is
        read-only, its disk full), in the database's words; None for any
        other error."""
        ...

    def insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: list[dict]) -> int:
        """Insert ``rows``, skipping those that would violate a unique key;
        returns how many were inserted. Any other error is raised."""
        ...

    def insert_new_row(self, connection: Connection, table: Table, row: dict) -> int | None:
        """Insert ``row`` and return its ``id``, in one statement; None if it
        would violate a unique key (and nothing is inserted)."""
        ...

    def advance_revision(self, connection: Connection) -> int | None:
        """If this transaction's triggers wrote ``stowage_changes`` rows (it
        changed provider data), add one to ``stowage_revision``, stamp those
        rows (and no other transaction's) with the new value, and return it;
        the revision row stays locked until the transaction ends. None, and
        nothing locked, when the transaction changed no tree."""
        ...

    def migration_lock(self, connection: Connection) -> AbstractContextManager[None]:
        """Hold the schema-migration lock of this database while in the block;
        whatever the block wrote is committed before the lock is let go."""
        ...

    def table_options(self, connection: Connection) -> dict[str, Any]:
        """Dialect keywords for every ``CREATE TABLE`` of the migrations."""
        ...

    def change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        """DDL of the triggers that fill ``stowage_changes`` (migrations 0002, 0004).

        ``provider_row_tables`` are (table, trigger name stem) pairs of tables
        whose rows have a ``resource_provider_id``; each row change notes that
        provider's root, and ``resource_providers`` changes (made along with
        them) note the old and new root. An update or delete of a catalog row
        notes the roots of the providers whose rows name it (``catalog_uses``),
        replacing any older trigger of that catalog table. Safe to run again
        after a failure half-way.
        """
        ...

    def drop_change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        """DDL removing what ``change_feed_triggers`` made."""
        ...

    def follow_written_ids(self, connection: Connection, table: Table) -> None:
        """Make the next generated ``id`` of ``table`` follow the largest one
        present, after rows were written with their ids (``db copy``,
        ``import``, ``export``). PostgreSQL's sequences need telling; MySQL's
        AUTO_INCREMENT and SQLite's rowid follow by themselves."""
        ...


def backend_for(engine_or_url: Engine | Connection | URL | str) -> Backend:
    """The backend of an engine, a connection or a SQLAlchemy URL."""
    if isinstance(engine_or_url, Engine | Connection):
        name = engine_or_url.dialect.name
    else:
        name = make_url(engine_or_url).get_backend_name()
    backend = _BACKENDS.get(name)
    if backend is None:
        raise ValueError(f"Unsupported database {name!r}: Stowage runs on SQLite, PostgreSQL and MySQL/MariaDB.")
    return backend


_MYSQL = MySQLBackend()
# SQLAlchemy names its MySQL dialect "mariadb" when the URL says mariadb://.
_BACKENDS: dict[str, Backend] = {
    "sqlite": SQLiteBackend(),
    "postgresql": PostgreSQLBackend(),
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
}
