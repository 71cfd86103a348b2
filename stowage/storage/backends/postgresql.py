"""PostgreSQL (psycopg 3): READ COMMITTED writes, REPEATABLE READ snapshots.

Writes run at READ COMMITTED and rely on generation checks and row locks
for correctness: every statement sees what committed before it, which the
read-after-ignored-insert paths (traits, aggregates, projects) depend on.

A server that stops answering is given up on, so that a request is a 503
in bounded time rather than a hang: a new connection after
``connect_timeout`` (libpq's, for the whole connection; psycopg waits at
least 2 s), a statement after ``read_timeout`` (Stowage's own: libpq has
no such limit, and a server's ``statement_timeout`` is no help against a
server that is stopped or cut off). Either may be set in the URL's query
(``?connect_timeout=5&read_timeout=30``); the connection that timed out is
closed, which SQLAlchemy takes as a disconnect, so the pool replaces it. TCP
keepalives find a server host that vanished while its connections sat idle
in the pool within a minute, rather than the two hours of Linux's
defaults; the ping after idle (``backends.pool``) then fails at once.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.errors import _WaitTimeout
from sqlalchemy import URL, Connection, Engine, Table, create_engine, event, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from stowage.storage.backends.feed import CATALOG_EVENTS, CatalogUse, roots_using
from stowage.storage.backends.pool import ping_after_idle, url_seconds
from stowage.storage.backends.returning import insert_counting_new_rows, insert_returning_id
from stowage.storage.schema import changes, revision

# Arbitrary constant naming Stowage's schema-migration advisory lock.
MIGRATION_LOCK_KEY = 0x5709A6E
# deadlock_detected and serialization_failure.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}
# How long a new connection may take, unless the URL sets connect_timeout
# (libpq waits for ever for a server that accepts and never answers).
CONNECT_TIMEOUT_SECONDS = 10
# How long the server may take to answer one statement, unless the URL sets
# read_timeout: five times the slowest statement measured (a read model's
# full load at 100,000 roots, 12 s in all), and as on MySQL.
READ_TIMEOUT_SECONDS = 60
# Idle seconds before the first probe, seconds between probes, probes
# unanswered before the connection is dead: a vanished host within 60 s.
_KEEPALIVES = {"keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_RV = TypeVar("_RV")


class PostgreSQLBackend:
    name = "postgresql"

    def create_engine(self, url: URL, **options: Any) -> Engine:
        """Raises ValueError if the URL's ``read_timeout`` is not a positive
        number of seconds."""
        read_timeout = url_seconds(url, "read_timeout", READ_TIMEOUT_SECONDS)
        # Stowage's parameter, not libpq's (which refuses any it does not know).
        url = url.difference_update_query(["read_timeout"])
        defaults = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **_KEEPALIVES}
        options["connect_args"] = {
            **{name: value for name, value in defaults.items() if name not in url.query},
            **options.get("connect_args", {}),
        }
        engine = create_engine(url, **options)

        @event.listens_for(engine, "do_connect")
        def _answering_within_read_timeout(dialect, record, cargs, cparams) -> AnsweringConnection:
            connection = AnsweringConnection.connect(*cargs, **cparams)
            connection.read_timeout = read_timeout
            return connection

        return ping_after_idle(engine)

    def begin_write(self, connection: Connection) -> None:
        connection.begin()

    def begin_consistent_read(self, connection: Connection) -> None:
        # SQLAlchemy restores the engine's level when the connection goes back to the pool.
        connection.execution_options(isolation_level="REPEATABLE READ")
        connection.begin()

    def is_transient(self, error: DBAPIError) -> bool:
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        return sqlstate in _TRANSIENT_SQLSTATES

    def storage_problem(self, error: DBAPIError) -> str | None:
        # A full disk or a read-only server is the server's to report.
        return None

    def insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: list[dict]) -> int:
        return insert_counting_new_rows(connection, table, rows, insert)

    def insert_new_row(self, connection: Connection, table: Table, row: dict) -> int | None:
        return insert_returning_id(connection, table, row, insert)

    def advance_revision(self, connection: Connection) -> int | None:
        """One statement (a write runs it at every commit)::

            WITH advanced AS (UPDATE stowage_revision SET revision = revision + 1
                               WHERE id = 1 AND EXISTS (SELECT 1 FROM stowage_changes
                                                         WHERE revision IS NULL)
                               RETURNING revision),
                 stamped AS (UPDATE stowage_changes SET revision = (SELECT revision FROM advanced)
                               WHERE revision IS NULL)
            SELECT revision FROM advanced

        Other writers' unstamped rows are uncommitted, so invisible to it.
        """
        return connection.execute(_ADVANCE_AND_STAMP).scalar_one_or_none()

    @contextmanager
    def migration_lock(self, connection: Connection) -> Iterator[None]:
        """``SELECT pg_advisory_xact_lock(:key)``: held until the migration commits.

        Without ``read_timeout`` until then: the lock is waited for as long as
        another process migrates, and a migration's DDL may rewrite big tables.
        """
        with _without_read_timeout(connection):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            yield

    def table_options(self, connection: Connection) -> dict[str, Any]:
        return {}

    def change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        """plpgsql functions, one trigger per table for all its events.

        DDL is transactional here, so a failed migration leaves none behind.
        A catalog table's trigger and function replace those of an older
        migration (which noted "every tree", ``stowage_note_catalog``).
        """
        statements = []
        if provider_row_tables:
            statements += [_NOTE_PROVIDER_ROW, _NOTE_PROVIDER]
        for table, stem in provider_row_tables:
            statements.append(
                f"CREATE TRIGGER stowage_change_{stem} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION stowage_note_provider_row()"
            )
        if provider_row_tables:
            statements.append(
                "CREATE TRIGGER stowage_change_providers AFTER INSERT OR UPDATE OR DELETE "
                "ON resource_providers FOR EACH ROW EXECUTE FUNCTION stowage_note_provider()"
            )
        catalogs = list(dict.fromkeys(use.catalog for use in catalog_uses))
        statements += [f"DROP TRIGGER IF EXISTS stowage_change_{catalog} ON {catalog}" for catalog in catalogs]
        if catalogs:
            statements.append("DROP FUNCTION IF EXISTS stowage_note_catalog()")
        for catalog in catalogs:
            inserts = " ".join(
                f"INSERT INTO stowage_changes (root_provider_id) {roots_using(use)};"
                for use in catalog_uses
                if use.catalog == catalog
            )
            statements.append(
                f"CREATE OR REPLACE FUNCTION stowage_note_{catalog}() RETURNS trigger AS $$ "
                f"BEGIN {inserts} RETURN NULL; END $$ LANGUAGE plpgsql"
            )
            events = " OR ".join(CATALOG_EVENTS)
            statements.append(
                f"CREATE TRIGGER stowage_change_{catalog} AFTER {events} ON {catalog} "
                f"FOR EACH ROW EXECUTE FUNCTION stowage_note_{catalog}()"
            )
        return statements

    def drop_change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        statements = [f"DROP TRIGGER IF EXISTS stowage_change_{stem} ON {table}" for table, stem in provider_row_tables]
        functions = []
        if provider_row_tables:
            statements.append("DROP TRIGGER IF EXISTS stowage_change_providers ON resource_providers")
            functions = ["stowage_note_provider_row", "stowage_note_provider"]
        for catalog in dict.fromkeys(use.catalog for use in catalog_uses):
            statements.append(f"DROP TRIGGER IF EXISTS stowage_change_{catalog} ON {catalog}")
            functions.append(f"stowage_note_{catalog}")
        return statements + [f"DROP FUNCTION IF EXISTS {function}()" for function in functions]

    def follow_written_ids(self, connection: Connection, table: Table) -> None:
        """::

        SELECT setval(pg_get_serial_sequence('<table>', 'id'),
                      COALESCE((SELECT MAX(id) FROM <table>), 0) + 1, false)
        """
        if "id" not in table.c:
            return
        highest = select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, "id")
        connection.execute(select(func.setval(sequence, highest, False)))


class AnsweringConnection(psycopg.Connection):
    """A psycopg connection that gives up on a server silent for
    ``read_timeout`` seconds (None: waits for ever, as psycopg does).

    Every round trip (a statement, a commit, a ping) goes through ``wait``;
    on the timeout the connection is closed, since the server may answer
    later what it was asked, and the error is a plain ``OperationalError``
    on a closed connection, which SQLAlchemy takes as a disconnect.
    """

    read_timeout: float | None = None

    def wait(self, gen: PQGen[_RV], interval: float = 0.1, timeout: float | None = None) -> _RV:
        # 0.1 s: psycopg's own interval, how often a wait checks for Ctrl-C.
        if timeout is not None or self.read_timeout is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.read_timeout)
        except _WaitTimeout:
            # psycopg's internal timeout error, which it asks callers to convert.
            self.close()
            raise psycopg.OperationalError(
                f"the server did not answer within {self.read_timeout:g} s (read_timeout)"
            ) from None


@contextmanager
def _without_read_timeout(connection: Connection) -> Iterator[None]:
    driver = connection.connection.driver_connection
    if not isinstance(driver, AnsweringConnection):
        yield
        return
    read_timeout, driver.read_timeout = driver.read_timeout, None
    try:
        yield
    finally:
        driver.read_timeout = read_timeout


_NOTE_PROVIDER_ROW = """
        CREATE FUNCTION stowage_note_provider_row() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO stowage_changes (root_provider_id)
                SELECT root_provider_id FROM resource_providers WHERE id = NEW.resource_provider_id;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                INSERT INTO stowage_changes (root_provider_id)
                SELECT root_provider_id FROM resource_providers WHERE id = OLD.resource_provider_id;
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """

_NOTE_PROVIDER = """
        CREATE FUNCTION stowage_note_provider() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.root_provider_id IS NOT NULL THEN
                INSERT INTO stowage_changes (root_provider_id) VALUES (NEW.root_provider_id);
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.root_provider_id IS NOT NULL THEN
                INSERT INTO stowage_changes (root_provider_id) VALUES (OLD.root_provider_id);
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """


def _advance_and_stamp():
    pending = exists().where(changes.c.revision.is_(None))
    advanced = (
        update(revision)
        .where(revision.c.id == 1, pending)
        .values(revision=revision.c.revision + 1)
        .returning(revision.c.revision)
        .cte("advanced")
    )
    stamped = (
        update(changes)
        .where(changes.c.revision.is_(None))
        .values(revision=select(advanced.c.revision).scalar_subquery())
        .cte("stamped")
    )
    return select(advanced.c.revision).add_cte(stamped)


_ADVANCE_AND_STAMP = _advance_and_stamp()
