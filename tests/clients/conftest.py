"""Served Stowages and the warning policy for the client suites.

Warnings are errors in these tests, except the few that the clients raise
about their own internals: ``tests.clients.cli`` filters each by its exact
message, with the reason it is not ours to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients import cli
from tests.clients.served import BACKENDS, ServedStowages

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """Make warnings errors for the client suites, less the clients' own."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(cli.WARNING_POLICY)


@pytest.fixture(autouse=True)
def logging_restored():
    """Undo what an in-process ``openstack`` command does to logging."""
    with cli.logging_restored():
        yield


@pytest.fixture(scope="session")
def served_stowages(postgresql_url):
    """Boots the services; discards the unused spares when the session ends."""
    stowages = ServedStowages(postgresql_url)
    yield stowages
    stowages.close()


@pytest.fixture(scope="module", params=BACKENDS)
def served_stowage(request, served_stowages):
    """A fresh service per module and backend, on an empty database."""
    served = served_stowages.take(request.param)
    yield served
    served.stop()
