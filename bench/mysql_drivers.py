"""MySQL driver choice behind docs/decisions.md: PyMySQL against mysqlclient.

    python bench/mysql_drivers.py mysql://stowage:stowage@127.0.0.1:3306/stowage

The URL's user must be allowed to create databases: each driver gets a
scratch database of its own, dropped at the end. Drivers that are not
installed are left out (mysqlclient needs libmariadb-dev and a compiler to
install). Each part runs once per driver per round, the drivers taking
turns, and the best round counts:

1. ``SELECT 1`` round trips on one connection;
2. ``POST /resource_providers`` and ``DELETE`` of the same provider through
   Stowage's app in-process (two write transactions per pair);
3. ``GET /resource_providers/{uuid}`` (a few point reads);
4. ``GET /resource_providers`` listing every provider (rows decoded);
5. ``GET /allocation_candidates?resources=VCPU:1`` with the reference
   engine, which loads the providers in play from the database per request.

Prints a Markdown table.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import sys
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, make_url, text

from stowage.api.app import create_app
from stowage.cmd.database import prepare_database
from stowage.conf import build_conf
from stowage.storage.database import Database

DRIVERS = {"pymysql": "PyMySQL", "mysqldb": "mysqlclient"}
PROVIDERS = 300
ROUNDS = 3


def _call(app, method: str, path: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    path, _sep, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8778",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_ACCEPT": "application/json",
        "HTTP_X_AUTH_TOKEN": "admin",
        "HTTP_OPENSTACK_API_VERSION": "placement latest",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload),
    }
    if payload:
        environ["CONTENT_TYPE"] = "application/json"
    status: list[str] = []
    answer = b"".join(app(environ, lambda line, _headers, _exc=None: status.append(line)))
    if not status[0].startswith("2"):
        raise RuntimeError(f"{method} {path}: {status[0]} {answer[:300]!r}")
    return answer


class DriverUnderTest:
    """Stowage's app on a scratch database, through one driver."""

    def __init__(self, server_url: str, driver: str) -> None:
        self.server_url = server_url
        self.name = f"stowage_bench_{driver}_{uuid.uuid4().hex[:8]}"
        with create_engine(server_url).begin() as connection:
            connection.execute(text(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4"))
        url = make_url(server_url).set(drivername=f"mysql+{driver}", database=self.name)
        self.database = Database.from_url(url.render_as_string(hide_password=False), pool_size=2)
        prepare_database(self.database)
        conf = build_conf(config_files=[])
        conf.set_override("auth_strategy", "noauth2", group="api")
        conf.set_override("candidate_engine", "reference", group="stowage")
        self.app = create_app(conf, self.database)
        self.providers: list[str] = []
        for _ in range(PROVIDERS):
            provider = str(uuid.uuid4())
            _call(self.app, "POST", "/resource_providers", {"name": provider, "uuid": provider})
            _call(self.app, "PUT", f"/resource_providers/{provider}/inventories", {
                "resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}})
            self.providers.append(provider)

    def select_one(self, count: int) -> None:
        with self.database.engine.connect() as connection:
            for _ in range(count):
                connection.exec_driver_sql("SELECT 1").scalar()

    def create_and_delete_providers(self, count: int) -> None:
        for _ in range(count):
            provider = str(uuid.uuid4())
            _call(self.app, "POST", "/resource_providers", {"name": provider, "uuid": provider})
            _call(self.app, "DELETE", f"/resource_providers/{provider}")

    def show_providers(self, count: int) -> None:
        for index in range(count):
            _call(self.app, "GET", f"/resource_providers/{self.providers[index % len(self.providers)]}")

    def list_providers(self, count: int) -> None:
        for _ in range(count):
            _call(self.app, "GET", "/resource_providers")

    def candidates(self, count: int) -> None:
        for _ in range(count):
            _call(self.app, "GET", "/allocation_candidates?resources=VCPU:1")

    def close(self) -> None:
        self.database.dispose()
        with create_engine(self.server_url).begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))


def _rate(run: Callable[[int], None], count: int) -> float:
    started = time.perf_counter()
    run(count)
    return count / (time.perf_counter() - started)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    server_url = make_url(argv[1]).set(drivername="mysql+pymysql").render_as_string(hide_password=False)
    drivers = [driver for driver, module in (("pymysql", "pymysql"), ("mysqldb", "MySQLdb"))
               if importlib.util.find_spec(module)]
    under_test = {driver: DriverUnderTest(server_url, driver) for driver in drivers}
    parts: dict[str, tuple[Callable[[DriverUnderTest], Callable[[int], None]], int]] = {
        "SELECT 1": (lambda subject: subject.select_one, 5000),
        "POST + DELETE /resource_providers/{uuid}": (lambda subject: subject.create_and_delete_providers, 100),
        "GET /resource_providers/{uuid}": (lambda subject: subject.show_providers, 1000),
        f"GET /resource_providers ({PROVIDERS} providers)": (lambda subject: subject.list_providers, 30),
        f"GET /allocation_candidates?resources=VCPU:1 ({PROVIDERS} hosts)": (lambda subject: subject.candidates, 30),
    }
    best: dict[tuple[str, str], float] = {}
    try:
        for _round in range(ROUNDS):
            for part, (method, count) in parts.items():
                for driver, subject in under_test.items():
                    rate = _rate(method(subject), count)
                    best[(part, driver)] = max(rate, best.get((part, driver), 0.0))
    finally:
        for subject in under_test.values():
            subject.close()
    names = [DRIVERS[driver] for driver in drivers]
    print(f"{ROUNDS} rounds, best of each; PyMySQL {importlib.metadata.version('PyMySQL')}"
          + (f", mysqlclient {importlib.metadata.version('mysqlclient')}" if "mysqldb" in drivers else "") + "\n")
    print("| operation | " + " | ".join(f"{name} per s" for name in names) + " |")
    print("| --- | " + " | ".join("---:" for _ in names) + " |")
    for part in parts:
        print(f"| {part} | " + " | ".join(f"{best[(part, driver)]:,.0f}" for driver in drivers) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
