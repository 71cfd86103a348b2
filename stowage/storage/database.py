"""Engines, transactions and schema upgrades, on any backend.

What each database does its own way (transaction start, isolation, which
errors are worth a retry, locks) lives in ``storage.backends``; this module
only strings it together.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from oslo_config import cfg
from sqlalchemy import URL, Connection, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from stowage import errors
from stowage.conf import database_url
from stowage.storage.backends import Backend, backend_for
from stowage.storage.backends.sqlite import database_file
from stowage.storage.common import apply_revision_bump

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def newest_schema_revision() -> str:
    """The newest migration's revision: what ``Database.upgrade`` brings a schema to."""
    head = ScriptDirectory(MIGRATIONS_DIR).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


LOG = logging.getLogger(__name__)

_UNAVAILABLE = "The database cannot be reached just now; please retry."


class DatabaseCannotStore(errors.DatabaseUnavailable):
    """The database cannot store anything (a SQLite file that cannot be opened
    or written, a full disk): a 503 for clients, whose message names no file.

    ``database`` names it for the operator (the SQLite file, or the URL
    without its password), in ``operator_message``: the log and the
    ``stowage`` command's error line.
    """

    def __init__(self, problem: str, database: str) -> None:
        super().__init__(f"The database cannot store anything just now: {problem}.")
        self.problem = problem
        self.database = database

    @property
    def operator_message(self) -> str:
        return f"The database {self.database} cannot store anything: {self.problem}"


class Database:
    """One engine per process; hands out read and write transactions."""

    def __init__(self, engine: Engine, takes_revisions: bool = True) -> None:
        """``takes_revisions=False`` for a database not in Stowage's schema
        (an upstream one being imported): it has no revision to take."""
        self.engine = engine
        self.backend: Backend = backend_for(engine)
        self.takes_revisions = takes_revisions

    @classmethod
    def from_url(cls, url: str, **engine_options) -> Database:
        """``engine_options`` are ``create_engine`` keywords (pool sizes,
        ``connect_args``); the SQLite backend needs and takes none."""
        parsed = make_url(url)
        return cls(backend_for(parsed).create_engine(parsed, **engine_options))

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Database:
        db_conf = conf.placement_database
        return cls.from_url(
            database_url(conf),
            pool_size=db_conf.max_pool_size,
            max_overflow=db_conf.max_overflow,
            pool_timeout=db_conf.pool_timeout,
            pool_recycle=db_conf.connection_recycle_time,
        )

    @contextmanager
    def read(self, consistent: bool = False) -> Iterator[Connection]:
        """A connection for reads; nothing it does is committed.

        ``consistent=True`` makes every statement see the same snapshot, for
        readers that assemble one view from several queries.
        """
        try:
            with self._connect() as connection:
                if consistent:
                    self.backend.begin_consistent_read(connection)
                try:
                    yield connection
                except BaseException:
                    connection.rollback()
                    raise
                # Ended with COMMIT, not ROLLBACK: nothing was written, so both
                # end it alike, but psycopg forgets its prepared statements on
                # every ROLLBACK, and the hot reads would be parsed and planned
                # anew on every request.
                connection.commit()
        except DBAPIError as error:
            self._raise_if_unavailable(error)
            raise

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction committed on success and rolled back on any error;
        if it changed any tree, it takes the next revision as it commits.

        A deadlock, serialization failure or lock timeout reported by the
        database becomes ``errors.TransactionAborted``: the whole transaction
        was rolled back and the caller may run it again (the HTTP layer does).
        """
        with self._transaction(takes_revision=self.takes_revisions) as connection:
            yield connection

    @contextmanager
    def _transaction(self, takes_revision: bool) -> Iterator[Connection]:
        try:
            with self._connect() as connection:
                self.backend.begin_write(connection)
                try:
                    yield connection
                    if takes_revision:
                        apply_revision_bump(connection, self.backend)
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
        except DBAPIError as error:
            self._raise_if_unavailable(error)
            if self.backend.is_transient(error):
                raise errors.TransactionAborted(
                    "Another request changed the same data at the same time; please retry."
                ) from error
            raise

    def _connect(self) -> Connection:
        """A connection from the pool; 503 if the database cannot be reached."""
        try:
            return self.engine.connect()
        except DBAPIError as error:
            self._raise_if_unavailable(error)
            raise errors.DatabaseUnavailable(_UNAVAILABLE) from error

    def _raise_if_unavailable(self, error: DBAPIError) -> None:
        """503 if ``error`` says the database is away (the connection lost,
        mid-transaction too: the server rolled back whatever it had) or
        cannot store anything (with the cause; the log names the database)."""
        if error.connection_invalidated:
            raise errors.DatabaseUnavailable(_UNAVAILABLE) from error
        problem = self.backend.storage_problem(error)
        if problem is not None:
            failure = DatabaseCannotStore(problem, _named_for_operators(self.engine.url))
            # The operator learns which database from the log; clients are
            # told no file paths.
            LOG.error("%s", failure.operator_message)
            raise failure from error

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent).

        Serialised across processes by the backend's migration lock (held
        for the whole migration), so workers starting together wait for the
        first one instead of colliding. Migrations change no tree's data, so
        take no revision (the feed may not exist before them).
        """
        config = Config()
        config.set_main_option("script_location", MIGRATIONS_DIR)
        with self._transaction(takes_revision=False) as connection, self.backend.migration_lock(connection):
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _named_for_operators(url: URL) -> str:
    """The file a SQLite URL names, or else the URL without its password."""
    return database_file(url) or url.render_as_string(hide_password=True)
