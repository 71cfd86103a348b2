"""The request-schema validator cache holds one validator per schema shape.

Validators are cached by the identity of their schema; a handler that built
a fresh schema per request would add a validator to the cache on every
request, for the life of the worker. Repeating the same mix of requests at
every microversion that changes a schema must not grow the cache.
"""
from __future__ import annotations

import uuid

from stowage.api import schemas
from tests.support import Client

VERSIONS = ("1.10", "1.17", "1.25", "1.29", "1.33", "1.36", "1.38", "1.39")


def one_of_each_validated_request(app) -> None:
    for version in VERSIONS:
        client = Client(app, version=version)
        provider, consumer = str(uuid.uuid4()), str(uuid.uuid4())
        client.post("/resource_providers", {"name": provider, "uuid": provider})
        client.put(f"/resource_providers/{provider}/inventories",
                   {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}})
        client.put(f"/resource_providers/{provider}/aggregates",
                   {"aggregates": [], "resource_provider_generation": 1})
        client.put(f"/resource_providers/{provider}/traits",
                   {"traits": [], "resource_provider_generation": 1})
        allocation = {"allocations": {provider: {"resources": {"VCPU": 1}}}, "project_id": "p",
                      "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE"}
        client.put(f"/allocations/{consumer}", allocation)
        client.post("/allocations", {consumer: {**allocation, "consumer_generation": 1}})
        client.post("/reshaper", {"inventories": {}, "allocations": {}})
        client.get("/allocation_candidates?resources=VCPU:1&limit=1")
        client.get("/resource_providers?resources=VCPU:1&member_of=in:" + str(uuid.uuid4()))
        client.get("/usages?project_id=p")
        client.get("/traits?name=in:CUSTOM_A")


def test_repeated_requests_add_no_validator_to_the_cache(app):
    one_of_each_validated_request(app)
    shapes = len(schemas._validators)

    for _ in range(3):
        one_of_each_validated_request(app)

    assert len(schemas._validators) == shapes
