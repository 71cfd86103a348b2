"""Upstream Placement's functional gabbi suite against Stowage on PostgreSQL."""
import pytest
from gabbi.driver import test_pytest  # noqa: F401  (the test gabbi parametrizes)

from tests.conformance.upstream import generate


def pytest_generate_tests(metafunc):
    url = metafunc.config.getoption("postgresql_url")
    if not url:
        pytest.fail(
            "PostgreSQL conformance needs --postgresql-url or STOWAGE_TEST_POSTGRESQL_URL "
            "(bash .ci/test sets it up)",
            pytrace=False,
        )
    generate(metafunc, "postgresql", url)
