"""The two services under comparison, each resettable to a fresh start.

Stowage runs in-process: ``create_app(test_conf(), database)`` on the suite's
own test databases, as every HTTP spec builds it. Called through
``wire.call_wsgi`` it gets exactly the environ upstream's wrapper server
builds, without a server of its own in between; that keeps a step at about a
millisecond and a reset at an emptied database plus a new app object.

Upstream runs in a subprocess (``upstream_server``) on a loopback port:
importing it here would put its process-wide state (enginefacade, policy
enforcer, sync flags) and its deprecation warnings into the test process. It
gets its own database, created by ``placement-manage db sync``: a SQLite file,
a private schema of the PostgreSQL test database (so no CREATEDB right is
needed), or a private database on the MySQL test server, dropped when the
service stops (or, for MySQL, when the test process exits).
"""
from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, make_url, text

from stowage.api.app import create_app
from stowage.storage.database import Database
from tests.differential.upstream_server import RESET_PATH
from tests.differential.wire import Answer, WireRequest, call_wsgi
from tests.support import private_mysql_database, reset_database, test_conf

REPOSITORY = Path(__file__).resolve().parents[2]
# Upstream builds some error details by iterating over sets of strings; a
# fixed hash seed makes their order, and so a seed's replay, repeatable.
UPSTREAM_HASH_SEED = "0"


class Service(Protocol):
    """A Placement implementation the tester can talk to and reset."""

    label: str

    def send(self, request: WireRequest) -> Answer: ...

    def reset(self) -> None: ...


class StowageService:
    """Stowage's WSGI app, in-process, on one of the suite's test databases."""

    label = "stowage"

    def __init__(self, database: Database) -> None:
        self.database = database
        self.app = create_app(test_conf(), database)

    def send(self, request: WireRequest) -> Answer:
        return call_wsgi(self.app, request)

    def reset(self) -> None:
        reset_database(self.database)
        self.app = create_app(test_conf(), self.database)


class UpstreamService:
    """Upstream Placement 16.0.0 behind ``upstream_server`` on a loopback port."""

    label = "upstream"

    def __init__(self, backend: str, server_url: str | None = None,
                 hash_seed: str = UPSTREAM_HASH_SEED) -> None:
        """``server_url``: the PostgreSQL or MySQL scratch database (None for SQLite)."""
        self.backend = backend
        self.work_dir = Path(tempfile.mkdtemp(prefix="stowage-differential-"))
        self.log_path = self.work_dir / "upstream.log"
        self._postgresql_url = server_url if backend == "postgresql" else None
        self._mysql_url = server_url if backend == "mysql" else None
        self._schema: str | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._hash_seed = hash_seed
        # The database upstream serves, as its placement.conf names it.
        self.database_url = self._database_url()
        self.config_file = self._write_config(self.database_url)
        self._migrate(self.config_file)
        self._start()

    def _start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.differential.upstream_server", str(self.config_file)],
                cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=log,
                env={**os.environ, "PYTHONHASHSEED": self._hash_seed},
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"upstream did not start; see {self.log_path}")
        self.port = int(line.split()[1])

    def restart(self) -> None:
        """Stop the upstream process and start a new one on the same database, as an
        operator switching back to upstream does."""
        self._stop_process()
        self._start()

    def _database_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.work_dir / 'upstream.sqlite'}"
        if self.backend == "mysql":
            if not self._mysql_url:
                raise RuntimeError("the MySQL backend needs --mysql-url")
            # mysql+pymysql://, as oslo.db's documentation has it for upstream.
            return private_mysql_database(self._mysql_url, prefix="stowage_differential")
        if not self._postgresql_url:
            raise RuntimeError("the PostgreSQL backend needs --postgresql-url")
        self._schema = f"stowage_differential_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self._postgresql_url)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self._schema}"'))
        engine.dispose()
        # psycopg2, upstream's own driver: with psycopg 3 its inserts fail
        # ("'Cursor' object has no attribute 'lastrowid'").
        url = make_url(self._postgresql_url).set(drivername="postgresql+psycopg2")
        url = url.update_query_dict({"options": f"-csearch_path={self._schema}"})
        return url.render_as_string(hide_password=False)

    def _write_config(self, database_url: str) -> Path:
        config_file = self.work_dir / "placement.conf"
        config_file.write_text(
            "[DEFAULT]\ndebug = false\n"
            "[api]\nauth_strategy = noauth2\n"
            f"[placement_database]\nconnection = {database_url}\n"
        )
        return config_file

    def _migrate(self, config_file: Path) -> None:
        manage = Path(sys.executable).parent / "placement-manage"
        with open(self.log_path, "ab") as log:
            subprocess.run([str(manage), "--config-file", str(config_file), "db", "sync"],
                           check=True, stdout=log, stderr=log)

    def send(self, request: WireRequest) -> Answer:
        for attempt in (1, 2):
            connection = self._connection or http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=120)
            self._connection = connection
            try:
                connection.putrequest(request.method, request.target,
                                      skip_host=True, skip_accept_encoding=True)
                for name, value in request.headers:
                    connection.putheader(name, value)
                if request.body:
                    connection.putheader("content-length", str(len(request.body)))
                connection.endheaders(request.body or None)
                response = connection.getresponse()
                body = response.read()
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                self._connection = None
                if attempt == 2 or self.process.poll() is not None:
                    raise
                continue
            headers: dict[str, str] = {}
            for name, value in response.getheaders():
                name = name.lower()
                if name in ("date", "server", "content-length"):
                    continue  # the wrapper server's own
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            return Answer(response.status, headers, body)
        raise AssertionError("unreachable")

    def reset(self) -> None:
        answer = self.send(WireRequest("POST", RESET_PATH))
        if answer.status != 204:
            raise RuntimeError(f"upstream reset failed: {answer.status}; see {self.log_path}")

    def stop(self) -> None:
        self._stop_process()
        if self._schema and self._postgresql_url:
            engine = create_engine(self._postgresql_url)
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE'))
            engine.dispose()

    def _stop_process(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
