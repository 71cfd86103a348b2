"""Spec: while the database cannot be reached, every request is a quick
503 in Placement's format (never a 500 or a hang), and the service comes
back by itself once the database does.

The database server is reached through a TCP relay that the test cuts
(every connection dropped, new ones refused) and restores, as a server
stopped and started again looks to its clients.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from sqlalchemy import text

from stowage.api.app import create_app
from stowage.storage.database import Database
from tests.support import Client, test_conf


class Relay:
    """127.0.0.1:<port> relayed to ``target``; ``cut()`` and ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            opened, self._sockets = self._sockets, []
        for each in [listener, *opened]:
            if each is not None:
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
                each.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relayed(server_database):
    """An app on ``server_database``, reached through a relay."""
    url = server_database.engine.url
    if server_database.backend.name == "postgresql":
        with server_database.read() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    relay = Relay((url.host or "127.0.0.1", url.port or 0))
    database = Database.from_url(url.set(port=relay.port).render_as_string(hide_password=False))
    try:
        yield relay, Client(create_app(test_conf(), database))
    finally:
        relay.cut()
        database.dispose()


def test_an_unreachable_database_is_a_quick_503_and_the_service_comes_back(relayed):
    relay, client = relayed
    assert client.post("/resource_providers", {"name": "before"}).status == 200
    relay.cut()
    for method, path, body in [("GET", "/resource_providers", None),
                               ("POST", "/resource_providers", {"name": "during"}),
                               ("GET", "/allocation_candidates?resources=VCPU:1", None)]:
        started = time.monotonic()
        answer = client.request(method, path, body)
        assert time.monotonic() - started < 5
        assert answer.status == 503, (path, answer.body)
        (error,) = answer.json()["errors"]
        assert "database cannot be reached" in error["detail"]
    relay.restore()
    # The first request may still find a connection the cut killed in the pool.
    answers = [client.get("/resource_providers") for _ in range(3)]
    assert answers[-1].status == 200
    assert {answer.status for answer in answers} <= {200, 503}
    names = [p["name"] for p in answers[-1].json()["resource_providers"]]
    assert names == ["before"]


def test_a_server_that_accepts_and_never_answers_is_a_503_after_the_connect_timeout(
        postgresql_database):
    # PostgreSQL only: PyMySQL's connect_timeout ends at the TCP connect and it
    # then waits for the server's greeting without one (docs/reliability.md).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never speaks
    url = postgresql_database.engine.url.set(port=silent.getsockname()[1]).update_query_dict(
        {"connect_timeout": "1"})
    database = Database.from_url(url.render_as_string(hide_password=False))
    try:
        started = time.monotonic()
        answer = Client(create_app(test_conf(), database)).get("/resource_providers")
        assert answer.status == 503, answer.body
        assert time.monotonic() - started < 5
    finally:
        database.dispose()
        silent.close()


def test_a_read_only_sqlite_file_answers_reads_and_refuses_writes_logging_its_name(tmp_path, caplog):
    path = tmp_path / "placement.sqlite"
    writable = Database.from_url(f"sqlite:///{path}")
    writable.upgrade()
    Client(create_app(test_conf(), writable)).post("/resource_providers", {"name": "kept"})
    writable.dispose()
    # As a file on a read-only mount, or one the service may not write, opens.
    read_only = Database.from_url(f"sqlite:///file:{path}?mode=ro&uri=true")
    client = Client(create_app(test_conf(), read_only))
    try:
        assert client.get("/resource_providers").status == 200
        answer = client.post("/resource_providers", {"name": "refused"})
        assert answer.status == 503, answer.body
        (error,) = answer.json()["errors"]
        # SQLite's reason for the client; which file, for the operator's log.
        assert "readonly" in error["detail"] and str(tmp_path) not in error["detail"]
        assert str(path) in caplog.text
    finally:
        read_only.dispose()
    check = Database.from_url(f"sqlite:///{path}")
    try:
        with check.read() as connection:
            assert connection.scalar(text("PRAGMA integrity_check")) == "ok"
        names = [p["name"] for p in Client(create_app(test_conf(), check)).get(
            "/resource_providers").json()["resource_providers"]]
        assert names == ["kept"]
    finally:
        check.dispose()
