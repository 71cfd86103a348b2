"""HTTP specs run against a fresh service on every backend."""
from __future__ import annotations

import pytest

from stowage.api.app import create_app
from tests.support import Client, open_test_database, reset_database, test_conf

_databases: dict[str, object] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, postgresql_url):
    """A migrated, emptied database of each backend (opened once per session)."""
    backend = request.param
    if backend == "postgresql" and not postgresql_url:
        pytest.fail("PostgreSQL specs need --postgresql-url or STOWAGE_TEST_POSTGRESQL_URL")
    if backend not in _databases:
        _databases[backend] = open_test_database(backend, postgresql_url)
    database = _databases[backend]
    reset_database(database)
    return database


@pytest.fixture
def app(database):
    return create_app(test_conf(), database)


@pytest.fixture
def client(app) -> Client:
    """An administrator speaking the newest microversion."""
    return Client(app)
