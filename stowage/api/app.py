"""The app factory: configuration in, WSGI application out."""
from __future__ import annotations

import gc
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import microversion_parse
from oslo_config import cfg

from stowage import errors
from stowage.api import auth
from stowage.api.errors import error_response
from stowage.api.http import Request, Response
from stowage.api.policy import PolicyEnforcer
from stowage.api.routes import ROUTES, Router
from stowage.api.versions import MAX_VERSION, MIN_VERSION, Version
from stowage.domain.candidates import CandidateFinder
from stowage.storage.database import Database

LOG = logging.getLogger(__name__)

SERVICE_TYPE = "placement"
ABORTED_TRANSACTION_ATTEMPTS = 5
LEGACY_VERSION_HEADERS = ["openstack-placement-api-version", "x-openstack-placement-api-version"]
_STATUS_LINES = {
    200: "200 OK",
    201: "201 Created",
    204: "204 No Content",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    406: "406 Not Acceptable",
    409: "409 Conflict",
    415: "415 Unsupported Media Type",
    500: "500 Internal Server Error",
    501: "501 Not Implemented",
}


@dataclass
class Services:
    """What handlers need besides the request: config, database and policy."""

    conf: cfg.ConfigOpts
    database: Database
    policy: PolicyEnforcer
    # The candidate engine [stowage] candidate_engine names, with its
    # per-process read model (fast engine).
    candidate_finder: CandidateFinder | None = None

    def authorize(self, request: Request, rule: str, target: dict | None = None) -> None:
        """Raise ``Forbidden`` unless the caller may perform ``rule``."""
        if target is None:
            target = {
                "project_id": request.context.project_id,
                "user_id": request.context.user_id,
            }
        self.policy.authorize(rule, request.context, target)


def _start(start_response, response: Response) -> Iterable[bytes]:
    headers = list(response.headers)
    if response.content_type and response.status != 204:
        headers.append(("content-type", response.content_type))
    status = _STATUS_LINES.get(response.status, f"{response.status} Unknown")
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


class PlacementApp:
    """Negotiates the microversion, routes, checks headers, runs a handler."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.router = Router(ROUTES)

    def __call__(self, environ, start_response):
        request = Request(environ, _request_id(environ))
        version_header = ("openstack-api-version", f"{SERVICE_TYPE} {request.version}")
        try:
            request.version = self._negotiate_version(environ)
            version_header = ("openstack-api-version", f"{SERVICE_TYPE} {request.version}")
            response = self._dispatch(request)
        except errors.StowageError as error:
            response = error_response(
                error, request.version, request.request_id, environ.get("HTTP_ACCEPT")
            )
        response.headers.append(version_header)
        response.headers.append(("vary", "openstack-api-version"))
        response.headers.append(("openstack-request-id", request.request_id))
        return _start(start_response, response)

    @staticmethod
    def _negotiate_version(environ: dict) -> Version:
        """The requested microversion: the minimum when none is asked for.

        ``OpenStack-API-Version: placement X.Y`` (or ``latest``) wins; the
        pre-standard ``[X-]OpenStack-Placement-API-Version: X.Y`` is honoured
        when it is absent. Malformed is 400, out of range 406.
        """
        headers = microversion_parse.headers_from_wsgi_environ(environ)
        asked = microversion_parse.get_version(
            headers, SERVICE_TYPE, legacy_headers=LEGACY_VERSION_HEADERS
        )
        if asked is None:
            return MIN_VERSION
        if asked == "latest":
            return MAX_VERSION
        try:
            found = microversion_parse.parse_version_string(asked)
        except TypeError as exc:
            raise errors.BadRequest(f"Invalid microversion: {exc}")
        version = Version(found.major, found.minor)
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise errors.NotAcceptable(f"Invalid microversion: Unacceptable version header: {asked}")
        return version

    def _dispatch(self, request: Request) -> Response:
        matched = self.router.match(request.path)
        if matched is None:
            raise errors.NotFound("The resource could not be found.")
        route, args = matched
        endpoint = route.methods.get(request.method)
        if endpoint is None:
            raise errors.NotAllowed(
                f"The method {request.method} is not allowed for this resource.",
                sorted(route.methods),
            )
        if request.version < endpoint.min_version:
            raise errors.NotFound("The resource could not be found.")
        _check_request_headers(request)
        request.route_args = args
        request.context = auth.context_from_environ(request.environ, request.request_id)
        # A transaction the database aborted left nothing behind, so the
        # request can simply run again; persistent contention becomes a 409.
        for attempt in range(1, ABORTED_TRANSACTION_ATTEMPTS + 1):
            try:
                return endpoint.handler(request, self.services)
            except errors.TransactionAborted:
                if attempt == ABORTED_TRANSACTION_ATTEMPTS:
                    raise
                LOG.info("Request %s: transaction aborted, retrying", request.request_id)
        raise AssertionError("unreachable")


def _check_request_headers(request: Request) -> None:
    """Upstream's header rules: JSON out, typed bodies, integer lengths."""
    accept = request.header("accept")
    # Upstream checks Accept on reads only: a POST that says it accepts
    # text/plain still gets its 201 (or its JSON 400).
    if accept and request.method == "GET" and not _accepts_json(accept):
        raise errors.NotAcceptable("Only application/json is provided")
    length = request.environ.get("CONTENT_LENGTH")
    if length:
        try:
            length_value = int(length)
        except ValueError:
            raise errors.BadRequest("content-length header must be an integer")
        if length_value > 0 and not request.environ.get("CONTENT_TYPE"):
            raise errors.BadRequest("content-type header required")


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


