"""HTTP spec: POST /reshaper (1.30+), inventory and allocations moved in one go.

Topology, before and after moving VCPU to a child::

    compute (COMPUTE)                compute (COMPUTE)
      VCPU 8, DISK_GB 100     ==>      DISK_GB 100
                                       └── numa (NUMA)
                                             VCPU 8

``INSTANCE`` holds VCPU 2 and DISK_GB 10 on compute before the move.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stowage.storage.schema import allocations, consumers, inventories, projects
from tests.support import Client

COMPUTE = "5e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a01"
NUMA = "6f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b02"
MISSING = "7a2b3c4d-5e6f-4a7b-8c8d-9e0f1a2b3c03"
INSTANCE = "8b3c4d5e-6f7a-4b8c-9d9e-0f1a2b3c4d04"
NEW_CONSUMER = "9c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e05"
PROJECT = "project-a"
USER = "user-a"


# The reshaper's default policy is for services (role:service), not administrators.
AS_SERVICE = {"x-roles": "service"}


def reshape(client: Client, body: dict):
    return client.post("/reshaper", body, headers=AS_SERVICE)


def error_of(answer) -> dict:
    (error,) = answer.json()["errors"]
    return error


def holding(resources_by_provider: dict, generation, **extra) -> dict:
    return {
        "allocations": {
            provider: {"resources": resources} for provider, resources in resources_by_provider.items()
        },
        "project_id": PROJECT,
        "user_id": USER,
        "consumer_generation": generation,
        "consumer_type": "INSTANCE",
        **extra,
    }


def generation(client: Client, provider: str) -> int:
    return client.get(f"/resource_providers/{provider}").json()["generation"]


def inventory_of(client: Client, provider: str) -> dict:
    return {
        name: record["total"]
        for name, record in client.get(f"/resource_providers/{provider}/inventories")
        .json()["inventories"]
        .items()
    }


def usages_of(client: Client, provider: str) -> dict:
    return client.get(f"/resource_providers/{provider}/usages").json()["usages"]


@pytest.fixture
def tree(client: Client) -> None:
    assert client.post("/resource_providers", {"uuid": COMPUTE, "name": "compute"}).status == 200
    assert (
        client.post(
            "/resource_providers", {"uuid": NUMA, "name": "numa", "parent_provider_uuid": COMPUTE}
        ).status
        == 200
    )
    answer = client.put(
        f"/resource_providers/{COMPUTE}/inventories",
        {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": 8}, "DISK_GB": {"total": 100}},
        },
    )
    assert answer.status == 200
    assert client.put(f"/allocations/{INSTANCE}", holding({COMPUTE: {"VCPU": 2, "DISK_GB": 10}}, None)).status == 204


def move_vcpu_to_numa(compute_generation: int = 2, numa_generation: int = 0, **changes) -> dict:
    body = {
        "inventories": {
            COMPUTE: {
                "resource_provider_generation": compute_generation,
                "inventories": {"DISK_GB": {"total": 100}},
            },
            NUMA: {
                "resource_provider_generation": numa_generation,
                "inventories": {"VCPU": {"total": 8}},
            },
        },
        "allocations": {INSTANCE: holding({COMPUTE: {"DISK_GB": 10}, NUMA: {"VCPU": 2}}, 1)},
    }
    body.update(changes)
    return body


def snapshot(client: Client, database) -> tuple:
    with database.read() as connection:
        counts = tuple(
            connection.scalar(select(func.count()).select_from(table))
            for table in (allocations, consumers, inventories, projects)
        )
    return (
        counts,
        generation(client, COMPUTE),
        generation(client, NUMA),
        inventory_of(client, COMPUTE),
        inventory_of(client, NUMA),
        client.get(f"/allocations/{INSTANCE}").json(),
    )


def test_reshaper_does_not_exist_before_1_30(app, tree):
    assert reshape(Client(app, version="1.29"), move_vcpu_to_numa()).status == 404


def test_reshaper_is_for_services_only(client, tree):
    assert client.post("/reshaper", move_vcpu_to_numa(), headers={"x-roles": "admin"}).status == 403


def test_inventory_and_allocations_move_to_the_child_together(client, tree):
    assert reshape(client, move_vcpu_to_numa()).status == 204
    assert inventory_of(client, COMPUTE) == {"DISK_GB": 100}
    assert inventory_of(client, NUMA) == {"VCPU": 8}
    assert usages_of(client, COMPUTE) == {"DISK_GB": 10}
    assert usages_of(client, NUMA) == {"VCPU": 2}
    shown = client.get(f"/allocations/{INSTANCE}").json()
    assert shown["consumer_generation"] == 2
    # Interim inventory, allocations and final inventory each bump, as upstream.
    assert (generation(client, COMPUTE), generation(client, NUMA)) == (5, 3)


def test_a_reshape_can_create_and_empty_consumers(client, database, tree):
    body = move_vcpu_to_numa(
        allocations={
            INSTANCE: holding({}, 1),
            NEW_CONSUMER: holding({COMPUTE: {"DISK_GB": 10}, NUMA: {"VCPU": 2}}, None),
        }
    )
    assert reshape(client, body).status == 204
    assert client.get(f"/allocations/{INSTANCE}").json() == {"allocations": {}}
    assert client.get(f"/allocations/{NEW_CONSUMER}").json()["consumer_generation"] == 1


def test_removing_inventory_that_stays_allocated_is_an_in_use_conflict(client, database, tree):
    before = snapshot(client, database)
    answer = reshape(client, move_vcpu_to_numa(allocations={}))
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.inventory.inuse"
    assert f"update conflict: Inventory for 'VCPU' on resource provider '{COMPUTE}' in use." in error["detail"]
    assert snapshot(client, database) == before


@pytest.mark.parametrize(
    "body, status, code, fragment",
    [
        (
            move_vcpu_to_numa(compute_generation=1),
            409,
            "placement.concurrent_update",
            "resource provider generation conflict for provider",
        ),
        (
            move_vcpu_to_numa(
                allocations={INSTANCE: holding({COMPUTE: {"DISK_GB": 10}, NUMA: {"VCPU": 2}}, 7)}
            ),
            409,
            "placement.concurrent_update",
            "consumer generation conflict - expected 1 but got 7",
        ),
        (
            move_vcpu_to_numa(
                allocations={INSTANCE: holding({COMPUTE: {"DISK_GB": 10}, NUMA: {"VCPU": 9}}, 1)}
            ),
            409,
            "placement.undefined_code",
            "Unable to allocate inventory: ",
        ),
        (
            move_vcpu_to_numa(
                allocations={INSTANCE: holding({COMPUTE: {"DISK_GB": 10}, MISSING: {"VCPU": 2}}, 1)}
            ),
            400,
            "placement.undefined_code",
            f"Allocation for resource provider '{MISSING}' that does not exist.",
        ),
    ],
    ids=["stale provider generation", "stale consumer generation", "over capacity", "missing provider"],
)
def test_a_failed_reshape_leaves_no_trace(client, database, tree, body, status, code, fragment):
    before = snapshot(client, database)
    answer = reshape(client, body)
    assert answer.status == status
    error = error_of(answer)
    assert error["code"] == code
    assert fragment in error["detail"]
    assert snapshot(client, database) == before


def test_inventories_of_a_missing_provider_are_a_not_found_bad_request(client, tree):
    body = move_vcpu_to_numa()
    body["inventories"][MISSING] = {"resource_provider_generation": 0, "inventories": {}}
    answer = reshape(client, body)
    assert answer.status == 400
    assert error_of(answer)["code"] == "placement.resource_provider.not_found"


def test_an_unknown_resource_class_in_inventories_is_malformed_data(client, database, tree):
    before = snapshot(client, database)
    body = move_vcpu_to_numa()
    body["inventories"][NUMA]["inventories"] = {"CUSTOM_NOPE": {"total": 1}}
    answer = reshape(client, body)
    assert answer.status == 400
    assert "malformed reshaper data: No such resource class CUSTOM_NOPE." in error_of(answer)["detail"]
    assert snapshot(client, database) == before


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"cows": "moo"}, "JSON does not validate"),
        ({"inventories": {}, "allocations": {}}, "JSON does not validate"),
        (
            {"inventories": {COMPUTE: {"resource_provider_generation": 2, "inventories": {}}}},
            "'allocations' is a required property",
        ),
    ],
)
def test_malformed_reshapes_are_refused(client, tree, body, fragment):
    answer = reshape(client, body)
    assert answer.status == 400
    assert fragment in error_of(answer)["detail"]


def test_consumer_types_are_required_from_1_38_and_refused_before(app, tree):
    untyped = move_vcpu_to_numa()
    del untyped["allocations"][INSTANCE]["consumer_type"]
    answer = reshape(Client(app, version="1.38"), untyped)
    assert "'consumer_type' is a required property" in error_of(answer)["detail"]
    answer = reshape(Client(app, version="1.37"), move_vcpu_to_numa())
    assert "'consumer_type' was unexpected" in error_of(answer)["detail"]
    assert reshape(Client(app, version="1.37"), untyped).status == 204
