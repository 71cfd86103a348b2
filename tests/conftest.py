"""Suite-wide options and the per-file conformance report."""
from __future__ import annotations

import os
import re
from collections import defaultdict

import pytest

from tests.support import BACKENDS, open_test_database, reset_database

_CONFORMANCE_ID = re.compile(r"\[(?P<backend>sqlite|postgresql|mysql):(?P<file>[^_\]]+)_(?P<test>[^\]]*)\]")
KNOWN_FAILURES_DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "conformance.md")
_results: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_addoption(parser):
    parser.addoption(
        "--postgresql-url",
        dest="postgresql_url",
        default=os.environ.get("STOWAGE_TEST_POSTGRESQL_URL"),
        help="SQLAlchemy URL of a scratch PostgreSQL database for the backend tests "
        "(default: $STOWAGE_TEST_POSTGRESQL_URL).",
    )
    parser.addoption(
        "--mysql-url",
        dest="mysql_url",
        default=os.environ.get("STOWAGE_TEST_MYSQL_URL"),
        help="SQLAlchemy URL of a scratch MySQL/MariaDB database for the backend tests; its user "
        "must be allowed to create databases (default: $STOWAGE_TEST_MYSQL_URL).",
    )
    parser.addoption(
        "--seeds",
        dest="differential_seeds",
        default="3",
        help="Seeds of the differential test (tests/differential): a count N (seeds 1..N), "
        "a comma-separated list (7,11 or 7, for one seed) or a range (100-119). Default: 3.",
    )
    parser.addoption(
        "--steps",
        dest="differential_steps",
        type=int,
        default=500,
        help="Requests per seed of the differential test. Default: 500.",
    )


@pytest.fixture(scope="session")
def postgresql_url(request) -> str | None:
    return request.config.getoption("postgresql_url")


@pytest.fixture(scope="session")
def mysql_url(request) -> str | None:
    return request.config.getoption("mysql_url")


def server_urls(config) -> dict[str, str | None]:
    """The scratch database URL of each server backend (None: not configured)."""
    return {"postgresql": config.getoption("postgresql_url"), "mysql": config.getoption("mysql_url")}


_OPTION_OF = {"postgresql": ("PostgreSQL", "--postgresql-url", "STOWAGE_TEST_POSTGRESQL_URL"),
              "mysql": ("MySQL", "--mysql-url", "STOWAGE_TEST_MYSQL_URL")}


def require_url(backend: str, urls: dict[str, str | None]) -> str | None:
    """The URL ``backend`` needs; fails the test (never skips) when it is missing."""
    if backend == "sqlite":
        return None
    url = urls[backend]
    if not url:
        label, option, variable = _OPTION_OF[backend]
        pytest.fail(f"{label} specs need {option} or {variable} (bash .ci/test sets it up)", pytrace=False)
    return url


_databases: dict[str, object] = {}


def _fresh_database(backend: str, config):
    """A migrated, emptied database of ``backend`` (opened once per session)."""
    url = require_url(backend, server_urls(config))
    if backend not in _databases:
        _databases[backend] = open_test_database(backend, url)
    database = _databases[backend]
    reset_database(database)
    return database


@pytest.fixture(params=BACKENDS)
def database(request):
    """The same test once on each backend, each time on an empty database."""
    return _fresh_database(request.param, request.config)


@pytest.fixture
def postgresql_database(request):
    """An empty PostgreSQL database, for behaviour only PostgreSQL has."""
    return _fresh_database("postgresql", request.config)


@pytest.fixture(params=[backend for backend in BACKENDS if backend != "sqlite"])
def server_database(request):
    """The same test on each database server (concurrent writers, row locks)."""
    return _fresh_database(request.param, request.config)


@pytest.fixture
def mysql_database(request):
    """An empty MySQL/MariaDB database, for behaviour only MySQL has."""
    return _fresh_database("mysql", request.config)


def known_failures(path: str = KNOWN_FAILURES_DOC) -> dict[tuple[str, str], str]:
    """Rows of the "Known failures" table in docs/conformance.md.

    Each row is ``| gabbi file | test name or * | reason |``; the document is
    the single list of upstream tests Stowage does not pass, and why.
    """
    rows: dict[tuple[str, str], str] = {}
    in_table = False
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("## "):
                in_table = line.strip() == "## Known failures"
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not in_table or len(cells) != 3 or set(cells[0]) <= {"-", " "} or cells[0] == "file":
                continue
            file, test, reason = cells
            rows[(file.removesuffix(".yaml"), test.strip("`"))] = reason
    return rows


def pytest_collection_modifyitems(config, items):
    """Mark the documented known failures as expected to fail.

    A single listed test is strict: once it passes, the run fails until the
    row is removed. A whole file (``*``) is not, since part of it may pass.
    """
    listed = known_failures()
    if not listed:
        return
    for item in items:
        found = _CONFORMANCE_ID.search(item.nodeid)
        if not found:
            continue
        for test in (found["test"], "*"):
            reason = listed.get((found["file"], test))
            if reason:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=test != "*"))
                break


def pytest_runtest_logreport(report):
    found = _CONFORMANCE_ID.search(report.nodeid)
    if not found:
        return
    key = (found["file"], found["backend"])
    if report.when == "call":
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        _results[key][outcome] += 1
    elif report.outcome != "passed":  # setup/teardown errors and skips
        _results[key]["error" if report.outcome == "failed" else report.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    write = terminalreporter.write_line
    backends = sorted({backend for _file, backend in _results})
    write("")
    write("Upstream Placement conformance (openstack-placement gabbi files)")
    header = f"{'file':48}" + "".join(f"{b + ' pass/total':>26}" for b in backends)
    write(header)
    write("-" * len(header))
    totals = {b: [0, 0] for b in backends}
    for name in sorted({file for file, _backend in _results}):
        row = f"{name:48}"
        for backend in backends:
            counts = _results.get((name, backend), {})
            passed = counts.get("passed", 0)
            total = sum(counts.values())
            totals[backend][0] += passed
            totals[backend][1] += total
            expected = counts.get("xfailed", 0)
            mark = "" if passed == total else f"  ({expected} known)" if passed + expected == total else "  x"
            row += f"{f'{passed}/{total}{mark}':>26}"
        write(row)
    write("-" * len(header))
    write(f"{'TOTAL':48}" + "".join(f"{f'{p}/{t}':>26}" for p, t in totals.values()))


def pytest_make_parametrize_id(config, val, argname):
    """Keep ':' out of our own test ids: gabbi's pytest plugin reads any id
    with a ':' as one of its YAML tests and fails the collection."""
    if isinstance(val, bytes):
        val = val.decode("ascii", "backslashreplace")
    if isinstance(val, str) and ":" in val:
        return val.replace(":", "=")
    return None
