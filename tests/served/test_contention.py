"""Contention spec: many clients racing for the last units of a few small
providers, through a served Stowage with several workers (SQLite: one
worker, several threads), never over-commit and never lose a write.

Each of ``CLIENTS`` threads runs ``OPERATIONS`` random steps on its own
consumers: claim a unit on a random provider, move a held consumer to
another provider (POST /allocations with its generation), release one; a
few threads instead change the providers' DISK_GB inventories (which
moves their generations under the claimers) or sample usages. Then:

- no 5xx, ever; every refused write is a 409 in Placement's format with
  one of the two codes a claimer acts on;
- no sample ever saw VCPU used beyond capacity;
- each consumer's allocations are what its last acknowledged write left,
  and each provider's usage is the sum of them.

``STOWAGE_STRESS_OPERATIONS`` raises the steps per client for longer runs
(CI's budget: the default, a few seconds per backend).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clients.served import NOAUTH2_SETTINGS, ServedStowage
from tests.conftest import _fresh_database

CLIENTS = 32
OPERATIONS = int(os.environ.get("STOWAGE_STRESS_OPERATIONS", "12"))
PROVIDERS = [str(uuid.UUID(int=index + 1)) for index in range(4)]
CAPACITY = 4  # VCPU per provider: 16 units for 32 claimers
WORKERS = {"sqlite": 1, "postgresql": 3, "mysql": 3}
CONFLICT_CODES = {"placement.concurrent_update", "placement.undefined_code"}


class Http:
    """Requests to one served Stowage, each on a connection of its own (a
    kept-alive one the server may close between requests would leave a
    write's fate unknown), with every answer's status counted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.refusal_codes: Counter = Counter()

    def call(self, method: str, path: str, body=None) -> tuple[int, dict | None]:
        headers = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["content-type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        data = json.loads(raw) if raw else None
        with self.lock:
            self.statuses[response.status] += 1
            if response.status == 409:
                self.refusal_codes[data["errors"][0]["code"]] += 1
        return response.status, data


def claim_body(provider: str, generation: int | None) -> dict:
    return {"allocations": {provider: {"resources": {"VCPU": 1}}}, "project_id": "p",
            "user_id": "u", "consumer_generation": generation, "consumer_type": "INSTANCE"}


@pytest.fixture(params=list(WORKERS))
def served(request, postgresql_url):
    backend = request.param
    database = None
    if backend == "mysql":
        url = _fresh_database("mysql", request.config).engine.url
        database = url.render_as_string(hide_password=False)
    service = ServedStowage.boot(backend, postgresql_url if backend == "postgresql" else None,
                                 settings=NOAUTH2_SETTINGS, database=database,
                                 workers=WORKERS[backend])
    try:
        service.wait_until_serving()
        yield service
    finally:
        service.stop()


def test_racing_claims_moves_and_inventory_updates_never_over_commit_or_lose_a_write(served):
    client = Http(served.port)
    for index, provider in enumerate(PROVIDERS):
        assert client.call("POST", "/resource_providers",
                         {"uuid": provider, "name": f"small-{index}"})[0] == 200
        inventories = {"VCPU": {"total": CAPACITY}, "DISK_GB": {"total": 100}}
        assert client.call("PUT", f"/resource_providers/{provider}/inventories",
                         {"resource_provider_generation": 0, "inventories": inventories})[0] == 200
    # consumer -> (provider, generation) as its last acknowledged write left it.
    held: dict[str, tuple[str, int]] = {}
    held_lock = threading.Lock()
    over_seen: list[str] = []
    stop = threading.Event()

    def claimer(seed: int) -> None:
        chooser = random.Random(seed)
        mine: dict[str, tuple[str, int]] = {}
        for _ in range(OPERATIONS):
            step = chooser.random()
            if step < 0.5 or not mine:
                consumer, provider = str(uuid.uuid4()), chooser.choice(PROVIDERS)
                status, _ = client.call("PUT", f"/allocations/{consumer}", claim_body(provider, None))
                if status == 204:
                    mine[consumer] = (provider, 1)
            elif step < 0.8:
                consumer = chooser.choice(sorted(mine))
                provider, generation = mine[consumer]
                target = chooser.choice([p for p in PROVIDERS if p != provider])
                status, _ = client.call("POST", "/allocations",
                                      {consumer: claim_body(target, generation)})
                if status == 204:
                    mine[consumer] = (target, generation + 1)
            else:
                consumer = chooser.choice(sorted(mine))
                status, _ = client.call("DELETE", f"/allocations/{consumer}")
                assert status == 204
                del mine[consumer]
            assert status in (204, 409), status
        with held_lock:
            held.update(mine)

    def inventory_changer(seed: int) -> None:
        chooser = random.Random(seed)
        while not stop.is_set():
            provider = chooser.choice(PROVIDERS)
            status, data = client.call("GET", f"/resource_providers/{provider}/inventories")
            assert status == 200
            inventories = data["inventories"]
            inventories["DISK_GB"]["total"] = chooser.randint(100, 200)
            status, _ = client.call("PUT", f"/resource_providers/{provider}/inventories", {
                "resource_provider_generation": data["resource_provider_generation"],
                "inventories": inventories})
            assert status in (200, 409), status

    def sampler() -> None:
        while not stop.is_set():
            for provider in PROVIDERS:
                status, usages = client.call("GET", f"/resource_providers/{provider}/usages")
                assert status == 200
                if usages["usages"].get("VCPU", 0) > CAPACITY:
                    over_seen.append(f"{provider}: {usages['usages']}")

    with ThreadPoolExecutor(CLIENTS + 3) as pool:
        side = [pool.submit(inventory_changer, 1000 + n) for n in range(2)] + [pool.submit(sampler)]
        claims = [pool.submit(claimer, seed) for seed in range(CLIENTS)]
        for future in claims:
            future.result()
        stop.set()
        for future in side:
            future.result()

    assert over_seen == []
    assert 500 not in client.statuses and not any(status >= 500 for status in client.statuses)
    assert set(client.refusal_codes) <= CONFLICT_CODES, client.refusal_codes
    assert client.statuses[204] > 0 and client.statuses[409] > 0, client.statuses
    for consumer, (provider, generation) in held.items():
        status, data = client.call("GET", f"/allocations/{consumer}")
        assert status == 200
        assert data["allocations"] == {provider: {"generation": data["allocations"][provider][
            "generation"], "resources": {"VCPU": 1}}}
        assert data["consumer_generation"] == generation
    expected = Counter(provider for provider, _ in held.values())
    for provider in PROVIDERS:
        usages = client.call("GET", f"/resource_providers/{provider}/usages")[1]["usages"]
        assert usages.get("VCPU", 0) == expected[provider] <= CAPACITY
