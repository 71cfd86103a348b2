"""Served Stowages: by default one (gunicorn, one worker of four threads,
SQLite) whose HTTP edges are tried with raw sockets, what only a real
server shows; ``serve_on`` gives a test one on any backend."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.clients.served import NOAUTH2_SETTINGS, ServedStowage
from tests.conftest import _fresh_database

# Short, so that a stalled client is given up on within the test's patience.
CLIENT_TIMEOUT_SECONDS = 1.0
SETTINGS = NOAUTH2_SETTINGS + (
    f"[stowage]\nclient_timeout = {CLIENT_TIMEOUT_SECONDS}\nmax_request_body_size = 65536\n"
)


@pytest.fixture(scope="module")
def served():
    service = ServedStowage.boot("sqlite", None, settings=SETTINGS)
    try:
        service.wait_until_serving()
        yield service
    finally:
        service.stop()


@contextmanager
def serve_on(backend: str, request: pytest.FixtureRequest, workers: int) -> Iterator[ServedStowage]:
    """A served Stowage (noauth2) with ``workers`` on a fresh database of ``backend``."""
    database = None
    if backend == "mysql":
        url = _fresh_database("mysql", request.config).engine.url
        database = url.render_as_string(hide_password=False)
    postgresql_url = request.config.getoption("postgresql_url") if backend == "postgresql" else None
    service = ServedStowage.boot(backend, postgresql_url, settings=NOAUTH2_SETTINGS,
                                 database=database, workers=workers)
    try:
        service.wait_until_serving()
        yield service
    finally:
        service.stop()
