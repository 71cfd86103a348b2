"""The two ends of a transfer: a database URL opened, identified and given transactions.

An endpoint knows its layout (Stowage's schema or upstream's), hands out a
consistent snapshot for reading (the whole run reads the source in one, so
what lands in the target is the source at one instant even while it is
being written) and short write transactions (one per batch), and says how
a write marks the data changed: on Stowage's schema by bumping the
revision, so running workers reload their read models.

Connections, transactions and the one dialect difference of a transfer
(PostgreSQL's sequences, ``Backend.follow_written_ids``) come from
``storage.backends``, as for the service.
"""
from __future__ import annotations

import enum
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from stowage.storage.backends import backend_for
from stowage.storage.database import MIGRATIONS_DIR, Database, newest_schema_revision
from stowage.storage.transfer import upstream_schema
from stowage.storage.transfer.errors import UnusableDatabase
from stowage.storage.transfer.layouts import STOWAGE, UPSTREAM, Layout


class Kind(enum.Enum):
    EMPTY = "empty"
    STOWAGE = "Stowage"
    UPSTREAM = "upstream Placement"
    OTHER = "other"


@dataclass(frozen=True)
class Identity:
    """What a database holds: its kind and Alembic revision (None without one)."""

    kind: Kind
    revision: str | None


