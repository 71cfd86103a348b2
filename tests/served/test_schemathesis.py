"""Spec: schemathesis, driven by the description the service serves, finds
no 5xx and no answer the description does not allow, at several
microversions, on every backend.

Each run is the schemathesis command line against a served Stowage
(gunicorn, noauth2 as an administrator with the service role, so the
reshaper is reached): its coverage, fuzzing and stateful phases, positive
and negative data, with the checks below. The service log must hold no
traceback afterwards.

``STOWAGE_FUZZ_EXAMPLES`` sets the examples per operation (CI's budget: the
default, about half a minute per run); ``STOWAGE_FUZZ_SEED`` the seed (the
default is fixed, so that CI runs are repeatable; a failure prints the
command that replays it). With ``pytest -s`` each run prints its tally (the
figures in docs/reliability.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from stowage.api import openapi
from stowage.api.versions import Version
from tests.served.conftest import serve_on

EXAMPLES = int(os.environ.get("STOWAGE_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("STOWAGE_FUZZ_SEED", "20261204"))
VERSIONS = ["1.0", "1.14", "1.28", "1.39"]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Far beyond a run's half minute: a stalled run fails instead of hanging CI.
RUN_TIMEOUT_SECONDS = 60 + 30 * EXAMPLES


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request):
    with serve_on(request.param, request, workers=2) as service:
        yield service


@pytest.mark.parametrize("version", VERSIONS)
def test_schemathesis_finds_no_server_error_and_no_undescribed_answer(served, version):
    with tempfile.TemporaryDirectory(prefix="stowage-schemathesis-") as reports:
        command = [
            str(SCHEMATHESIS), "run", f"{served.endpoint}{openapi.PATH}",
            "--header", f"X-Auth-Token: {served.token}",
            "--header", "X-Roles: admin,service",
            "--header", f"OpenStack-API-Version: placement {version}",
            "--checks", ",".join(CHECKS),
            "--max-examples", str(EXAMPLES),
            "--seed", str(SEED),
            "--workers", "1",
            "--request-timeout", "30",
            "--report", "json", "--report-dir", reports,
        ]
        finished = subprocess.run(command, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_SECONDS, cwd=reports, check=False)
        (report_path,) = Path(reports).glob("*.json")
        report = json.loads(report_path.read_text())
    cases = report["test_cases"]
    print(f"\n{served.backend} {version}: {cases['generated']} cases, "
          f"{len(report['failures'])} failures, {len(report['errors'])} errors, "
          f"{report['operations']['tested']} operations, {report['running_time']:.0f} s")
    assert finished.returncode == 0, finished.stdout[-20000:]
    assert report["failures"] == [] and report["errors"] == []
    # Every operation of the microversion was tried (schemathesis 4.32 counts
    # one fewer than the document holds), with cases in the hundreds.
    paths = openapi.describe(Version.parse(version))["paths"]
    described = sum(len(item) for item in paths.values())
    assert report["operations"]["tested"] >= described - 1, report["operations"]
    assert cases["generated"] >= 20 * EXAMPLES
    assert "Traceback" not in served.log()
