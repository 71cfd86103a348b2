"""Prometheus metrics: one ``Metrics`` per app, read at ``GET /metrics``.

Under ``stowage serve`` every gunicorn worker counts in its own files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up
by ``stowage.cmd.serve``), and ``GET /metrics``, whichever worker answers
it, sums them all. Without that directory (tests, ``stowage.wsgi`` under
another server) the numbers are this process's own.

What is counted, and where:

- ``Metrics.request_done`` (told of every answer by ``access_log.Watched``,
  outside the fault barrier: 500s and 401s too): requests by route template (never the raw
  path, so that uuids cannot make new series), method, status and
  microversion; latency by route and method; 409s by error code; 503s
  for an unreachable database.
- ``PlacementApp``: requests re-run after the database aborted their
  transaction; the allocation handlers (``replace_allocations``'s
  ``on_retry``): allocation writes re-run after a lost generation race or an
  aborted transaction, in the same counter.
- ``MeasuredCandidateFinder``: candidates per answer, empty answers by the
  reason that ruled out the most trees, and the read model's refreshes
  (time taken, revisions behind, revision held).
"""
from __future__ import annotations

import functools
import os
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Connection

from stowage import errors
from stowage.api.access_log import Finished
from stowage.api.routes import ROUTES, Router
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import CandidateRequest, EngineOptions
from stowage.candidates.results import CandidateResult
from stowage.domain.candidates import CandidateFinder, ReadModelCache

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Where the app notes, for the middleware, what only it knows of a request.
ROUTE_KEY = "stowage.route"
ERROR_KEY = "stowage.error"
# The route label of a path no route matches (404s, probes for other services).
NO_ROUTE = "unmatched"
NO_VERSION = "none"

# Seconds: from a cached GET (a millisecond) to a candidates answer on a
# large cloud.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CANDIDATE_BUCKETS = (0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000)
REFRESH_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120)
LAG_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 10000)


class Metrics:
    """Every metric Stowage keeps, in a registry of its own.

    ``multiprocess_dir``: prometheus_client's directory shared by the
    workers (None: this process counts alone). prometheus_client itself
    reads it from ``PROMETHEUS_MULTIPROC_DIR``; ``for_process`` passes that on.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "stowage_http_requests", "HTTP requests answered.",
            ("route", "method", "status", "microversion"), registry=registry)
        # No status or microversion label: each multiplies the buckets.
        self.request_seconds = Histogram(
            "stowage_http_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer.",
            ("route", "method"), buckets=LATENCY_BUCKETS, registry=registry)
        self.conflicts = Counter(
            "stowage_conflicts", "409 answers, by Placement error code.",
            ("route", "code"), registry=registry)
        self.retries = Counter(
            "stowage_transaction_retries",
            "Transactions run again: a request whose transaction the database aborted "
            "(deadlock, serialisation failure), or an allocation write that lost a "
            "provider generation race or was aborted (retried within [placement] "
            "allocation_conflict_retry_count); persistent contention ends in a 409.",
            registry=registry)
        self.database_unavailable = Counter(
            "stowage_database_unavailable",
            "Requests answered 503 because the database could not be reached or "
            "could not store anything (health checks included).",
            ("route",), registry=registry)
        self.candidates = Histogram(
            "stowage_allocation_candidates_returned",
            "Allocation candidates per GET /allocation_candidates answer (a run of "
            "GET /stowage/allocation_candidates/explain counts too).",
            buckets=CANDIDATE_BUCKETS, registry=registry)
        # The reason label is a reason code (a fixed set): bounded series.
        self.empty_candidates = Counter(
            "stowage_allocation_candidates_empty",
            "GET /allocation_candidates answers with no candidate, by the reason that "
            "ruled out the most trees (see GET /stowage/allocation_candidates/explain).",
            ("reason",), registry=registry)
        self.refresh_seconds = Histogram(
            "stowage_read_model_refresh_seconds",
            "Time a request waited for the fast engine's read model to be brought "
            "to the database's revision (built, or the changed trees reloaded).",
            buckets=REFRESH_BUCKETS, registry=registry)
        self.refresh_lag = Histogram(
            "stowage_read_model_lag_revisions",
            "Revisions the read model was behind the database when a request "
            "refreshed it.", buckets=LAG_BUCKETS, registry=registry)
        # One series per live worker ('liveall' adds a pid label); a dead
        # worker's goes with it (mark_process_dead).
        self.model_revision = Gauge(
            "stowage_read_model_revision",
            "The database revision each worker's read model holds.",
            registry=registry, multiprocess_mode="liveall")

    @classmethod
    def for_process(cls) -> Metrics:
        """Metrics shared by the workers when ``stowage serve`` set them up."""
        directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        return cls(directory if directory and os.path.isdir(directory) else None)

    def request_done(self, finished: Finished) -> None:
        """Count one answered request (a watcher of ``access_log.Watched``)."""
        environ = finished.environ
        code = finished.status.split(" ", 1)[0]
        route = environ.get(ROUTE_KEY) or self._template_of(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "")
        version = finished.header("openstack-api-version")
        microversion = version.removeprefix("placement ") if version else NO_VERSION
        self.requests.labels(route, method, code, microversion).inc()
        self.request_seconds.labels(route, method).observe(finished.seconds)
        error = environ.get(ERROR_KEY)
        if code == "409":
            self.conflicts.labels(route, getattr(error, "code", None) or "none").inc()
        elif isinstance(error, errors.DatabaseUnavailable):
            self.database_unavailable.labels(route).inc()

    @functools.cached_property
    def _router(self) -> Router:
        return Router(ROUTES)

    def _template_of(self, path: str) -> str:
        """The route of a request the app did not route (authentication
        refused it first), or ``NO_ROUTE``."""
        matched = self._router.match(path)
        return matched[0].template if matched else NO_ROUTE

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the text format ``accept`` asks for, and its media type."""
        encoder, media_type = choose_encoder(accept)
        if self.multiprocess_dir is None:
            return encoder(self.registry), media_type
        # Read anew from every worker's files on each scrape, as
        # prometheus_client's multiprocess mode requires.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return encoder(registry), media_type


