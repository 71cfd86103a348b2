"""The one mapping from exceptions to Placement's JSON error bodies.

Body shape (``code`` only from microversion 1.23)::

    {"errors": [{"status": 404, "title": "Not Found",
                 "detail": "The resource could not be found.\\n\\n ...",
                 "request_id": "req-...", "code": "placement.undefined_code"}]}
"""
from __future__ import annotations

from html import escape

import orjson

from stowage import errors
from stowage.api.http import Response
from stowage.api.versions import ERROR_CODES, Version

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
}

# The general explanation that leads every detail, as clients have long seen it.
EXPLANATIONS = {
    400: "The server could not comply with the request since it is either "
    "malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the "
    "document you requested. Either you supplied the wrong credentials (e.g., "
    "bad password), or your browser does not understand how to supply the "
    "credentials required.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    406: "The resource could not be generated that was acceptable to your browser.",
    409: "There was a conflict when trying to complete your request.",
    415: "The request media type is not supported by this server.",
    500: "The server has either erred or is incapable of performing the "
    "requested operation.",
}


def wants_html(accept: str | None) -> bool:
    """True when the client asked for HTML and not for JSON."""
    if not accept:
        return False
    accept = accept.lower()
    return "text/html" in accept and "json" not in accept and "*/*" not in accept


def error_response(
    error: errors.StowageError,
    version: Version,
    request_id: str,
    accept: str | None = None,
) -> Response:
    """Render ``error`` in Placement's format for the negotiated microversion."""
    status = error.status
    title = TITLES.get(status, "Error")
    detail = f"{EXPLANATIONS.get(status, '')}\n\n {error.detail}  "
    headers = []
    if isinstance(error, errors.NotAllowed):
        headers.append(("allow", ", ".join(error.allowed)))
    if wants_html(accept):
        body = (
            f"<html><head><title>{status} {title}</title></head><body>"
            f"<h1>{status} {title}</h1>{escape(detail)}</body></html>"
        ).encode()
        return Response(status, body, headers, content_type="text/html; charset=UTF-8")
    entry = {"status": status, "title": title, "detail": detail, "request_id": request_id}
    if version >= ERROR_CODES:
        entry["code"] = error.code
    return Response(status, orjson.dumps({"errors": [entry]}), headers)
