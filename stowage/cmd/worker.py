"""The gunicorn worker ``stowage serve`` runs: gunicorn's gthread worker
with two changes, made when the worker process starts.

- A client gets ``[stowage] client_timeout`` seconds for each request's
  line and headers, as the app gives it for the body: a client that stalls
  there no longer holds a request thread for as long as it stays connected
  (gunicorn itself reads them without a timeout). It is answered 408.
- What gunicorn refuses before the application sees it (a request line or
  headers too long, malformed HTTP) is answered in Placement's JSON error
  format, with a request id, instead of gunicorn's HTML page; gunicorn still
  decides the status and logs the refusal (``util.write_error``, which it
  calls for these, is replaced).
"""
from __future__ import annotations

import logging
import socket
import uuid

from gunicorn import util
from gunicorn.workers import gthread

from stowage import errors
from stowage.api.errors import error_response
from stowage.api.http import JSON_TYPE

LOG = logging.getLogger(__name__)


class PlacementThreadWorker(gthread.ThreadWorker):
    def init_process(self) -> None:
        util.write_error = write_refusal
        _TimedConnection.seconds = self.app.client_timeout
        gthread.TConn = _TimedConnection
        super().init_process()


class _TimedConnection(gthread.TConn):
    """A connection whose request heads are read under a timeout."""

    seconds = 0.0

    def init(self) -> None:
        fresh = not self.initialized
        super().init()
        parser = getattr(self, "parser", None)  # set by init(), untyped
        if fresh and self.seconds and parser is not None and not self.is_http2:
            self.parser = _TimedParser(parser, self.sock, self.client, self.seconds)


class _TimedParser:
    """gunicorn's request parser, given ``seconds`` to read each request's head."""

    def __init__(self, parser, client: socket.socket, address, seconds: float) -> None:
        self._parser, self._client, self._address, self._seconds = (
            parser, client, address, seconds)

    def __iter__(self):
        return self

    def __next__(self):
        self._client.settimeout(self._seconds)
        try:
            return next(self._parser)
        except TimeoutError:
            LOG.warning("Client %s sent no whole request in %g s; connection closed",
                        self._address, self._seconds)
            write_refusal(self._client, 408, "Request Timeout",
                          "The request did not arrive in time.")
            raise StopIteration from None
        finally:
            self._client.settimeout(None)

    def __getattr__(self, name: str):
        return getattr(self._parser, name)


def write_refusal(sock, status_int: int, reason: str, mesg: str) -> None:
    """Answer a request refused before the application saw it; the
    connection closes after it."""
    request_id = f"req-{uuid.uuid4()}"
    error = errors.StowageError(mesg)
    error.status = status_int
    response = error_response(error, {"HTTP_ACCEPT": JSON_TYPE}, request_id, None)
    body = response.encoded_body()
    head = [f"HTTP/1.1 {status_int} {reason}", "Connection: close",
            f"Content-Type: {response.content_type}", f"Content-Length: {len(body)}",
            f"openstack-request-id: {request_id}", f"x-openstack-request-id: {request_id}"]
    try:
        util.write_nonblock(sock, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    except OSError:
        LOG.debug("Could not send a %d to a client that went away", status_int)
