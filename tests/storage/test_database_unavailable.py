"""Spec: while the database cannot be reached, every request is a quick
503 in Placement's format (never a 500 or a hang), and the service comes
back by itself once the database does.

The database server is reached through a TCP relay that the test cuts
(every connection dropped, new ones refused) and restores, as a server
stopped and started again looks to its clients; or freezes (nothing more
forwarded either way, nothing closed, new connections accepted and never
greeted) and thaws, as a hung or SIGSTOPped server looks to them. A frozen
server is given up on after the URL's timeouts, set short here.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import URL, text

from stowage.api.app import create_app
from stowage.storage.database import Database
from tests.support import Client, test_conf

# What the frozen-server specs set in the URL, by backend: whole seconds, as
# MySQL needs; psycopg waits at least 2 s for a new connection whatever it
# is told, and PostgreSQL's read_timeout bounds writes too.
SHORT_TIMEOUTS = {
    "postgresql": {"connect_timeout": "1", "read_timeout": "1"},
    "mysql": {"connect_timeout": "1", "read_timeout": "1", "write_timeout": "1"},
}
# A request answered 503 within this many seconds is not a hang.
QUICK = 5


class Relay:
    """127.0.0.1:<port> relayed to ``target``; ``cut()`` and ``restore()``,
    ``freeze()`` and ``thaw()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
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
        # Frozen pumps wake to closed sockets, and end.
        self._flowing.set()

    def freeze(self) -> None:
        """Forward nothing more, either way, and close nothing."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again, what was held first."""
        self._flowing.set()

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

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _url_of(database: Database) -> URL:
    """``database``'s URL, with the search path of its private schema on PostgreSQL."""
    url = database.engine.url
    if database.backend.name == "postgresql":
        with database.read() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url


@contextlib.contextmanager
def relayed_app(server_database: Database, **query: str) -> Iterator[tuple[Relay, Client]]:
    """An app on ``server_database``, reached through a relay, with ``query``
    added to its URL."""
    url = _url_of(server_database).update_query_dict(query)
    relay = Relay((url.host or "127.0.0.1", url.port or 0))
    database = Database.from_url(url.set(port=relay.port).render_as_string(hide_password=False))
    try:
        yield relay, Client(create_app(test_conf(), database))
    finally:
        relay.cut()
        database.dispose()


def _timed(client: Client, method: str, path: str, body=None):
    """The answer and the seconds it took; a failure, not a hang, if none comes in ``QUICK`` s."""
    answers = []
    started = time.monotonic()
    asking = threading.Thread(target=lambda: answers.append(client.request(method, path, body)), daemon=True)
    asking.start()
    asking.join(QUICK)
    assert answers, f"{method} {path}: no answer in {QUICK} s"
    return answers[0], time.monotonic() - started


def _assert_unreachable(answer) -> None:
    assert answer.status == 503, answer.body
    (error,) = answer.json()["errors"]
    assert "database cannot be reached" in error["detail"]


def _assert_back_with_only(client: Client, names: list[str]) -> None:
    # The first request may still find a connection the fault killed in the pool.
    answers = [client.get("/resource_providers") for _ in range(3)]
    assert answers[-1].status == 200, answers[-1].body
    assert {answer.status for answer in answers} <= {200, 503}
    assert [p["name"] for p in answers[-1].json()["resource_providers"]] == names


@pytest.fixture
def relayed(server_database):
    """An app on ``server_database``, reached through a relay."""
    with relayed_app(server_database) as relay_and_client:
        yield relay_and_client


def test_an_unreachable_database_is_a_quick_503_and_the_service_comes_back(relayed):
    relay, client = relayed
    assert client.post("/resource_providers", {"name": "before"}).status == 200
    relay.cut()
    for method, path, body in [("GET", "/resource_providers", None),
                               ("POST", "/resource_providers", {"name": "during"}),
                               ("GET", "/allocation_candidates?resources=VCPU:1", None)]:
        answer, seconds = _timed(client, method, path, body)
        assert seconds < QUICK
        _assert_unreachable(answer)
    relay.restore()
    _assert_back_with_only(client, ["before"])


def test_a_server_that_accepts_and_never_greets_is_a_503_after_the_connect_timeout_and_comes_back(
        server_database):
    # connect_timeout alone: it bounds the whole handshake, on MySQL too.
    with relayed_app(server_database, connect_timeout="1") as (relay, client):
        relay.freeze()  # before the app's first connection
        answer, seconds = _timed(client, "GET", "/resource_providers")
        _assert_unreachable(answer)
        assert 1 <= seconds < QUICK
        relay.thaw()
        _assert_back_with_only(client, [])


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/resource_providers", None),
    ("POST", "/resource_providers", {"name": "during"}),
], ids=["read", "write"])
def test_a_server_silent_mid_statement_is_a_503_after_the_read_timeout_and_the_service_comes_back(
        server_database, method, path, body):
    with relayed_app(server_database, **SHORT_TIMEOUTS[server_database.backend.name]) as (relay, client):
        assert client.post("/resource_providers", {"name": "before"}).status == 200
        # The pooled connection that answered is handed out again, unpinged
        # (backends.pool), and its statement meets the silence.
        relay.freeze()
        answer, seconds = _timed(client, method, path, body)
        _assert_unreachable(answer)
        assert 1 <= seconds < QUICK
        # Then new connections, never greeted.
        answer, seconds = _timed(client, "GET", "/allocation_candidates?resources=VCPU:1")
        _assert_unreachable(answer)
        assert seconds < QUICK
        relay.thaw()
        # The held statement reaches the server at last, on a connection
        # the client has closed: nothing of it is committed.
        _assert_back_with_only(client, ["before"])


def test_a_migration_waits_for_another_processs_lock_longer_than_the_read_timeout(server_database):
    url = _url_of(server_database).update_query_dict({"read_timeout": "1"})
    migrating = Database.from_url(url.render_as_string(hide_password=False))
    held = threading.Event()

    def hold_the_lock() -> None:
        with server_database.engine.connect() as connection, server_database.backend.migration_lock(connection):
            held.set()
            time.sleep(2)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(QUICK)
        started = time.monotonic()
        migrating.upgrade()
        assert time.monotonic() - started >= 1.5
    finally:
        holder.join()
        migrating.dispose()


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
