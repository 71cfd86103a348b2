"""Test support: databases per backend and an in-process HTTP client."""
from __future__ import annotations

import atexit
import io
import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, delete, make_url, text, update

from stowage.conf import build_conf
from stowage.storage import schema
from stowage.storage.catalog import sync_standard_names
from stowage.storage.database import Database
from tests.contract import Described

# Children before parents, so deletes never trip a foreign key.
_TABLES_IN_DELETE_ORDER = [
    schema.allocations,
    schema.consumers,
    schema.consumer_types,
    schema.projects,
    schema.users,
    schema.provider_traits,
    schema.provider_aggregates,
    schema.aggregates,
    schema.inventories,
    schema.resource_providers,
    schema.traits,
    schema.resource_classes,
    # Last: the deletes above add rows to the change feed, which must start
    # empty since the revision counter restarts (and, with no unstamped
    # rows left, this transaction takes no revision).
    schema.changes,
    schema.tree_revisions,
]


BACKENDS = ("sqlite", "postgresql", "mysql")


def open_test_database(backend: str, url: str | None = None) -> Database:
    """A migrated database for ``backend`` ("sqlite", "postgresql" or "mysql").

    ``url`` names the scratch PostgreSQL or MySQL database; the tests get a
    private schema of it, or a private database on its server.
    """
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="stowage-test-")
        database = Database.from_url("sqlite:///" + os.path.join(directory, "placement.sqlite"))
    elif backend == "postgresql":
        assert url, "no PostgreSQL URL configured"
        schema_name = _private_postgresql_schema(url)
        database = Database.from_url(
            url,
            pool_size=5,
            max_overflow=5,
            connect_args={"options": f"-csearch_path={schema_name}"},
        )
    else:
        assert backend == "mysql", backend
        assert url, "no MySQL URL configured"
        database = Database.from_url(private_mysql_database(url), pool_size=5, max_overflow=5)
    database.upgrade()
    return database


def _private_postgresql_schema(url: str) -> str:
    """Create a schema only this test process uses, dropped when it exits.

    Test runs sharing one scratch database (several developers, or CI next to
    a developer) then never see each other's rows.
    """
    schema_name = f"stowage_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _create_until_exit(url, f'CREATE SCHEMA "{schema_name}"', f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')
    return schema_name


def _create_until_exit(url: str, create: str, drop: str) -> None:
    """Run ``create`` on the server of ``url`` now, and ``drop`` when this process exits."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(create))
    engine.dispose()

    def undo() -> None:
        cleanup = create_engine(url)
        with cleanup.begin() as connection:
            connection.execute(text(drop))
        cleanup.dispose()

    atexit.register(undo)


def private_mysql_database(url: str, prefix: str = "stowage_test") -> str:
    """Create a database only this test process uses on the server of ``url``,
    dropped when it exits; returns its URL.

    The MySQL counterpart of the private PostgreSQL schema (a MySQL schema
    is a database): the user of ``url`` needs the CREATE and DROP privileges.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _create_until_exit(url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS `{name}`")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def reset_database(database: Database) -> None:
    """Empty every table and re-sync the standard names: a fresh service."""
    with database.write() as connection:
        connection.execute(
            update(schema.resource_providers).values(root_provider_id=None, parent_provider_id=None)
        )
        for table in _TABLES_IN_DELETE_ORDER:
            connection.execute(delete(table))
        connection.execute(update(schema.revision).values(revision=0))
        sync_standard_names(connection)


def test_conf(**overrides: dict[str, Any]):
    """A config reading no file, with noauth2 and ``{group: {opt: value}}`` overrides."""
    conf = build_conf(config_files=[])
    conf.set_override("auth_strategy", "noauth2", group="api")
    for group, options in overrides.items():
        for name, value in options.items():
            conf.set_override(name, value, group=group)
    return conf


test_conf.__test__ = False  # a helper, not a test, wherever it is imported


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Calls a WSGI app in-process, the way an HTTP client would."""

    def __init__(self, app, token: str = "admin", version: str = "latest") -> None:
        self.app = app
        self.token = token
        self.version = version

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        path, _sep, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(payload),
            "CONTENT_LENGTH": str(len(payload)),
            "HTTP_ACCEPT": "application/json",
        }
        if self.version is not None:
            environ["HTTP_OPENSTACK_API_VERSION"] = f"placement {self.version}"
        if self.token is not None:
            environ["HTTP_X_AUTH_TOKEN"] = self.token
        if payload:
            environ["CONTENT_TYPE"] = "application/json"
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        captured: dict[str, Any] = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = {name.lower(): value for name, value in response_headers}

        chunks = Described(self.app)(environ, start_response)
        return Answer(captured["status"], captured["headers"], b"".join(chunks))

    def get(self, path: str, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Answer:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs) -> Answer:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs) -> Answer:
        return self.request("DELETE", path, **kwargs)