class FaultBarrier:
    """Outermost layer: anything unexpected becomes a logged JSON 500."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        request_id = _request_id(environ)
        try:
            return self.application(environ, start_response)
        except errors.StowageError as error:
            # Raised by middleware outside the app (authentication).
            response = error_response(error, MIN_VERSION, request_id, environ.get("HTTP_ACCEPT"))
        except Exception:
            LOG.exception("Unexpected error in request %s", request_id)
            response = error_response(
                errors.InternalError("An unexpected error occurred; see the service log."),
                MIN_VERSION,
                request_id,
                environ.get("HTTP_ACCEPT"),
            )
        return _start(start_response, response)


GC_YOUNG_THRESHOLD = 50_000


def create_app(
    conf: cfg.ConfigOpts, database: Database | None = None, prepare_engine: bool = False
):
    """Build the WSGI application for ``conf``.

    ``database`` lets a caller share an already-open database (tests and
    fixtures); otherwise one is opened from ``[placement_database]``. With
    ``prepare_engine`` (a serving worker) the candidate engine builds its
    read model in the background (``prepare_candidates``) while the app
    starts answering.
    """
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
        candidate_finder=CandidateFinder(conf.stowage.candidate_engine),
    )
    if prepare_engine:
        threading.Thread(
            target=prepare_candidates, args=(services,), name="stowage-read-model", daemon=True
        ).start()
    return assemble_middleware(PlacementApp(services), conf)


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


def assemble_middleware(application, conf: cfg.ConfigOpts):
    """Wrap the app, innermost first; the last wrapper sees a request first."""
    # Authentication sits inside CORS so that preflight OPTIONS requests,
    # which carry no token, are answered by CORS.
    if conf.api.auth_strategy == "noauth2":
        application = auth.NoAuth2(application)
    else:
        application = auth.Keystone(application, conf)
    # CORS only when an operator configured allowed origins, as upstream.
    if _cors_configured(conf):
        from oslo_middleware import cors

        application = cors.CORS(application, conf)
    # Outermost: converts stray exceptions into JSON 500s and answers the
    # 401s raised by authentication.
    return FaultBarrier(application)


def _cors_configured(conf: cfg.ConfigOpts) -> bool:
    try:
        return bool(conf.cors.allowed_origin)
    except cfg.NoSuchOptError:
        return False
    except cfg.NoSuchGroupError:
        return False
