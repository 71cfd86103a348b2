"""The app factory: configuration in, WSGI application out."""
from __future__ import annotations

import functools
import gc
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

import microversion_parse
from oslo_config import cfg

from stowage import errors
from stowage.api import auth
from stowage.api.access_log import AccessLog, Watched, Watcher
from stowage.api.errors import JSON_TYPE, Stage, accepts_json, error_response, negotiated_accept
from stowage.api.http import NUL, NUL_REFUSED, Request, Response
from stowage.api.metrics import ERROR_KEY, ROUTE_KEY, MeasuredCandidateFinder, Metrics
from stowage.api.policy import PolicyEnforcer
from stowage.api.routes import ROUTES, Endpoint, Route, Router
from stowage.api.versions import MAX_VERSION, MIN_VERSION, Version
from stowage.domain.candidates import CandidateFinder
from stowage.storage.database import Database

LOG = logging.getLogger(__name__)

SERVICE_TYPE = "placement"
ABORTED_TRANSACTION_ATTEMPTS = 5


@dataclass
class Services:
    """What handlers need besides the request: config, database, policy and
    the candidate engine."""

    conf: cfg.ConfigOpts
    database: Database
    policy: PolicyEnforcer
    # The candidate engine [stowage] candidate_engine names, with its
    # per-process read model (fast engine).
    candidate_finder: CandidateFinder
    # This process's counters (GET /metrics); shared with the other workers'
    # under stowage serve.
    metrics: Metrics = field(default_factory=Metrics)

    def authorize(self, request: Request, rule: str, target: dict | None = None) -> None:
        """Raise ``Forbidden`` unless the caller may perform ``rule``."""
        if target is None:
            target = {
                "project_id": request.context.project_id,
                "user_id": request.context.user_id,
            }
        self.policy.authorize(rule, request.context, target)


@functools.cache
def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _start(
    start_response, response: Response, method: str, handled: bool = False
) -> Iterable[bytes]:
    """Send ``response``. A HEAD goes without a body: a handler's answer
    (only /healthcheck serves HEAD) with its own content type; an error, as
    WebOb sends it upstream, as a bare HTML response."""
    headers = list(response.headers)
    status = _status_line(response.status)
    if method == "HEAD":
        content_type = response.content_type if handled else "text/html; charset=UTF-8"
        if content_type:
            headers.append(("content-type", content_type))
        if response.status != 204:
            headers.append(("content-length", "0"))
        start_response(status, headers)
        return []
    if response.content_type and response.status != 204:
        headers.append(("content-type", response.content_type))
    if isinstance(response.body, Iterator):
        # Sent as it is made, without a length (chunked): answers of
        # gigabytes are never whole in memory.
        start_response(status, headers)
        return response.body
    body = response.encoded_body()
    if response.status != 204:
        headers.append(("content-length", str(len(body))))
    start_response(status, headers)
    return [body] if response.status != 204 else []


def _request_id(environ: dict) -> str:
    request_id = environ.get("openstack.request_id")
    if not request_id:
        request_id = "req-" + str(uuid.uuid4())
        environ["openstack.request_id"] = request_id
    return request_id


VERSION_HEADER = "openstack-api-version"
# Upstream's (oslo.middleware's) name for the request id; the unprefixed
# name Stowage sent before is kept alongside.
REQUEST_ID_HEADERS = ("x-openstack-request-id", "openstack-request-id")
_VERSIONS = [f"1.{minor}" for minor in range(MIN_VERSION.minor, MAX_VERSION.minor + 1)]


