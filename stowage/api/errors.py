"""The one mapping from exceptions to Placement's error answers.

Clients have long parsed what upstream's WebOb-based stack sends, so the
texts are WebOb's own: each status's explanation and template, tags
stripped from JSON and plain text, the format picked from ``Accept`` the way
WebOb picks it. JSON body (``code`` from microversion 1.23; ``min_version``
and ``max_version`` only on a 406 for an unacceptable microversion)::

    {"errors": [{"status": 404, "title": "Not Found",
                 "detail": "The resource could not be found.\\n\\n ...",
                 "code": "placement.undefined_code", "request_id": "req-..."}]}

Which microversion headers an error carries depends on how far the request
got (``Stage``), as it does upstream.
"""
from __future__ import annotations

import enum
from typing import Any

import webob.acceptparse
import webob.exc

from stowage import errors
from stowage.api.http import Response
from stowage.api.versions import ERROR_CODES, MAX_VERSION, MIN_VERSION, Version

JSON_TYPE = "application/json"
# Upstream's request log treats a missing Accept, or exactly */*, as JSON, so
# that errors are JSON unless a client asks for something else.
DEFAULT_ACCEPT = JSON_TYPE
_OFFERS = ["text/html", JSON_TYPE]


class Stage(enum.Enum):
    """How far a request got when it failed, which decides its headers."""

    # Authentication or microversion negotiation: no microversion headers.
    BEFORE_VERSION = "before_version"
    # Past negotiation but not answered by a handler (no route, header
    # checks, policy, lookups upstream lets escape): the version, no vary.
    OUTSIDE_HANDLER = "outside_handler"
    # Answered by a handler: the version and vary, like any answer.
    HANDLER = "handler"


def negotiated_accept(environ: dict) -> str:
    """The Accept header as upstream's stack reads it (missing or */* is JSON)."""
    accept = environ.get("HTTP_ACCEPT")
    return DEFAULT_ACCEPT if not accept or accept == "*/*" else accept


def error_media_type(accept: str) -> str:
    """HTML, JSON or plain text: the first of WebOb's offers ``accept`` takes."""
    offers = webob.acceptparse.create_accept_header(accept).acceptable_offers(_OFFERS)
    return offers[0][0] if offers else "text/plain"


def accepts_json(accept: str) -> bool:
    """Whether a handler serving only JSON may answer (upstream's check_accept):
    an Accept header WebOb cannot parse counts as none."""
    if accept == JSON_TYPE:
        # What nearly every request says (or is taken to say): no parse.
        return True
    header = webob.acceptparse.create_accept_header(accept)
    return not header or bool(header.acceptable_offers([JSON_TYPE]))


def error_response(
    error: errors.StowageError,
    environ: dict,
    request_id: str,
    version: Version | None,
) -> Response:
    """Render ``error`` for ``version`` (None: no microversion was negotiated).

    ``environ`` fills WebOb's templates that name request headers (405 the
    method, 406 the Accept header, 415 the content type).
    """
    environ = {**environ, "HTTP_ACCEPT": negotiated_accept(environ)}
    if not environ.get("CONTENT_TYPE"):
        # Upstream names a missing content type so in its 415.
        environ["CONTENT_TYPE"] = "None"
    headers = []
    if isinstance(error, errors.NotAllowed) and error.allowed:
        headers.append(("allow", ", ".join(error.allowed)))

    detail = error.detail or None
    if isinstance(error, errors.Unauthorized):
        # Answered by the authentication layer, which upstream leaves to
        # WebOb's own JSON form ({"message", "code", "title"}), saying no more.
        formatter = None
        detail = None
    else:

        def formatter(body: str, status: str, title: str, environ: dict) -> dict[str, Any]:
            return {"errors": [_error_entry(error, body, title, request_id, version)]}

    exception = webob.exc.status_map[error.status](detail=detail)
    if formatter is not None:
        exception.json_formatter = formatter
    media_type = error_media_type(environ["HTTP_ACCEPT"])
    if media_type == JSON_TYPE:
        body = exception.json_body(environ).encode()
        content_type = JSON_TYPE
    elif media_type == "text/html":
        body = exception.html_body(environ).encode()
        content_type = "text/html; charset=UTF-8"
    else:
        body = exception.plain_body(environ).encode()
        content_type = "text/plain; charset=UTF-8"
    return Response(error.status, body, headers, content_type=content_type)


def _error_entry(
    error: errors.StowageError, body: str, title: str, request_id: str, version: Version | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": error.status,
        "title": title,
        # WebOb's body with its markup gone: "<br /><br />" becomes a blank
        # line, and any newline in the detail a space.
        "detail": webob.exc.strip_tags(body),
    }
    if version is not None and version >= ERROR_CODES:
        entry["code"] = error.code
    entry["request_id"] = request_id
    if error.status == 406 and version is None:
        entry["max_version"] = str(MAX_VERSION)
        entry["min_version"] = str(MIN_VERSION)
    return entry
