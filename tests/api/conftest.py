"""HTTP specs run against a fresh service on every backend."""
from __future__ import annotations

import pytest

from stowage.api.app import create_app
from tests.support import Client, test_conf


@pytest.fixture
def app(database):
    return create_app(test_conf(), database)


@pytest.fixture
def client(app) -> Client:
    """An administrator speaking the newest microversion."""
    return Client(app)