class PlacementApp:
    """Negotiates the microversion, routes, checks headers, runs a handler.

    The steps run in upstream's order (header checks, route, method,
    microversion of the route, then the handler), since that order decides
    which error a bad request gets and, through ``Stage``, its headers.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.router = Router(ROUTES)
        self.body_limit = services.conf.stowage.max_request_body_size
        self.body_timeout = services.conf.stowage.client_timeout

    def __call__(self, environ, start_response):
        request = Request(environ, _request_id(environ))
        request.body_limit, request.body_timeout = self.body_limit, self.body_timeout
        stage = Stage.BEFORE_VERSION
        version: Version | None = None
        endpoint: Endpoint | None = None
        handled = False
        try:
            request.context = auth.context_from_environ(environ, request.request_id)
            version = request.version = self._negotiate_version(environ)
            stage = Stage.OUTSIDE_HANDLER
            route = self._route(request)
            # Upstream answers a wrong method, like a handler, with vary.
            stage = Stage.HANDLER
            endpoint = route.methods.get(request.method)
            if endpoint is None:
                raise errors.NotAllowed(
                    "The method specified is not allowed for this resource.", list(route.methods)
                )
            response = self._run(endpoint, request)
            handled = True
        except errors.StowageError as error:
            error = _restated(error, endpoint)
            # For the metrics: 409s by code, 503s of an unreachable database.
            environ[ERROR_KEY] = error
            response = error_response(error, environ, request.request_id, version)
            stage = _stage_of(error, stage)
        except Exception:
            LOG.exception("Unexpected error in request %s", request.request_id)
            response = error_response(_INTERNAL_ERROR, environ, request.request_id, version)
        if version is not None and stage is not Stage.BEFORE_VERSION:
            response.headers.append((VERSION_HEADER, f"{SERVICE_TYPE} {version}"))
            if stage is Stage.HANDLER:
                response.headers.append(("vary", VERSION_HEADER))
        return _start(start_response, response, request.method, handled)

    @staticmethod
    def _negotiate_version(environ: dict) -> Version:
        """The requested microversion: the minimum when none is asked for.

        Only ``OpenStack-API-Version: placement X.Y`` (or ``latest``) is
        read, as upstream does. Malformed is 400, out of range 406.
        """
        headers = microversion_parse.headers_from_wsgi_environ(environ)
        try:
            found = microversion_parse.extract_version(headers, SERVICE_TYPE, _VERSIONS)
        except ValueError as exc:
            raise errors.NotAcceptable(f"Invalid microversion: {exc}") from None
        except TypeError as exc:
            raise errors.BadRequest(f"Invalid microversion: {exc}") from None
        return Version(found.major, found.minor)

    def _route(self, request: Request) -> Route:
        """The route of ``request``'s path; raises the 400s and the 404 upstream
        gives before its handlers are reached."""
        _check_request_headers(request)
        # Read now, whether the handler wants it or not: the server would
        # otherwise read what is left of it after the answer, without a
        # timeout or a limit.
        request.body  # noqa: B018
        if NUL in request.path:
            raise errors.BadRequest(f"Invalid path: {NUL_REFUSED}")
        matched = self.router.match(request.path)
        if matched is None:
            raise errors.NotFound("")
        route, request.route_args = matched
        # The metrics' label: the template, not the path (bounded series).
        request.environ[ROUTE_KEY] = route.template
        return route

    def _run(self, endpoint: Endpoint, request: Request) -> Response:
        if endpoint.checks_before_version:
            _check_media_types(endpoint, request)
        if request.version < endpoint.min_version:
            if endpoint.too_old_status == 405:
                raise errors.NotAllowed("", [])
            raise errors.NotFound("")
        if not endpoint.checks_before_version:
            _check_media_types(endpoint, request)
        # A transaction the database aborted left nothing behind, so the
        # request can simply run again; persistent contention becomes a 409.
        for attempt in range(1, ABORTED_TRANSACTION_ATTEMPTS + 1):
            try:
                return endpoint.handler(request, self.services)
            except errors.TransactionAborted:
                if attempt == ABORTED_TRANSACTION_ATTEMPTS:
                    raise
                LOG.info("Request %s: transaction aborted, retrying", request.request_id)
                self.services.metrics.retries.inc()
        raise AssertionError("unreachable")


_INTERNAL_ERROR = errors.InternalError("An unexpected error occurred; see the service log.")


def _restated(error: errors.StowageError, endpoint: Endpoint | None) -> errors.StowageError:
    """A missing provider as the endpoint's handler restates it, if it does."""
    if isinstance(error, errors.ProviderNotFound) and endpoint and endpoint.missing_provider:
        return errors.NotFound(
            endpoint.missing_provider.format(uuid=error.uuid, detail=error.detail)
        )
    return error


def _stage_of(error: errors.StowageError, reached: Stage) -> Stage:
    """The stage whose headers ``error`` gets, having been raised at ``reached``.

    Upstream's handlers let policy failures escape to an outer layer, which
    answers without ``vary``; so do errors marked ``escapes_handler``.
    """
    if reached is Stage.HANDLER and (isinstance(error, errors.Forbidden) or error.escapes_handler):
        return Stage.OUTSIDE_HANDLER
    if isinstance(error, errors.Unauthorized):
        return Stage.BEFORE_VERSION
    return reached


def _check_media_types(endpoint: Endpoint, request: Request) -> None:
    """406 for an Accept that excludes JSON, 415 for a body not typed as JSON."""
    if endpoint.json_only and not accepts_json(negotiated_accept(request.environ)):
        raise errors.NotAcceptable("Only application/json is provided")
    if endpoint.wants_json_body(request.version):
        # The media type without parameters, compared as upstream does.
        content_type = request.environ.get("CONTENT_TYPE") or ""
        if content_type.split(";", 1)[0] != JSON_TYPE:
            raise errors.UnsupportedMediaType(
                f"The media type {content_type.split(';', 1)[0] or 'None'} is not "
                f"supported, use {JSON_TYPE}"
            )


