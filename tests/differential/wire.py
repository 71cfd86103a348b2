"""Requests and answers as both services see them, and the WSGI environ built from them.

Both services get their WSGI environ from ``environ_for``: Stowage when it is
called in-process, upstream inside its wrapper server from the bytes it
received. So a request reaches both apps identically, and no difference can
come from two servers building environs their own way (``wsgiref`` for one
invents ``content-type: text/plain`` when none is sent).

This module uses the standard library only: the upstream wrapper server
imports it in a process that must not import Stowage.
"""
from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

SERVER_NAME = "localhost"
SERVER_PORT = "80"


@dataclass(frozen=True)
class WireRequest:
    """One concrete HTTP request: what goes over the wire, nothing templated."""

    method: str
    target: str  # path and query string, percent-encoded
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass
class Answer:
    """One HTTP answer: status, headers with lower-cased names, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers,
                "body": self.body.decode("utf-8", "backslashreplace")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(data["status"], dict(data["headers"]), data["body"].encode("utf-8"))


def environ_for(request: WireRequest) -> dict[str, Any]:
    """The WSGI environ a server such as gunicorn builds for ``request``.

    ``PATH_INFO`` is percent-decoded (as a WSGI "bytes as latin-1" string),
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` are present only when the request
    carries those headers, and every other header becomes ``HTTP_*``.
    """
    path, _sep, query = request.target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": SERVER_NAME,
        "SERVER_PORT": SERVER_PORT,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:
            # Repeated headers are joined, as RFC 9110 and gunicorn do.
            environ[key] += "," + value
        else:
            environ[key] = value
    if request.body and "CONTENT_LENGTH" not in environ:
        # A client always frames a body with its length (the upstream
        # transport sends the header; in-process there is none to read).
        environ["CONTENT_LENGTH"] = str(len(request.body))
    return environ


def call_wsgi(app: Any, request: WireRequest) -> Answer:
    """Call a WSGI ``app`` with ``request`` and collect its whole answer."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = int(status.split()[0])
        captured["headers"] = headers
        return lambda data: None

    chunks = app(environ_for(request), start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    headers: dict[str, str] = {}
    for name, value in captured["headers"]:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Answer(captured["status"], headers, body)
