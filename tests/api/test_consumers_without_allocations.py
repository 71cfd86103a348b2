"""HTTP spec: the consumers upstream keeps without allocations, at generation 0.

Upstream creates a write's consumers before it checks anything else and
deletes a consumer only when a write takes its last allocations (or on
DELETE). So a consumer named by a write of empty allocations, or by a write
refused for a missing provider, stays, and the next write at 1.28+ must send
generation 0 for it, not null. Topology: one provider with 8 VCPU.
"""
from __future__ import annotations

import pytest

from tests.support import Client

PROVIDER = "2f6a1c1e-7b6d-4c47-9a3b-5f0d8f1f0a01"
MISSING_PROVIDER = "d3c2b1a0-9f8e-4d7c-8b6a-5e4d3c2b1a03"
CONSUMER = "6c1d0b57-3a3f-4d7e-9e61-a3f2a1b0c004"
OTHER = "71e2a8a2-5c0b-4f4b-8f3e-9d6f1e2d3c05"
NULL_GENERATION_CONFLICT = "consumer generation conflict - expected 0 but got None"


def claim(vcpu: int, generation, provider: str = PROVIDER) -> dict:
    """A 1.28 PUT body."""
    return {
        "allocations": {provider: {"resources": {"VCPU": vcpu}}} if vcpu else {},
        "project_id": "project",
        "user_id": "user",
        "consumer_generation": generation,
    }


@pytest.fixture
def client(app) -> Client:
    client = Client(app, version="1.28")
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    inventory = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}
    assert client.put(f"/resource_providers/{PROVIDER}/inventories", inventory).status == 200
    return client


def conflict(answer) -> dict:
    assert answer.status == 409
    (error,) = answer.json()["errors"]
    return error


def test_empty_allocations_for_a_new_consumer_leave_it_at_generation_0(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(0, None)).status == 204
    error = conflict(client.put(f"/allocations/{CONSUMER}", claim(1, None)))
    assert error["code"] == "placement.concurrent_update"
    assert error["detail"].endswith(f" {NULL_GENERATION_CONFLICT}  ")
    assert client.put(f"/allocations/{CONSUMER}", claim(1, 0)).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json()["consumer_generation"] == 1


def test_a_write_naming_a_missing_provider_leaves_its_new_consumer(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(1, None, MISSING_PROVIDER)).status == 400
    assert NULL_GENERATION_CONFLICT in conflict(client.put(f"/allocations/{CONSUMER}", claim(1, None)))["detail"]


def test_a_consumer_conflict_is_reported_before_capacity(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(0, None)).status == 204
    error = conflict(client.put(f"/allocations/{CONSUMER}", claim(9, None)))
    assert (error["code"], NULL_GENERATION_CONFLICT in error["detail"]) == (
        "placement.concurrent_update",
        True,
    )


def test_taking_the_last_allocations_deletes_the_consumer(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(1, None)).status == 204
    assert client.put(f"/allocations/{CONSUMER}", claim(0, 1)).status == 204
    # Gone: null is right again.
    assert client.put(f"/allocations/{CONSUMER}", claim(1, None)).status == 204


def test_post_keeps_an_emptied_new_consumer_and_deletes_an_emptied_holder(client):
    assert client.put(f"/allocations/{OTHER}", claim(1, None)).status == 204
    empty = {"allocations": {}, "project_id": "project", "user_id": "user", "consumer_generation": None}
    moved = {**empty, "consumer_generation": 1}
    assert client.post("/allocations", {CONSUMER: empty, OTHER: moved}).status == 204
    assert NULL_GENERATION_CONFLICT in conflict(client.put(f"/allocations/{CONSUMER}", claim(1, None)))["detail"]
    assert client.put(f"/allocations/{OTHER}", claim(1, None)).status == 204


def test_delete_of_a_consumer_without_allocations_is_404_and_keeps_it(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(0, None)).status == 204
    assert client.delete(f"/allocations/{CONSUMER}").status == 404
    assert NULL_GENERATION_CONFLICT in conflict(client.put(f"/allocations/{CONSUMER}", claim(1, None)))["detail"]


def test_a_write_before_1_28_needs_no_generation_for_a_kept_consumer(client):
    assert client.put(f"/allocations/{CONSUMER}", claim(0, None)).status == 204
    old = {key: value for key, value in claim(1, None).items() if key != "consumer_generation"}
    assert Client(client.app, version="1.27").put(f"/allocations/{CONSUMER}", old).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json()["consumer_generation"] == 1
