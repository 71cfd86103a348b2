"""GET and HEAD /healthcheck: is this worker fit to serve? (no token needed).

The answer has oslo.middleware healthcheck's shape, which load balancers
and OpenStack tooling already read: 200 when every check passes, 503 when
one fails; plain text unless the Accept header prefers JSON. HEAD, as
oslo.middleware answers it, is the status alone: 204 when every check
passes, 503 when one fails, no body. Without a
token, or for a caller who is not an administrator (the ``admin_api``
policy rule), it says only whether the service is well::

    OK                                         (text/plain)
    {"detailed": false, "reasons": ["OK"]}     (application/json)

An administrator's JSON answer tells which check failed and how long each
took::

    {"detailed": true, "now": "2025-01-01 12:00:00.000000", "pid": 4242,
     "reasons": [{"check": "database", "reason": "OK", "available": true,
                  "details": "revision 812", "class": "HealthcheckResult",
                  "seconds": 0.0009}, ...]}

Why Stowage's own handler rather than oslo.middleware's: docs/decisions.md.
"""
from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import webob.acceptparse

from stowage import errors
from stowage.api.http import JSON_TYPE, Request, Response
from stowage.domain.candidates import FAST_ENGINE
from stowage.storage.changes import current_revision

LOG = logging.getLogger(__name__)

PATH = "/healthcheck"
TEXT_TYPE = "text/plain; charset=UTF-8"
# oslo.middleware's offers, in its order (which breaks Accept's ties), less HTML.
_OFFERS = ("text/plain", JSON_TYPE)
HEALTHY, UNHEALTHY = 200, 503
# What HEAD answers when healthy: no content.
HEALTHY_STATUS = 204
OK = "OK"
# What a caller who may not see the details is told of a failure.
UNAVAILABLE = "Service Unavailable"
# Who sees the details (upstream's base rule for administrators).
ADMIN_RULE = "admin_api"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``details`` and ``seconds`` only for administrators."""

    check: str
    available: bool
    reason: str
    details: str
    seconds: float


def healthcheck(request: Request, services) -> Response:
    """200 if the database answers and the read model is current, else 503."""
    results, healthy = _checked(services)
    status = HEALTHY if healthy else UNHEALTHY
    offers = webob.acceptparse.create_accept_header(
        request.environ.get("HTTP_ACCEPT", "")
    ).acceptable_offers(_OFFERS)
    as_json = bool(offers) and offers[0][0] == JSON_TYPE
    detailed = as_json and _is_admin(request, services)
    if not as_json:
        return Response(status, (OK if healthy else UNAVAILABLE).encode(), content_type=TEXT_TYPE)
    return Response(status, orjson.dumps(serialize(results, healthy, detailed)))


def healthcheck_status(request: Request, services) -> Response:
    """HEAD: 204 if the database answers and the read model is current,
    else 503; no body (oslo.middleware's ``HEAD_HEALTHY_TO_STATUS_CODES``)."""
    _, healthy = _checked(services)
    return Response(HEALTHY_STATUS if healthy else UNHEALTHY, content_type=TEXT_TYPE)


def _checked(services) -> tuple[list[CheckResult], bool]:
    """The checks' results and whether all passed; an unreachable database
    is counted in the metrics."""
    results = run_checks(services)
    healthy = all(result.available for result in results)
    if not healthy and any(
        result.check == "database" and not result.available for result in results
    ):
        services.metrics.database_unavailable.labels(PATH).inc()
    return results, healthy


def serialize(results: list[CheckResult], healthy: bool, detailed: bool) -> dict:
    """The JSON answer; its shape is in the module's docstring."""
    if not detailed:
        return {"detailed": False, "reasons": [OK if healthy else UNAVAILABLE]}
    return {
        "detailed": True,
        "now": str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None)),
        "pid": os.getpid(),
        "reasons": [
            {
                "check": result.check,
                "reason": result.reason,
                "available": result.available,
                "details": result.details,
                # oslo.middleware's name for a plugin's result.
                "class": "HealthcheckResult",
                "seconds": round(result.seconds, 6),
            }
            for result in results
        ],
    }


def run_checks(services) -> list[CheckResult]:
    """The database, then (if it answered) the candidate engine's read model."""
    database = _timed("database", lambda: _check_database(services))
    if not database.available:
        return [database, CheckResult("read_model", False, "Not checked",
                                      "the database did not answer", 0.0)]
    return [database, _timed("read_model", lambda: _check_read_model(services))]


def _check_database(services) -> str:
    with services.database.read() as connection:
        return f"revision {current_revision(connection)}"


def _check_read_model(services) -> str:
    """Bring the read model to the database's revision, as the next
    candidates request would; what it held before, and how far behind."""
    finder = services.candidate_finder
    if finder.engine != FAST_ENGINE:
        return f"no read model: candidate_engine = {finder.engine}"
    before = finder.read_models.latest
    with services.database.read(consistent=True) as connection:
        model = finder.read_models.current(connection)
    if before is None:
        return f"built at revision {model.revision}"
    behind = model.revision - before.revision
    return f"at revision {model.revision} ({behind} behind before this check)"


def _timed(check: str, run: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        details = run()
    except errors.DatabaseUnavailable as error:
        return CheckResult(check, False, "Database unavailable", str(error),
                           time.perf_counter() - started)
    except Exception as error:
        LOG.exception("Health check %s failed", check)
        return CheckResult(check, False, "Failed", f"{type(error).__name__}: {error}",
                           time.perf_counter() - started)
    return CheckResult(check, True, OK, details, time.perf_counter() - started)


def _is_admin(request: Request, services) -> bool:
    """Whether the caller (anonymous without a token) passes ``admin_api``."""
    if request.context.user_id is None:
        return False
    try:
        services.authorize(request, ADMIN_RULE, target={})
    except errors.Forbidden:
        return False
    return True
