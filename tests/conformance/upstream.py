"""Load upstream Placement's gabbi YAML from the installed package.

The YAML files are never copied into this repository: they are read from
openstack-placement (a test-only dependency) at collection time.
"""
from __future__ import annotations

import importlib.util
import os

from gabbi import driver

from tests.conformance import fixtures


def gabbits_directory() -> str:
    """Directory of the functional gabbi files inside the installed package."""
    spec = importlib.util.find_spec("placement")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("openstack-placement is not installed; pip install '.[test]'")
    path = os.path.join(spec.submodule_search_locations[0], "tests", "functional", "gabbits")
    if not os.path.isdir(path):
        raise RuntimeError(f"no gabbi files at {path}")
    return path


def generate(metafunc, backend: str, url: str | None = None) -> None:
    """Parametrize gabbi's ``test_pytest`` with every upstream test for ``backend``,
    on the scratch database ``url`` (PostgreSQL, MySQL; None for SQLite)."""
    if url is not None:
        fixtures.configure(backend, url)
    driver.py_test_generator(
        gabbits_directory(),
        intercept=fixtures.setup_app,
        test_loader_name=backend,
        fixture_module=fixtures.fixture_module_for(backend),
        metafunc=metafunc,
    )
