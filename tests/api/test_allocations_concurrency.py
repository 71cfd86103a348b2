"""HTTP spec: concurrent allocation writes never over-commit a provider.

Topology::

    compute (PROVIDER)
      VCPU total 5

Many writers claim at once; the provider generation compare-and-swap (with
server-side retries) lets exactly as many succeed as fit.
"""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from stowage.api.app import create_app
from tests import support
from tests.support import Client

PROVIDER = "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e01"
WRITERS = 12
CAPACITY = 5


@pytest.fixture
def client(database) -> Client:
    # Generous retries so that every loser of a generation race eventually
    # sees the true capacity instead of giving up.
    app = create_app(support.test_conf(placement={"allocation_conflict_retry_count": 100}), database)
    client = Client(app)
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    answer = client.put(
        f"/resource_providers/{PROVIDER}/inventories",
        {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": CAPACITY}}},
    )
    assert answer.status == 200
    return client


def claim(client: Client, consumer: str) -> int:
    body = {
        "allocations": {PROVIDER: {"resources": {"VCPU": 1}}},
        "project_id": "project",
        "user_id": "user",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    return client.put(f"/allocations/{consumer}", body).status


def test_concurrent_claims_fill_the_provider_exactly_and_no_more(client):
    consumers = [str(uuid.uuid4()) for _ in range(WRITERS)]
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        statuses = list(pool.map(lambda consumer: claim(client, consumer), consumers))
    assert statuses.count(204) == CAPACITY
    assert statuses.count(409) == WRITERS - CAPACITY
    usages = client.get(f"/resource_providers/{PROVIDER}/usages").json()
    assert usages["usages"]["VCPU"] == CAPACITY
    # One generation bump for the inventory, one per successful claim.
    assert usages["resource_provider_generation"] == 1 + CAPACITY


def test_two_writers_creating_the_same_consumer_cannot_both_win(client):
    consumer = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(lambda _: claim(client, consumer), range(2)))
    assert statuses == [204, 409]
    shown = client.get(f"/allocations/{consumer}").json()
    assert shown["consumer_generation"] == 1
    assert shown["allocations"][PROVIDER]["resources"] == {"VCPU": 1}


def test_an_allocation_write_runs_at_most_the_configured_attempts_whatever_goes_wrong(database, monkeypatch):
    """Lost generation races and transactions the database aborted share one
    budget ([placement] allocation_conflict_retry_count): a write that keeps
    failing runs that many times, then answers 409, and is not run again."""
    from stowage import errors
    from stowage.domain import allocations as allocation_domain

    app = create_app(support.test_conf(placement={"allocation_conflict_retry_count": 10}), database)
    client = Client(app)
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    attempts = []

    def always_failing(connection, requests, leads):
        attempts.append(1)
        if len(attempts) < 9:
            raise allocation_domain.ProviderRaceLost()
        raise errors.TransactionAborted("deadlock")

    monkeypatch.setattr(allocation_domain, "write_allocations", always_failing)

    assert claim(client, str(uuid.uuid4())) == 409
    assert len(attempts) == 10