def _check_request_headers(request: Request) -> None:
    """Upstream's body header rules: an integer length, typed when not empty."""
    length = request.environ.get("CONTENT_LENGTH")
    if length:
        try:
            length_value = int(length)
        except ValueError:
            raise errors.BadRequest("content-length header must be an integer") from None
        if length_value > 0 and not request.environ.get("CONTENT_TYPE"):
            raise errors.BadRequest("content-type header required when content-length > 0")


class FaultBarrier:
    """Outermost layer: every answer gets the request id, and anything
    unexpected (also from middleware such as authentication) a logged 500."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        request_id = _request_id(environ)

        def start_with_request_id(status, headers, exc_info=None):
            headers.extend((name, request_id) for name in REQUEST_ID_HEADERS)
            return start_response(status, headers, exc_info)

        try:
            return self.application(environ, start_with_request_id)
        except errors.StowageError as error:
            # Raised by middleware outside the app (authentication).
            response = error_response(error, environ, request_id, None)
        except Exception:
            LOG.exception("Unexpected error in request %s", request_id)
            response = error_response(_INTERNAL_ERROR, environ, request_id, None)
        return _start(start_with_request_id, response, environ.get("REQUEST_METHOD", ""))


GC_YOUNG_THRESHOLD = 50_000


def create_app(
    conf: cfg.ConfigOpts,
    database: Database | None = None,
    prepare_engine: bool = False,
    metrics: Metrics | None = None,
):
    """Build the WSGI application for ``conf``.

    ``database`` lets a caller share an already-open database (tests and
    fixtures); otherwise one is opened from ``[placement_database]``. With
    ``prepare_engine`` (a serving worker) the candidate engine builds its
    read model in the background (``prepare_candidates``) while the app
    starts answering. ``metrics`` defaults to this process's own, or the
    workers' shared ones under ``stowage serve`` (``Metrics.for_process``).
    """
    if metrics is None:
        metrics = Metrics.for_process()
    if database is None:
        database = Database.from_conf(conf)
    # A big candidates answer allocates a few hundred thousand dicts and
    # tuples; at the default threshold (700) the collector would pass over
    # them hundreds of times per request. Requests make little cyclic
    # garbage, so collect the youngest generation less often.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    services = Services(
        conf=conf,
        database=database,
        policy=PolicyEnforcer(conf),
        candidate_finder=MeasuredCandidateFinder(
            metrics, conf.stowage.candidate_engine, spread=conf.stowage.spread_limited_candidates
        ),
        metrics=metrics,
    )
    if prepare_engine:
        threading.Thread(
            target=prepare_candidates, args=(services,), name="stowage-read-model", daemon=True
        ).start()
    return assemble_middleware(PlacementApp(services), conf, metrics)


def create_unavailable_app(detail: str):
    """A WSGI application answering every request 503 (Placement's error
    format) with ``detail``: for a server that must keep running on a
    configuration Stowage cannot serve."""

    def unavailable(environ, start_response):
        raise errors.ServiceUnavailable(detail)

    return FaultBarrier(unavailable)


def prepare_candidates(services: Services) -> None:
    """Build the candidate engine's read model, so that a worker's first
    candidates request does not wait for it (requests arriving meanwhile
    wait for this build instead of starting their own). A failure is
    logged; the first request then builds the model."""
    try:
        with services.database.read(consistent=True) as connection:
            services.candidate_finder.prepare(connection)
    except Exception:
        LOG.exception("Could not build the read model ahead of requests")


def assemble_middleware(application, conf: cfg.ConfigOpts, metrics: Metrics | None = None):
    """Wrap the app, innermost first; the last wrapper sees a request first."""
    # Authentication sits inside CORS so that preflight OPTIONS requests,
    # which carry no token, are answered by CORS.
    if conf.api.auth_strategy == "noauth2":
        application = auth.NoAuth2(application)
    else:
        # Raises KeystoneConfigError for a [keystone_authtoken] that cannot
        # validate tokens: no app rather than a 500 on every request.
        application = auth.Keystone(application, conf)
    # CORS only when an operator configured allowed origins, as upstream.
    if _cors_configured(conf):
        from oslo_middleware import cors

        application = cors.CORS(application, conf)
    # Converts stray exceptions into JSON 500s and answers the 401s raised
    # by authentication.
    application = FaultBarrier(application)
    # Outermost, so that the access log and the metrics see every answer,
    # the fault barrier's 500s and 401s too.
    watchers: list[Watcher] = [AccessLog(conf.stowage.slow_request_seconds)]
    if metrics is not None:
        watchers.append(metrics.request_done)
    return Watched(application, watchers)


def _cors_configured(conf: cfg.ConfigOpts) -> bool:
    try:
        return bool(conf.cors.allowed_origin)
    except cfg.NoSuchOptError:
        return False
    except cfg.NoSuchGroupError:
        return False
