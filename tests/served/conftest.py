"""A served Stowage (gunicorn, one worker of four threads, SQLite) whose
HTTP edges are tried with raw sockets: what only a real server shows."""
from __future__ import annotations

import pytest

from tests.clients.served import NOAUTH2_SETTINGS, ServedStowage

# Short, so that a stalled client is given up on within the test's patience.
CLIENT_TIMEOUT_SECONDS = 1.0
SETTINGS = NOAUTH2_SETTINGS + (
    f"[stowage]\nclient_timeout = {CLIENT_TIMEOUT_SECONDS}\nmax_request_body_size = 65536\n"
)


@pytest.fixture(scope="module")
def served():
    service = ServedStowage.boot("sqlite", None, settings=SETTINGS)
    try:
        service.wait_until_serving()
        yield service
    finally:
        service.stop()
