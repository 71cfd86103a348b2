"""Engines, transactions and schema upgrades for SQLite and PostgreSQL.

Backend differences live here: SQLite gets WAL, foreign keys and
``BEGIN IMMEDIATE`` for writes (so two writers queue instead of failing to
upgrade a shared lock); PostgreSQL runs at READ COMMITTED and relies on
generation checks and row locks for correctness.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from oslo_config import cfg
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from stowage import errors
from stowage.conf import database_url
from stowage.storage.common import CHANGED_MARK, apply_revision_bump

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
# Arbitrary constant naming Stowage's schema-migration advisory lock.
_MIGRATION_LOCK = 0x5709A6E


class Database:
    """One engine per process; hands out read and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, **pool_options) -> Database:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                poolclass=NullPool if ":memory:" not in url else None,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, **pool_options)
        return cls(engine)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Database:
        db_conf = conf.placement_database
        url = database_url(conf)
        if url.startswith("sqlite"):
            return cls.from_url(url)
        return cls.from_url(
            url,
            pool_size=db_conf.max_pool_size,
            max_overflow=db_conf.max_overflow,
            pool_timeout=db_conf.pool_timeout,
            pool_recycle=db_conf.connection_recycle_time,
        )

    @contextmanager
    def read(self, consistent: bool = False) -> Iterator[Connection]:
        """A connection for reads; nothing it does is committed.

        ``consistent=True`` makes every statement see the same snapshot
        (REPEATABLE READ on PostgreSQL, a deferred transaction on SQLite's
        WAL), for readers that assemble one view from several queries.
        """
        with self.engine.connect() as connection:
            if not consistent:
                yield connection
            elif self.is_sqlite:
                connection.exec_driver_sql("BEGIN")
                try:
                    yield connection
                finally:
                    connection.exec_driver_sql("ROLLBACK")
            else:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin() as transaction:
                    yield connection
                    transaction.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction committed on success and rolled back on any error.

        A deadlock or serialization failure reported by the database becomes
        ``errors.TransactionAborted``: the whole transaction was rolled back
        and the caller may run it again (the HTTP layer does).
        """
        try:
            with self.engine.connect() as connection:
                connection.info.pop(CHANGED_MARK, None)
                if self.is_sqlite:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield connection
                        apply_revision_bump(connection)
                    except BaseException:
                        connection.exec_driver_sql("ROLLBACK")
                        raise
                    else:
                        connection.exec_driver_sql("COMMIT")
                else:
                    with connection.begin():
                        yield connection
                        apply_revision_bump(connection)
        except DBAPIError as error:
            if _is_transient(error):
                raise errors.TransactionAborted(
                    "Another request changed the same data at the same time; please retry."
                ) from error
            raise

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent).

        Serialised across processes: a PostgreSQL advisory lock (or SQLite's
        write lock) is held for the whole migration, so workers starting
        together wait for the first one instead of colliding.
        """
        config = Config()
        config.set_main_option("script_location", MIGRATIONS_DIR)
        with self.write() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


# PostgreSQL's deadlock_detected and serialization_failure.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}


def _is_transient(error: DBAPIError) -> bool:
    """True for failures that a fresh run of the same transaction may not hit."""
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if sqlstate in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # The driver's own transaction handling is switched off so that
        # Database.write can issue BEGIN IMMEDIATE itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
