"""Request and response objects: the thin WSGI layer every handler sees.

We write this ourselves instead of using WebOb or a framework because
Placement's contract (error bodies, 405s from the route table, microversion
headers on every answer) is easier to keep exact in a few dozen lines, and it
is faster; see docs/decisions.md.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from stowage import errors
from stowage.api.versions import CACHE_HEADERS, Version

# How every refused query string and body begins, as upstream words them.
QUERY_LEAD = "Invalid query string parameters: "
BODY_LEAD = "JSON does not validate: "
# Refused everywhere, as no backend stores it alike (PostgreSQL refuses it in
# text, the others keep it) and no Placement name or id contains it.
NUL = "\x00"
NUL_REFUSED = "NUL characters (\\u0000) are not allowed"
_TOO_LARGE = "The request body is larger than {limit} bytes."

JSON_TYPE = "application/json"


class Request:
    """One HTTP request, parsed once at the edge."""

    __slots__ = (
        "_body",
        "_query",
        "body_limit",
        "body_timeout",
        "context",
        "environ",
        "method",
        "path",
        "request_id",
        "route_args",
        "version",
    )

    def __init__(self, environ: dict, request_id: str) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "") or "/"
        # WSGI hands us latin-1 decoded bytes; resource class and trait names
        # in paths may be UTF-8.
        with contextlib.suppress(UnicodeError):
            path = path.encode("latin-1").decode("utf-8")
        self.path: str = path
        self.route_args: dict[str, str] = {}
        self.version: Version = Version(1, 0)
        self.context: Any = None
        self.request_id = request_id
        self._query: dict[str, list[str]] | None = None
        self._body: bytes | None = None
        # Set by the app from [stowage] max_request_body_size and
        # client_timeout.
        self.body_limit = 0
        self.body_timeout = 0.0

    def header(self, name: str, default: str | None = None) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        return self.environ.get(key, default)

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters, each name mapping to every value given."""
        if self._query is None:
            raw = self.environ.get("QUERY_STRING", "")
            try:
                self._query = parse_qs(raw, keep_blank_values=True, errors="strict")
            except UnicodeDecodeError as exc:
                # Upstream's text: its query validation reports the codec's error.
                raise errors.BadRequest(f"{QUERY_LEAD}{exc}") from None
            if NUL in raw or "%00" in raw:
                for name, values in self._query.items():
                    if NUL in name or any(NUL in value for value in values):
                        raise errors.BadRequest(f"{QUERY_LEAD}{NUL_REFUSED}")
        return self._query

    @property
    def body(self) -> bytes:
        """The body, sized by Content-Length or sent chunked; 413 past
        ``body_limit`` bytes (0: no limit), 408 if the client stalls for
        ``body_timeout`` seconds (0: no timeout) while sending it."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> bytes:
        environ, limit = self.environ, self.body_limit
        stream = environ.get("wsgi.input")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise errors.BadRequest("Invalid Content-Length header.") from None
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if stream is None or (length <= 0 and not chunked):
            return b""
        client = environ.get("gunicorn.socket")
        if limit and length > limit:
            _stop_reading(client)
            raise errors.PayloadTooLarge(_TOO_LARGE.format(limit=limit))
        # gunicorn hands over the client's socket: a timeout on it bounds
        # each wait for the client's next bytes.
        if client is not None and self.body_timeout:
            client.settimeout(self.body_timeout)
        try:
            body = stream.read(length) if length > 0 else stream.read(limit + 1 if limit else -1)
        except TimeoutError:
            _stop_reading(client)
            raise errors.RequestTimeout("The request body did not arrive in time.") from None
        finally:
            if client is not None and self.body_timeout:
                client.settimeout(None)
        if limit and len(body) > limit:
            _stop_reading(client)
            raise errors.PayloadTooLarge(_TOO_LARGE.format(limit=limit))
        return body

    def absolute_url(self, path: str) -> str:
        """``path`` (below the app's mount point) as an absolute URL.

        Upstream's ``location`` headers are absolute (WebOb makes them so),
        built from the Host header the client sent, as PEP 3333 describes.
        """
        scheme = self.environ.get("wsgi.url_scheme", "http")
        host = self.environ.get("HTTP_HOST")
        if not host:
            host = self.environ.get("SERVER_NAME", "localhost")
            port = str(self.environ.get("SERVER_PORT", ""))
            if port and (scheme, port) not in (("http", "80"), ("https", "443")):
                host = f"{host}:{port}"
        return f"{scheme}://{host}{self.environ.get('SCRIPT_NAME', '')}{path}"

    def json_body(self) -> Any:
        """The body parsed as JSON; 400 if it is not JSON.

        orjson parses; what it refuses is parsed again by the standard
        library, whose reading upstream has (NaN, integers beyond 64 bits)
        and whose error message it quotes.
        """
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            try:
                data = json.loads(self.body.decode("utf-8"))
            except ValueError as exc:
                raise errors.BadRequest(f"Malformed JSON: {exc}") from None
        # JSON can hold a NUL only escaped.
        if b"\\u0000" in self.body and _holds_nul(data):
            raise errors.BadRequest(f"{BODY_LEAD}{NUL_REFUSED} in strings")
        return data


def _stop_reading(client: socket.socket | None) -> None:
    """End the connection once the answer is sent: the rest of the body is
    not read, so it cannot carry another request (a WSGI application may not
    send ``Connection: close``; gunicorn closes a connection it reads the end
    of)."""
    if client is not None:
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RD)


def _holds_nul(data: Any) -> bool:
    """Whether any string in ``data`` (keys too) contains a NUL."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


@dataclass
class Response:
    """What a handler returns; ``body`` is JSON-encoded unless it is bytes,
    or an iterator of bytes, sent as it is made (without a length)."""

    status: int = 200
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = JSON_TYPE

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def set_last_modified(self, when: datetime.datetime) -> None:
        """Add 1.15's caching headers; a naive ``when`` is taken as UTC."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        self.headers.append(("last-modified", format_datetime(when, usegmt=True)))
        self.headers.append(("cache-control", "no-cache"))

    def with_cache_headers(
        self,
        version: Version,
        stamps: Iterable[datetime.datetime | None] = (),
        now_if_unknown: bool = True,
    ) -> Response:
        """From 1.15: cache-control, and last-modified as the newest of
        ``stamps``; when none is known, now (as for a resource just written),
        or no last-modified at all where upstream sends none."""
        if version >= CACHE_HEADERS:
            known = [stamp for stamp in stamps if stamp is not None]
            if known:
                self.set_last_modified(max(known))
            elif now_if_unknown:
                self.set_last_modified(datetime.datetime.now(datetime.UTC))
            else:
                self.headers.append(("cache-control", "no-cache"))
        return self

    def encoded_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return orjson.dumps(self.body)


def no_content() -> Response:
    return Response(status=204, content_type=None)
