"""MySQL and MariaDB (InnoDB, PyMySQL), Galera clusters included.

Isolation: **READ COMMITTED** for writes, as on PostgreSQL, not InnoDB's
default REPEATABLE READ. Three things decide it:

- The write paths read what a concurrent writer committed after their own
  first read: an insert of a trait, aggregate, project or user that a unique
  key turned away is followed by a read of the winner's row, and a resource
  class id is picked as ``MAX(id) + 1`` and retried on a clash. Under
  REPEATABLE READ those reads come from the transaction's first snapshot,
  so the winner's row is never found and the retry loops never see the
  higher id.
- REPEATABLE READ takes next-key (gap) locks for every locking read and
  every ``INSERT ... SELECT`` in the change-feed triggers, so concurrent
  writers of unrelated providers block each other and deadlock where
  PostgreSQL would not. READ COMMITTED keeps only record locks (InnoDB still
  gap-locks for unique and foreign-key checks), and the triggers' reads of
  ``resource_providers`` become lock-free consistent reads.
- Correctness never relied on the isolation level: generation checks and
  ``SELECT ... FOR UPDATE`` on provider rows serialise what must be, on all
  three backends alike. On Galera, a transaction that loses certification
  at commit fails with 1213, which is retried like a deadlock.

With binary logging on, READ COMMITTED needs ``binlog_format`` ROW or MIXED
(MariaDB's default); Galera requires ROW anyway.

Consistent reads (the read model's loads) use a REPEATABLE READ snapshot
taken at ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY``.

Every connection also gets ``charset=utf8mb4`` (4-byte characters such as
emoji in provider names), and ``sql_mode`` TRADITIONAL, so that bad data
fails as it does elsewhere instead of being truncated, plus
NO_AUTO_VALUE_ON_ZERO, so that the standard resource class VCPU keeps the
id 0 that os-resource-classes gives it.

A server that stops answering is given up on, so that a request is a 503
in bounded time rather than a hang. PyMySQL's ``connect_timeout`` bounds
only the TCP connect, and it reads the server's greeting and the rest of
the handshake under ``read_timeout``; here the handshake's reads are
bounded by ``connect_timeout`` too (a hung or stopped server accepts
connections and never greets), and every later read by ``read_timeout``,
every write by ``write_timeout``. Each may be set in the URL's query, in
whole seconds (``?connect_timeout=5&read_timeout=30``). A timed-out read
closes the connection and is error 2013, a disconnect to SQLAlchemy, so
the pool replaces it.

Tables are created in InnoDB with utf8mb4 and a binary, no-pad collation,
so that names, uuids and external ids compare exactly as on the other
backends: 'CUSTOM_A' and 'CUSTOM_a' are two traits, and 'host' and 'host '
are two provider names. Cascading foreign-key deletes would not fire the
change-feed triggers in MySQL; no write path relies on them (children are
deleted first, explicitly). DATETIME keeps whole seconds, which is all
Stowage writes (``common.utcnow``); MySQL's DDL commits as it runs, which the
migrations allow for (``storage.ddl``); identifiers may have 64 characters,
and the migrations' longest (index and trigger names) have 44.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    URL,
    BigInteger,
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    exists,
    func,
    insert,
    literal_column,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from stowage.storage.backends.feed import CATALOG_EVENTS, ROW_EVENTS, CatalogUse, roots_using
from stowage.storage.backends.pool import ping_after_idle, url_seconds
from stowage.storage.schema import changes, revision

SQL_MODE = "TRADITIONAL,NO_AUTO_VALUE_ON_ZERO"
# ER_LOCK_DEADLOCK (also Galera's certification failure), ER_LOCK_WAIT_TIMEOUT
# and ER_AUTOINC_READ_FAILED, which is how InnoDB reports a deadlock on a
# table's AUTO-INC lock (the change feed's INSERT ... SELECT takes it):
# the transaction is rolled back as for 1213.
# ER_SP_DOES_NOT_EXIST too: a deadlock inside a savepoint
# (``begin_nested``) rolls back the whole transaction, savepoints with it,
# and the ROLLBACK TO SAVEPOINT that follows is what the caller sees (met
# by a provider delete in tests/served/test_contention.py).
_TRANSIENT_ERRORS = {1213, 1205, 1467, 1305}
# ER_DUP_ENTRY and ER_DUP_ENTRY_WITH_KEY_NAME.
_DUPLICATE_KEY_ERRORS = {1062, 1586}
# Exact (binary) and no-pad first: MariaDB's, then MySQL 8's; utf8mb4_bin
# (which ignores trailing spaces) only on servers that have neither.
_EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")
# What this transaction's triggers write as revision until it is stamped: a
# value no committed row has and no concurrent transaction shares, so the
# stamping UPDATE neither sees nor waits for other writers' rows (it would,
# on InnoDB, wait for their locks with "revision IS NULL").
_UNSTAMPED = "-CONNECTION_ID()"
_THIS_TRANSACTIONS = changes.c.revision == literal_column(_UNSTAMPED, BigInteger)
_STAMP = update(changes).where(_THIS_TRANSACTIONS).values(revision=bindparam("new"))
_ADVANCE = (
    update(revision)
    .where(revision.c.id == 1, exists().where(_THIS_TRANSACTIONS))
    .values(revision=func.last_insert_id(revision.c.revision + 1))
)
# GET_LOCK names are server-wide (at most 64 characters); one per database.
_MIGRATION_LOCK_NAME = "LEFT(CONCAT('stowage.migrations.', DATABASE()), 64)"
MIGRATION_LOCK_SECONDS = 600
# Connection character sets an existing placement.conf may name; utf8mb4 is a superset.
_NARROW_UTF8 = {"utf8", "utf8mb3"}
# Seconds, unless the URL sets them. The TCP connect and each read of the
# handshake: PyMySQL's default, and PostgreSQL's here.
CONNECT_TIMEOUT_SECONDS = 10
# Each read of an answer: past InnoDB's innodb_lock_wait_timeout (50 s by
# default), so that a long lock wait ends in the server's own 1205, which is
# retried, and five times the slowest statement measured (a read model's
# full load at 100,000 roots, 12 s in all).
READ_TIMEOUT_SECONDS = 60
# Each write of a statement (a server that stopped reading: buffers full).
WRITE_TIMEOUT_SECONDS = 60
_TIMEOUTS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
    "write_timeout": WRITE_TIMEOUT_SECONDS,
}


class MySQLBackend:
    name = "mysql"

    def create_engine(self, url: URL, **options: Any) -> Engine:
        """Raises ValueError if a timeout in the URL is not a positive number of seconds."""
        charset = url.query.get("charset")
        if charset is None or charset in _NARROW_UTF8:
            url = url.update_query_dict({"charset": "utf8mb4"})
        connect_args = {
            "init_command": f"SET SESSION sql_mode = '{SQL_MODE}'",
            **{name: url_seconds(url, name, default) for name, default in _TIMEOUTS.items()},
            **options.pop("connect_args", {}),
        }
        engine = create_engine(
            url,
            isolation_level="READ COMMITTED",
            connect_args=connect_args,
            **options,
        )
        event.listen(engine, "do_connect", _handshake_within_connect_timeout)
        event.listen(engine, "connect", _causal_reads_on_galera)
        return ping_after_idle(engine)

    def begin_write(self, connection: Connection) -> None:
        connection.begin()

    def begin_consistent_read(self, connection: Connection) -> None:
        # SET TRANSACTION (not SESSION) applies to the next transaction only,
        # so nothing needs restoring afterwards.
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def is_transient(self, error: DBAPIError) -> bool:
        """1213 (deadlock, or a Galera certification conflict), 1467 (a deadlock
        on an AUTO-INC lock), 1205 (lock wait timeout, which rolls back only
        the statement: we roll back the rest) and 1305 (the savepoint such a
        rollback took with it)."""
        return _error_code(error) in _TRANSIENT_ERRORS

    def storage_problem(self, error: DBAPIError) -> str | None:
        # A full disk or a read-only server is the server's to report.
        return None

    def insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: list[dict]) -> int:
        """A plain multi-row ``INSERT``; on a duplicate key, one row at a time.

        Neither of MySQL's own forms fits: ``INSERT IGNORE`` also turns
        foreign-key, NOT NULL and truncation errors into warnings, and
        ``ON DUPLICATE KEY UPDATE id = id`` counts a duplicate as a row
        affected (SQLAlchemy connects with CLIENT_FOUND_ROWS, which the UPDATE
        generation checks need), so inserted rows cannot be counted. A
        duplicate key rolls back only the failing statement in InnoDB, its
        triggers' rows included, and the transaction goes on. The first
        statement succeeds whenever the callers' existence checks were not
        raced, which is nearly always.
        """
        if not rows:
            return 0
        try:
            return connection.execute(insert(table).values(rows)).rowcount
        except IntegrityError as error:
            if _error_code(error) not in _DUPLICATE_KEY_ERRORS:
                raise
        if len(rows) == 1:
            return 0
        inserted = 0
        for row in rows:
            try:
                connection.execute(insert(table).values(row))
            except IntegrityError as error:
                if _error_code(error) not in _DUPLICATE_KEY_ERRORS:
                    raise
            else:
                inserted += 1
        return inserted

    def insert_new_row(self, connection: Connection, table: Table, row: dict) -> int | None:
        """A plain ``INSERT``, its id from the answer's ``LAST_INSERT_ID``; a
        duplicate key rolls back only this statement (as above)."""
        try:
            made = connection.execute(insert(table).values(row)).inserted_primary_key
        except IntegrityError as error:
            if _error_code(error) not in _DUPLICATE_KEY_ERRORS:
                raise
            return None
        return None if made is None else made[0]

    def advance_revision(self, connection: Connection) -> int | None:
        """``UPDATE stowage_revision SET revision = LAST_INSERT_ID(revision + 1) WHERE id = 1
        AND EXISTS (SELECT 1 FROM stowage_changes WHERE revision = -CONNECTION_ID())``

        MySQL has no ``UPDATE ... RETURNING``; ``LAST_INSERT_ID(expr)`` hands
        the new value back with the UPDATE's own answer (MySQL's documented
        way of emulating a sequence), saving a SELECT. Then
        ``UPDATE stowage_changes SET revision = :new WHERE revision = -CONNECTION_ID()``.
        """
        result = connection.execute(_ADVANCE)
        if not result.rowcount:
            return None
        new_revision = result.lastrowid
        assert new_revision, "stowage_revision has no row 1"
        connection.execute(_STAMP, {"new": new_revision})
        return int(new_revision)

    @contextmanager
    def migration_lock(self, connection: Connection) -> Iterator[None]:
        """``GET_LOCK`` / ``RELEASE_LOCK``: a lock of the session, not of the
        transaction, since MySQL's DDL commits implicitly. The block's work
        (the Alembic version stamp) is committed before the lock is let go,
        so the next process to take it sees the schema current.

        Without ``read_timeout`` until then: the lock is waited for up to
        ``MIGRATION_LOCK_SECONDS``, and a migration's DDL may rebuild big tables.
        """
        with _without_read_timeout(connection):
            got = connection.execute(
                text(f"SELECT GET_LOCK({_MIGRATION_LOCK_NAME}, :seconds)"), {"seconds": MIGRATION_LOCK_SECONDS}
            ).scalar()
            if got != 1:
                raise RuntimeError(
                    f"Another process held Stowage's migration lock for {MIGRATION_LOCK_SECONDS} s; not migrating."
                )
            try:
                yield
                connection.commit()
            finally:
                connection.execute(text(f"SELECT RELEASE_LOCK({_MIGRATION_LOCK_NAME})"))

    def table_options(self, connection: Connection) -> dict[str, Any]:
        """InnoDB, utf8mb4 and the most exact binary collation the server has."""
        prefix = connection.dialect.name  # "mysql", or "mariadb" for mariadb:// URLs
        return {
            f"{prefix}_engine": "InnoDB",
            f"{prefix}_charset": "utf8mb4",
            f"{prefix}_collate": exact_collation(connection),
        }

    def change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        """One trigger per table and event (MySQL allows no other kind).

        MySQL's DDL is not transactional, so each trigger is dropped first if
        a failed run left it behind (or an older migration made it).
        """
        triggers: list[tuple[str, str, str, str]] = []  # (name, event, table, body)
        for table, stem in provider_row_tables:
            for event_name, rows in ROW_EVENTS:
                body = " ".join(
                    "INSERT INTO stowage_changes (revision, root_provider_id) "
                    f"SELECT {_UNSTAMPED}, root_provider_id FROM resource_providers "
                    f"WHERE id = {row}.resource_provider_id;"
                    for row in rows
                )
                triggers.append((f"stowage_change_{stem}_{event_name.lower()}", event_name, table, body))
        if provider_row_tables:
            for event_name, rows in ROW_EVENTS:
                body = " ".join(
                    f"IF {row}.root_provider_id IS NOT NULL THEN "
                    "INSERT INTO stowage_changes (revision, root_provider_id) "
                    f"VALUES ({_UNSTAMPED}, {row}.root_provider_id); END IF;"
                    for row in rows
                )
                triggers.append(
                    (f"stowage_change_providers_{event_name.lower()}", event_name, "resource_providers", body)
                )
        for catalog in dict.fromkeys(use.catalog for use in catalog_uses):
            body = " ".join(
                "INSERT INTO stowage_changes (revision, root_provider_id) "
                f"SELECT {_UNSTAMPED}, roots.root_provider_id FROM ({roots_using(use)}) roots;"
                for use in catalog_uses
                if use.catalog == catalog
            )
            for event_name in CATALOG_EVENTS:
                triggers.append((f"stowage_change_{catalog}_{event_name.lower()}", event_name, catalog, body))
        statements = []
        for name, event_name, table, body in triggers:
            statements.append(f"DROP TRIGGER IF EXISTS {name}")
            statements.append(f"CREATE TRIGGER {name} AFTER {event_name} ON {table} FOR EACH ROW BEGIN {body} END")
        return statements

    def drop_change_feed_triggers(
        self, provider_row_tables: Sequence[tuple[str, str]], catalog_uses: Sequence[CatalogUse]
    ) -> list[str]:
        return [
            statement
            for statement in self.change_feed_triggers(provider_row_tables, catalog_uses)
            if statement.startswith("DROP ")
        ]

    def follow_written_ids(self, connection: Connection, table: Table) -> None:
        # The next id follows the largest present by itself.
        return None



def _handshake_within_connect_timeout(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
    """A PyMySQL connection that reads the handshake under ``connect_timeout``
    and answers under ``read_timeout`` (None for any other driver: SQLAlchemy
    connects as usual)."""
    if dialect.driver != "pymysql":
        return None
    connection = dialect.loaded_dbapi.connect(*cargs, **{**cparams, "read_timeout": cparams["connect_timeout"]})
    # PyMySQL has no public way to change it once connected, and applies
    # this attribute from its next read on (as it has since 0.7).
    connection._read_timeout = cparams["read_timeout"]
    return connection


@contextmanager
def _without_read_timeout(connection: Connection) -> Iterator[None]:
    driver = connection.connection.driver_connection
    if driver is None or not hasattr(driver, "_read_timeout"):
        yield
        return
    read_timeout, driver._read_timeout = driver._read_timeout, None
    try:
        yield
    finally:
        driver._read_timeout = read_timeout


def _causal_reads_on_galera(dbapi_connection: Any, _record: Any) -> None:
    """On a Galera node, make every read wait until the node has applied all
    that the cluster committed before it (``wsrep_sync_wait = 1``): a request
    on one node then sees a write another node just acknowledged. Plain
    MariaDB and MySQL servers are left alone (they have no ``wsrep_on``, or
    it is OFF)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is not None and str(row[1]).upper() == "ON":
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
    finally:
        cursor.close()


def exact_collation(connection: Connection) -> str:
    """The first of ``_EXACT_COLLATIONS`` the server knows.

    ``SELECT collation_name FROM information_schema.collations WHERE character_set_name = 'utf8mb4'``
    """
    known = set(
        connection.execute(
            text("SELECT collation_name FROM information_schema.collations WHERE character_set_name = 'utf8mb4'")
        ).scalars()
    )
    for collation in _EXACT_COLLATIONS:
        if collation in known:
            return collation
    raise RuntimeError("The server has no binary utf8mb4 collation.")


def _error_code(error: DBAPIError) -> int | None:
    """The server's error number: the first argument of every MySQL driver's errors."""
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
