"""Run osc-placement's functional tests against a served Stowage.

osc-placement's ``base.BaseTestCase.setUp`` builds upstream's
``placement.tests.functional.fixtures.placement.PlacementFixture`` (the
upstream app behind wsgi-intercept) and reads only its ``endpoint`` and
``token``. We patch the ``placement`` name that ``base`` imported with a
stand-in whose ``PlacementFixture`` gives those two for a served Stowage.
We patch because osc-placement builds the fixture itself, without
arguments, so there is no other seam (the CLI sessions' ClientCache patch
in ``tests/clients/cli.py`` is the only other patched global).

Each of our modules (one per osc-placement module) gets its own service on an
empty SQLite database. osc-placement's tests come from devstack days: they use
random names and clean up what they create, so they can share a service
within a module, as they once shared a cloud.
"""

from __future__ import annotations

import functools
import os
import sys
import types

import fixtures
import pytest
from osc_placement.tests.functional import base

from tests.clients.served import ServedStowage


class ServedPlacementFixture(fixtures.Fixture):
    """Stands in for upstream's ``PlacementFixture``: a served Stowage's endpoint and token."""

    def __init__(self, served: ServedStowage) -> None:
        super().__init__()
        self.endpoint = served.endpoint
        self.token = served.token


@pytest.fixture(scope="module")
def served_stowage(served_stowages):
    """A fresh service on an empty SQLite database for this module's tests.

    This overrides the parametrized fixture of the parent conftest: pytest
    cannot parametrize unittest ``TestCase`` items, and a second pass on
    PostgreSQL would double the suite's minute. The SDK and CLI sessions
    cover both backends.
    """
    served = served_stowages.take("sqlite")
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def osc_placement_points_at_stowage(served_stowage, monkeypatch):
    """Swap upstream's fixture for ours for the length of one test.

    ``test_plugin`` runs ``openstack --help`` as a program found on PATH;
    the virtualenv's bin directory, where pip put ``openstack``, goes first
    so the test does not depend on an activated virtualenv.
    """
    monkeypatch.setattr(
        base,
        "placement",
        types.SimpleNamespace(
            PlacementFixture=functools.partial(ServedPlacementFixture, served_stowage)
        ),
    )
    monkeypatch.setenv(
        "PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