def normalise_url(text: str) -> str:
    """A placement.conf-style URL as Stowage opens it.

    ``postgresql://`` and ``postgresql+psycopg2://`` are served with
    psycopg 3 (as ``[placement_database] connection`` is), ``mysql://``
    with PyMySQL.
    """
    for prefix in ("postgresql://", "postgresql+psycopg2://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    if text.startswith("mysql://"):
        return "mysql+pymysql://" + text[len("mysql://") :]
    return text


def describe(url: str | URL) -> str:
    """The URL for messages: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def same_database(first: str, second: str) -> bool:
    """True when two URLs name one database (SQLite files compared by real path).

    An unparsable URL names no database here; opening it says what is wrong.
    """
    try:
        one, other = make_url(normalise_url(first)), make_url(normalise_url(second))
    except ArgumentError:
        return False
    if one.get_backend_name() == other.get_backend_name() == "sqlite":
        return os.path.realpath(one.database or "") == os.path.realpath(other.database or "")
    return one == other


class Endpoint:
    """A database at one end of a transfer."""

    label: str
    layout: Layout
    engine: Engine

    def snapshot(self) -> AbstractContextManager[Connection]:
        """A read transaction in which every statement sees the same data."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Connection]:
        """A transaction committed on success, rolled back on any error."""
        raise NotImplementedError

    def identity(self) -> Identity:
        return identify(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


class StowageEndpoint(Endpoint):
    """A database in Stowage's schema, through ``Database`` like the service itself."""

    layout = STOWAGE

    def __init__(self, database: Database, label: str) -> None:
        self.database = database
        self.engine = database.engine
        self.label = label

    def snapshot(self) -> AbstractContextManager[Connection]:
        return self.database.read(consistent=True)

    def write(self) -> AbstractContextManager[Connection]:
        return self.database.write()


class UpstreamEndpoint(Endpoint):
    """A database created by openstack-placement 16.0.0's ``placement-manage db sync``.

    Opened with the same backend settings as Stowage's own databases
    (``storage.backends``); on SQLite that puts the file in WAL mode, which
    upstream reads as well.
    """

    layout = UPSTREAM

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        # Transactions as Stowage's own, but upstream's schema has no
        # revision to take.
        self.database = Database(engine, takes_revisions=False)

    def snapshot(self) -> AbstractContextManager[Connection]:
        return self.database.read(consistent=True)

    def write(self) -> AbstractContextManager[Connection]:
        return self.database.write()


def identify(engine: Engine) -> Identity:
    """Tell a Stowage database from an upstream one by its tables and Alembic revision."""
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        if "alembic_version" not in names:
            return Identity(Kind.EMPTY if not names else Kind.OTHER, None)
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(revisions) != 1:
        return Identity(Kind.OTHER, None)
    (revision,) = revisions
    if revision in stowage_revisions():
        return Identity(Kind.STOWAGE, revision)
    if revision == upstream_schema.REVISION or revision in upstream_schema.OLDER_REVISIONS:
        return Identity(Kind.UPSTREAM, revision)
    return Identity(Kind.OTHER, revision)


def stowage_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(MIGRATIONS_DIR).walk_revisions()}


def stowage_head() -> str:
    return newest_schema_revision()


def open_upstream(url: str, role: str) -> UpstreamEndpoint:
    """The upstream 16.0.0 database at ``url``; ``role`` ("source", "target") is for messages.

    Raises ``UnusableDatabase`` unless it is one, at upstream's newest revision.
    """
    url = normalise_url(url)
    label = describe(url)
    _require_existing_sqlite_file(url, label)
    engine = _guarded(label, lambda: _upstream_engine(url))
    endpoint = UpstreamEndpoint(engine, label)
    identity = _guarded(label, endpoint.identity, engine)
    problem = None
    if identity.kind is not Kind.UPSTREAM:
        problem = _not_upstream(identity)
    elif identity.revision != upstream_schema.REVISION:
        problem = (
            f"is an upstream Placement database at revision {identity.revision}, not "
            f"{upstream_schema.REVISION} (openstack-placement 16.0.0); run openstack-placement "
            "16.0.0's 'placement-manage db sync' on it first"
        )
    if problem:
        engine.dispose()
        raise UnusableDatabase(f"the {role} {label} {problem}")
    return endpoint


def open_stowage(url: str, role: str, must_be_current: bool) -> StowageEndpoint:
    """The Stowage database at ``url``.

    A source (``must_be_current``) must exist at the newest revision; a
    target may also be empty or at an older revision (the caller upgrades
    it). Raises ``UnusableDatabase`` for anything else.
    """
    url = normalise_url(url)
    label = describe(url)
    if must_be_current:
        _require_existing_sqlite_file(url, label)
    database = _guarded(label, lambda: Database.from_url(url))
    endpoint = StowageEndpoint(database, label)
    identity = _guarded(label, endpoint.identity, database.engine)
    problem = None
    if identity.kind is Kind.UPSTREAM:
        problem = (
            "is an upstream Placement database, not a Stowage one: 'stowage db import' "
            "reads it, 'stowage db export' writes it"
        )
    elif identity.kind is Kind.OTHER:
        problem = _not_upstream(identity).replace("upstream Placement", "Stowage")
    elif must_be_current and identity.revision != stowage_head():
        state = "is empty" if identity.kind is Kind.EMPTY else f"is at revision {identity.revision}"
        problem = f"{state}, not at Stowage's newest revision {stowage_head()}; run 'stowage db upgrade' on it"
    if problem:
        database.dispose()
        raise UnusableDatabase(f"the {role} {label} {problem}")
    return endpoint


def _not_upstream(identity: Identity) -> str:
    if identity.kind is Kind.EMPTY:
        return "is empty, not an upstream Placement database"
    if identity.kind is Kind.STOWAGE:
        return (
            f"is a Stowage database (revision {identity.revision}), not an upstream Placement "
            "one; 'stowage db copy' copies between Stowage databases"
        )
    if identity.revision:
        return f"is not an upstream Placement database (unknown Alembic revision {identity.revision})"
    return "is not an upstream Placement database (it has tables but no alembic_version)"


def _require_existing_sqlite_file(url: str, label: str) -> None:
    # SQLite would quietly create an empty file for a mistyped path.
    parsed = _guarded(label, lambda: make_url(url))
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if path not in (None, "", ":memory:") and not os.path.exists(path):
        raise UnusableDatabase(f"cannot open {label}: there is no file {parsed.database}")


def _guarded(label, action, engine: Engine | None = None):
    """Run ``action``; a bad URL or an unreachable database becomes ``UnusableDatabase``."""
    try:
        return action()
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        message = f"cannot use {label}: {error}"
    except DBAPIError as error:
        message = f"cannot open {label}: {_first_line(error.orig)}"
    except SQLAlchemyError as error:
        message = f"cannot open {label}: {_first_line(error)}"
    if engine is not None:
        engine.dispose()
    raise UnusableDatabase(message)


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _upstream_engine(url: str) -> Engine:
    parsed = make_url(url)
    return backend_for(parsed).create_engine(parsed)
