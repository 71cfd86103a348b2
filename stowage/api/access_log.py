"""What happens once an answer is sent: the access log and whoever else
watches requests end (the metrics).

``Finished`` is told to each watcher when the server closes the answer's
body, so a streamed answer's length is all that was sent. The access log's
line is upstream's (its request-log middleware: remote address, the quoted
request line, status, length, microversion) followed by what an operator
tracing a request also wants: the time it took, its request id, user and
project::

    127.0.0.1 "GET /resource_providers?name=cn1" status: 200 len: 412 microversion: 1.39 \
time: 3.1 ms request_id: req-0f8c... user: admin project: admin

at INFO on the ``stowage.access`` logger, or at WARNING with ``slow
request:`` when it took longer than ``[stowage] slow_request_seconds``. The
same fields go with the record (``record.access``), which oslo.log's JSON
formatter (``[DEFAULT] use_json``) writes as ``extra.access``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

LOG = logging.getLogger("stowage.access")


@dataclass(frozen=True)
class Finished:
    """One request, its answer sent."""

    environ: dict
    status: str  # the WSGI status line, "200 OK"
    headers: Sequence[tuple[str, str]]
    length: int  # bytes of body sent
    seconds: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


Watcher = Callable[[Finished], None]


class Watched:
    """WSGI middleware telling each watcher about every answer once it is sent."""

    def __init__(self, application, watchers: Sequence[Watcher]) -> None:
        self.application = application
        self.watchers = tuple(watchers)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        answer: list = []

        def start_and_note(status, headers, exc_info=None):
            answer[:] = (status, headers)
            return start_response(status, headers, exc_info)

        body = self.application(environ, start_and_note)

        def done(sent: int) -> None:
            if not answer:
                return
            finished = Finished(environ, answer[0], answer[1], sent, time.perf_counter() - started)
            for watcher in self.watchers:
                watcher(finished)

        return _Counted(body, done)


class AccessLog:
    """The watcher writing the access-log line."""

    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds

    def __call__(self, finished: Finished) -> None:
        environ = finished.environ
        target = environ.get("PATH_INFO", "") or "/"
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        version = finished.header("openstack-api-version")
        fields = {
            "remote_addr": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD", ""),
            "target": target,
            "status": finished.status.split(" ", 1)[0],
            "length": finished.length,
            "microversion": version.removeprefix("placement ") if version else "-",
            "duration_ms": round(finished.seconds * 1000, 1),
            "request_id": finished.header("x-openstack-request-id") or "-",
            "user_id": environ.get("HTTP_X_USER_ID") or "-",
            "project_id": environ.get("HTTP_X_PROJECT_ID") or environ.get("HTTP_X_TENANT_ID") or "-",
        }
        slow = self.slow_seconds > 0 and finished.seconds > self.slow_seconds
        LOG.log(
            logging.WARNING if slow else logging.INFO,
            '%s%s "%s %s" status: %s len: %s microversion: %s time: %.1f ms '
            "request_id: %s user: %s project: %s",
            "slow request: " if slow else "",
            fields["remote_addr"],
            fields["method"],
            fields["target"],
            fields["status"],
            fields["length"],
            fields["microversion"],
            fields["duration_ms"],
            fields["request_id"],
            fields["user_id"],
            fields["project_id"],
            # extra_keys: what oslo.log's JSON formatter copies into its "extra".
            extra={"access": fields, "extra_keys": ["access"]},
        )


class _Counted:
    """A WSGI body that counts what is sent and reports it once, on close."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body = body
        self.done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.sent)
