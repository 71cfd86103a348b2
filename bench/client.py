"""A small Placement HTTP client: one keep-alive connection per thread."""
from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from functools import cached_property

from bench.scenarios import MICROVERSION


class RequestTimedOut(Exception):
    """The service did not answer within the per-request timeout."""


@dataclass(frozen=True)
class Reply:
    status: int
    raw: bytes
    seconds: float

    @cached_property
    def body(self) -> dict | None:
        """The parsed body, parsed when first read: a timed answer of
        gigabytes is not parsed at all."""
        return json.loads(self.raw) if self.raw else None


class Client:
    """Talks to one service on loopback as the noauth2 administrator."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._local = threading.local()
        # Every thread's connection, so that close() can end them all.
        self._opened: list[http.client.HTTPConnection] = []
        self._opened_lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._local.connection = connection
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def request(self, method: str, path: str, body: object = None) -> Reply:
        """Send one request; raises RequestTimedOut after ``timeout`` seconds."""
        headers = {
            "x-auth-token": "admin",
            "openstack-api-version": f"placement {MICROVERSION}",
            "accept": "application/json",
        }
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        # One retry covers a keep-alive connection the server closed while idle.
        for attempt in (1, 2):
            connection = self._connection()
            started = time.perf_counter()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except TimeoutError as error:
                self._drop_connection()
                raise RequestTimedOut(f"{method} {path}") from error
            except (ConnectionError, http.client.HTTPException):
                self._drop_connection()
                if attempt == 2:
                    raise
                continue
            seconds = time.perf_counter() - started
            if response.getheader("connection", "").lower() == "close":
                self._drop_connection()
            return Reply(response.status, raw, seconds)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every thread's connection (threads that go on open new ones)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def put(self, path: str, body: object) -> Reply:
        return self.request("PUT", path, body)

    def post(self, path: str, body: object) -> Reply:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)
