"""Fault spec: the whole service SIGKILLed in the middle of a write storm,
then started again on the same database. Every write a client saw succeed
is there, none it saw refused is, and a write whose answer never came is
there whole or not at all: a provider's usage is the sum of the
allocations that are there.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from tests.clients.served import NOAUTH2_SETTINGS, ServedStowage
from tests.conftest import _fresh_database

WRITERS = 8
PROVIDER = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39",
           "content-type": "application/json"}


def call(port: int, method: str, path: str, body=None) -> tuple[int, dict | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers=HEADERS)
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)
    finally:
        connection.close()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'placement.sqlite'}"
    database = _fresh_database(request.param, request.config)
    url = database.engine.url
    if request.param == "postgresql":
        with database.read() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def boot(database_url: str) -> ServedStowage:
    service = ServedStowage.boot("sqlite", None, settings=NOAUTH2_SETTINGS,
                                 database=database_url, workers=2)
    service.wait_until_serving()
    return service


def test_a_killed_service_keeps_every_acknowledged_write_and_no_half_written_one(database_url):
    first = boot(database_url)
    try:
        assert call(first.port, "POST", "/resource_providers",
                    {"uuid": PROVIDER, "name": "crash-host"})[0] == 200
        assert call(first.port, "PUT", f"/resource_providers/{PROVIDER}/inventories", {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": 100_000}}})[0] == 200
        outcomes: dict[str, str] = {}  # consumer -> acknowledged | refused <status> | unknown
        lock = threading.Lock()
        killed = threading.Event()

        def writer() -> None:
            while not killed.is_set():
                consumer = str(uuid.uuid4())
                body = {"allocations": {PROVIDER: {"resources": {"VCPU": 1}}},
                        "project_id": "p", "user_id": "u", "consumer_generation": None,
                        "consumer_type": "INSTANCE"}
                try:
                    status, _ = call(first.port, "PUT", f"/allocations/{consumer}", body)
                    outcome = "acknowledged" if status == 204 else f"refused {status}"
                except OSError:
                    outcome = "unknown"
                with lock:
                    outcomes[consumer] = outcome

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if sum(o == "acknowledged" for o in outcomes.values()) >= 50:
                    break
            time.sleep(0.05)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        killed.set()
        for thread in threads:
            thread.join()
    finally:
        first.discard()
    second = boot(database_url)
    try:
        found = {}
        for consumer in outcomes:
            status, data = call(second.port, "GET", f"/allocations/{consumer}")
            assert status == 200
            found[consumer] = data["allocations"]
        whole = {PROVIDER: {"generation": found_generation(found), "resources": {"VCPU": 1}}}
        for consumer, outcome in outcomes.items():
            if outcome == "acknowledged":
                assert found[consumer] == whole, consumer
            elif outcome.startswith("refused"):
                # Claimers racing for one provider's generation may lose.
                assert outcome == "refused 409" and found[consumer] == {}, consumer
            else:
                assert found[consumer] in ({}, whole), consumer
        status, usages = call(second.port, "GET", f"/resource_providers/{PROVIDER}/usages")
        assert usages["usages"]["VCPU"] == sum(1 for value in found.values() if value)
        assert sum(o == "acknowledged" for o in outcomes.values()) >= 50
    finally:
        second.stop()


def found_generation(found: dict[str, dict]) -> int:
    """The provider generation the allocations report (the same in all)."""
    generations = {alloc[PROVIDER]["generation"] for alloc in found.values() if alloc}
    assert len(generations) == 1
    return generations.pop()
