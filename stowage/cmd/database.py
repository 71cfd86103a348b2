"""``stowage db``: bring a database to the current schema and standard names.

The same preparation runs in ``stowage serve`` (once, in the master, before
workers fork) and in ``stowage.wsgi`` (in each process that builds the app).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from oslo_config import cfg
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from stowage.conf import database_url
from stowage.storage.backends.sqlite import absent_database_file
from stowage.storage.catalog import sync_standard_names
from stowage.storage.database import Database, newest_schema_revision

LOG = logging.getLogger(__name__)

# Processes that start together (a WSGI server's workers, each building its
# own app) may race to create the schema: the loser's migration fails and,
# once the winner has finished, a retry finds nothing left to do.
RACING_PROCESS_ATTEMPTS = 5
_RETRY_SECONDS = 1.0


def prepare_database(database: Database, migrate: bool = True, attempts: int = 1) -> None:
    """Migrate to the newest schema (if ``migrate``) and sync standard names.

    Both steps are idempotent. Standard resource classes and traits are
    synced even when migrations are left to the operator, as upstream does.
    ``attempts`` > 1 retries a failed migration, for processes that may race
    each other (see ``RACING_PROCESS_ATTEMPTS``).
    """
    if migrate:
        _upgrade(database, attempts)
    with database.write() as connection:
        sync_standard_names(connection)


def _upgrade(database: Database, attempts: int) -> None:
    for attempt in range(1, attempts + 1):
        try:
            database.upgrade()
            return
        except SQLAlchemyError as error:
            if attempt == attempts:
                raise
            LOG.warning("Schema upgrade failed (attempt %d of %d): %s", attempt, attempts, error)
            time.sleep(_RETRY_SECONDS)


@dataclass(frozen=True)
class SchemaVersion:
    """The database's Alembic revision (``None`` when never migrated) and the newest one."""

    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def schema_version(database: Database) -> SchemaVersion:
    """Read the applied migration revision without changing anything."""
    with database.read() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaVersion(current=current, head=newest_schema_revision())


def upgrade_command(conf: cfg.ConfigOpts) -> int:
    """``stowage db upgrade``: exit status 0 once the database is current."""
    database = Database.from_conf(conf)
    try:
        prepare_database(database)
        version = schema_version(database)
    finally:
        database.dispose()
    print(f"Database schema at revision {version.current} (newest).")
    return 0


def version_command(conf: cfg.ConfigOpts) -> int:
    """``stowage db version``: exit status 0 when current, 1 when an upgrade is due.

    Only reads: a database that does not exist yet (an embedded SQLite file
    not created, its state_dir neither) is reported as having no schema and
    left uncreated.
    """
    url = database_url(conf, create_state_dir=False)
    absent = absent_database_file(make_url(url))
    if absent is not None:
        print(f"no schema: {absent} does not exist (newest is {newest_schema_revision()}; "
              "run 'stowage db upgrade')")
        return 1
    database = Database.from_url(url)
    try:
        version = schema_version(database)
    finally:
        database.dispose()
    if version.is_current:
        print(f"{version.current} (newest)")
        return 0
    print(f"{version.current or 'no schema'} (newest is {version.head}; run 'stowage db upgrade')")
    return 1