class MeasuredReadModelCache(ReadModelCache):
    """The read model cache, noting each refresh once (not once per thread
    that waited for it)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics
        self._noted: tuple[int, int] | None = None
        self._noting = threading.Lock()

    def current(self, connection: Connection) -> ReadModel:
        before = self.latest
        before_revision = before.revision if before is not None else 0
        started = time.perf_counter()
        model = super().current(connection)
        if model is before and model.revision == before_revision:
            return model
        seconds = time.perf_counter() - started
        # A model patched in place keeps its identity; the pair names a refresh.
        refresh = (id(model), model.revision)
        with self._noting:
            if refresh == self._noted:
                return model
            self._noted = refresh
        self.metrics.refresh_seconds.observe(seconds)
        self.metrics.refresh_lag.observe(model.revision - before_revision)
        self.metrics.model_revision.set(model.revision)
        return model


class MeasuredCandidateFinder(CandidateFinder):
    """The candidate finder, counting its answers' candidates."""

    def __init__(self, metrics: Metrics, engine: str, spread: bool = False) -> None:
        super().__init__(engine, spread=spread)
        self.metrics = metrics
        self.read_models = MeasuredReadModelCache(metrics)

    def find(
        self, connection: Connection, request: CandidateRequest, options: EngineOptions
    ) -> CandidateResult:
        result = super().find(connection, request, options)
        self.metrics.candidates.observe(len(result.candidates))
        if not result.candidates:
            self.metrics.empty_candidates.labels(_main_reason(result)).inc()
        return result


def _main_reason(result: CandidateResult) -> str:
    """The reason that ruled out the most trees; ``unknown_name`` when the
    engine did not run (an earlier group matched nothing before an unknown
    name), ``none`` when there was no tree at all."""
    explanation = result.explanation
    if not explanation.stages:
        return "unknown_name"
    if not explanation.excluded_trees:
        return "none"
    return str(explanation.excluded_trees[0].reason)
