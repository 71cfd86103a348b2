"""Pooled connections on the server backends: pinged only after sitting idle.

A connection handed back a moment ago is handed out again without a ping
(a round trip saved per transaction); one idle longer than the window is
pinged, and replaced when the server closed it meanwhile (a restart, an
idle timeout), so the request using it never sees the broken one.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from stowage.storage.backends import pool
from stowage.storage.database import Database


def _server_pid(database: Database) -> int:
    query = "SELECT pg_backend_pid()" if database.backend.name == "postgresql" else "SELECT CONNECTION_ID()"
    with database.read() as connection:
        return int(connection.execute(text(query)).scalar_one())


def _kill(database: Database, pid: int) -> None:
    """Close the server side of connection ``pid`` from outside the pool."""
    statement = (
        f"SELECT pg_terminate_backend({pid})" if database.backend.name == "postgresql" else f"KILL {pid}"
    )
    outsider = create_engine(database.engine.url, poolclass=NullPool)
    with outsider.connect() as other:
        other.execute(text(statement))
    outsider.dispose()


@pytest.fixture
def pings(server_database, monkeypatch) -> list[bool]:
    made: list[bool] = []
    dialect = server_database.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection):
        try:
            alive = real(dbapi_connection)
        except Exception:
            made.append(False)
            raise
        made.append(alive)
        return alive

    monkeypatch.setattr(dialect, "do_ping", counted)
    return made


def test_a_connection_back_a_moment_ago_is_not_pinged(server_database, pings):
    # Connections earlier tests left idle in the pool would be pinged.
    server_database.engine.pool.dispose()
    for _ in range(5):
        with server_database.read() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    assert pings == []


def test_an_idle_connection_the_server_closed_is_replaced_unseen(server_database, pings):
    server_database.engine.pool.dispose()
    pid = _server_pid(server_database)
    # The pool's only connection is closed under it, as a restart would.
    _kill(server_database, pid)
    time.sleep(pool.IDLE_BEFORE_PING + 0.2)
    assert _server_pid(server_database) != pid
    assert False in pings


def test_an_idle_live_connection_is_pinged_and_kept(server_database, pings):
    server_database.engine.pool.dispose()
    pid = _server_pid(server_database)
    time.sleep(pool.IDLE_BEFORE_PING + 0.2)
    assert _server_pid(server_database) == pid
    assert pings == [True]
