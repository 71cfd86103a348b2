"""Upstream Placement's functional gabbi suite against Stowage on MySQL/MariaDB."""
import pytest
from gabbi.driver import test_pytest  # noqa: F401  (the test gabbi parametrizes)

from tests.conformance.upstream import generate


def pytest_generate_tests(metafunc):
    url = metafunc.config.getoption("mysql_url")
    if not url:
        pytest.fail(
            "MySQL conformance needs --mysql-url or STOWAGE_TEST_MYSQL_URL (bash .ci/test sets it up)",
            pytrace=False,
        )
    generate(metafunc, "mysql", url)
