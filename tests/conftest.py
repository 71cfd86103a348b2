"""Suite-wide options and the per-file conformance report."""
from __future__ import annotations

import os
import re
from collections import defaultdict

import pytest

_CONFORMANCE_ID = re.compile(r"\[(?P<backend>sqlite|postgresql):(?P<file>[^_\]]+)_")
_results: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_addoption(parser):
    parser.addoption(
        "--postgresql-url",
        dest="postgresql_url",
        default=os.environ.get("STOWAGE_TEST_POSTGRESQL_URL"),
        help="SQLAlchemy URL of a scratch PostgreSQL database for the backend tests "
        "(default: $STOWAGE_TEST_POSTGRESQL_URL).",
    )


@pytest.fixture(scope="session")
def postgresql_url(request) -> str | None:
    return request.config.getoption("postgresql_url")


def pytest_runtest_logreport(report):
    found = _CONFORMANCE_ID.search(report.nodeid)
    if not found:
        return
    key = (found["file"], found["backend"])
    if report.when == "call":
        _results[key][report.outcome] += 1
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
            mark = "" if passed == total else "  x"
            row += f"{f'{passed}/{total}{mark}':>26}"
        write(row)
    write("-" * len(header))
    write(f"{'TOTAL':48}" + "".join(f"{f'{p}/{t}':>26}" for p, t in totals.values()))
