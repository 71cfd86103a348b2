"""Upstream Placement's functional gabbi suite against Stowage on SQLite."""
from gabbi.driver import test_pytest  # noqa: F401  (the test gabbi parametrizes)

from tests.conformance.upstream import generate


def pytest_generate_tests(metafunc):
    generate(metafunc, "sqlite")
