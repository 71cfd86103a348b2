"""Fixtures of the transfer specs: scratch databases by URL, upstream services, the CLI."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url

from stowage.api.app import create_app
from stowage.cmd.main import main
from stowage.storage.database import Database
from tests.conftest import require_url, server_urls
from tests.differential.services import UpstreamService
from tests.differential.wire import call_wsgi
from tests.support import BACKENDS, _private_postgresql_schema, private_mysql_database, test_conf
from tests.transfer.placement import Api


def scratch_url(backend: str, directory: Path, config: pytest.Config, name: str = "stowage") -> str:
    """The URL of a new, empty database of ``backend``, dropped when the test process ends."""
    if backend == "sqlite":
        return f"sqlite:///{directory / f'{name}.sqlite'}"
    url = require_url(backend, server_urls(config))
    assert url is not None
    if backend == "postgresql":
        schema = _private_postgresql_schema(url)
        return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    return private_mysql_database(url, prefix="stowage_transfer")


@pytest.fixture(params=BACKENDS)
def any_backend(request) -> str:
    return request.param


@pytest.fixture(params=BACKENDS)
def upstream_backend(request) -> str:
    return request.param


@pytest.fixture
def upstream(upstream_backend: str, request) -> Iterator[UpstreamService]:
    """A fresh upstream Placement 16.0.0 (its own ``placement-manage db sync``ed database),
    on the backend Stowage's database of the test uses."""
    service = UpstreamService(upstream_backend, require_url(upstream_backend, server_urls(request.config)))
    try:
        yield service
    finally:
        service.stop()


@dataclass
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def stowage_command(capsys) -> Callable[..., Outcome]:
    """Run ``stowage ARGS...`` in-process; returns the exit status and what it printed."""

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        status = main(list(args))
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


def write_config(directory: Path, database_url: str) -> str:
    path = directory / "placement.conf"
    path.write_text(f"[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = {database_url}\n")
    return str(path)


class StowageUnderTest:
    """Stowage's app on one database URL, called in-process like a served Stowage."""

    def __init__(self, url: str) -> None:
        self.database = Database.from_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.app = create_app(test_conf(), self.database)
        self.api = Api(lambda request: call_wsgi(self.app, request))

    def close(self) -> None:
        self.database.dispose()


@pytest.fixture
def open_stowage_app() -> Iterator[Callable[[str], StowageUnderTest]]:
    opened: list[StowageUnderTest] = []

    def open_app(url: str) -> StowageUnderTest:
        opened.append(StowageUnderTest(url))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()


def stowage_subprocess_args(*args: str) -> list[str]:
    """The command line of ``stowage ARGS...`` in a child process (for kill tests)."""
    return [sys.executable, "-m", "stowage.cmd.main", *args]
