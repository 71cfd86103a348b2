"""HTTP spec: POST /allocations (1.13+), several consumers written atomically.

Topology::

    source (SOURCE)          destination (DESTINATION)
      VCPU 4                   VCPU 4

A migration moves an instance's allocations from ``source`` to
``destination`` while a migration consumer holds the source side.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stowage.storage.schema import allocations, consumer_types, consumers, projects, users
from tests.support import Client

SOURCE = "0a9d5c7e-1b2f-4c3d-8e4f-5a6b7c8d9e01"
DESTINATION = "1b8e6d8f-2c3a-4d4e-9f5a-6b7c8d9e0f02"
INSTANCE = "2c7f7e9a-3d4b-4e5f-8a6b-7c8d9e0f1a03"
MIGRATION = "3d6a8fab-4e5c-4f6a-9b7c-8d9e0f1a2b04"
PROJECT = "project-a"
USER = "user-a"


def error_of(answer) -> dict:
    (error,) = answer.json()["errors"]
    return error


def holding(resources_by_provider: dict, generation=None, consumer_type="INSTANCE", **extra) -> dict:
    return {
        "allocations": {
            provider: {"resources": resources} for provider, resources in resources_by_provider.items()
        },
        "project_id": PROJECT,
        "user_id": USER,
        "consumer_generation": generation,
        "consumer_type": consumer_type,
        **extra,
    }


@pytest.fixture
def providers(client: Client) -> None:
    for uuid, name in ((SOURCE, "source"), (DESTINATION, "destination")):
        assert client.post("/resource_providers", {"uuid": uuid, "name": name}).status == 200
        answer = client.put(
            f"/resource_providers/{uuid}/inventories",
            {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}},
        )
        assert answer.status == 200


def vcpus_used(client: Client, provider: str) -> int:
    return client.get(f"/resource_providers/{provider}/usages").json()["usages"].get("VCPU", 0)


def table_sizes(database) -> dict[str, int]:
    with database.read() as connection:
        return {
            table.name: connection.scalar(select(func.count()).select_from(table))
            for table in (allocations, consumers, projects, users, consumer_types)
        }


def test_post_does_not_exist_before_1_13(app, providers):
    answer = Client(app, version="1.12").post("/allocations", {INSTANCE: holding({SOURCE: {"VCPU": 1}})})
    assert answer.status == 404


def test_get_on_allocations_is_405_with_post_allowed(client):
    answer = client.get("/allocations")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"


def test_post_writes_several_consumers(client, providers):
    answer = client.post(
        "/allocations",
        {
            INSTANCE: holding({DESTINATION: {"VCPU": 2}}),
            MIGRATION: holding({SOURCE: {"VCPU": 2}}, consumer_type="MIGRATION"),
        },
    )
    assert answer.status == 204
    assert (vcpus_used(client, SOURCE), vcpus_used(client, DESTINATION)) == (2, 2)
    assert client.get(f"/allocations/{MIGRATION}").json()["consumer_type"] == "MIGRATION"
    assert client.get(f"/allocations/{INSTANCE}").json()["consumer_generation"] == 1


def test_empty_allocations_in_post_release_a_consumer_and_delete_it(client, database, providers):
    client.post(
        "/allocations",
        {
            INSTANCE: holding({DESTINATION: {"VCPU": 2}}),
            MIGRATION: holding({SOURCE: {"VCPU": 2}}),
        },
    )
    source_generation = client.get(f"/resource_providers/{SOURCE}").json()["generation"]
    answer = client.post(
        "/allocations",
        {
            INSTANCE: holding({DESTINATION: {"VCPU": 2}}, generation=1),
            MIGRATION: holding({}, generation=1),
        },
    )
    assert answer.status == 204
    assert vcpus_used(client, SOURCE) == 0
    assert client.get(f"/allocations/{MIGRATION}").json() == {"allocations": {}}
    assert table_sizes(database)["consumers"] == 1
    # The provider the emptied consumer held is touched by the write.
    assert client.get(f"/resource_providers/{SOURCE}").json()["generation"] == source_generation + 1


def test_a_swap_that_only_fits_once_the_old_allocations_are_gone_succeeds(client, providers):
    """Capacity is judged on the state after the write, not on old plus new."""
    client.post("/allocations", {INSTANCE: holding({SOURCE: {"VCPU": 4}})})
    answer = client.post(
        "/allocations",
        {
            INSTANCE: holding({}, generation=1),
            MIGRATION: holding({SOURCE: {"VCPU": 4}}),
        },
    )
    assert answer.status == 204
    assert vcpus_used(client, SOURCE) == 4


def test_amounts_of_all_consumers_on_one_provider_add_up(client, database, providers):
    answer = client.post(
        "/allocations",
        {
            INSTANCE: holding({SOURCE: {"VCPU": 3}}),
            MIGRATION: holding({SOURCE: {"VCPU": 2}}),
        },
    )
    assert answer.status == 409
    assert "The requested amount would exceed the capacity." in error_of(answer)["detail"]


@pytest.mark.parametrize(
    "second, status, fragment",
    [
        (holding({SOURCE: {"VCPU": 5}}), 409, "would exceed the capacity"),
        (holding({SOURCE: {"MEMORY_MB": 1}}), 409, "Inventory for 'MEMORY_MB'"),
        (
            holding({SOURCE: {"CUSTOM_NOPE": 1}}),
            400,
            "Unable to allocate inventory No such resource class CUSTOM_NOPE.",
        ),
        (holding({SOURCE: {"VCPU": 1}}, generation=7), 409, "consumer generation conflict"),
    ],
    ids=["over capacity", "no inventory", "unknown class", "stale generation"],
)
def test_a_failed_post_leaves_no_trace(client, database, providers, second, status, fragment):
    """The first consumer is valid and new; the second fails: nothing is written."""
    before = table_sizes(database)
    answer = client.post(
        "/allocations",
        {INSTANCE: holding({DESTINATION: {"VCPU": 1}}, project_id="fresh-project"), MIGRATION: second},
    )
    assert answer.status == status
    assert fragment in error_of(answer)["detail"]
    assert table_sizes(database) == before
    assert client.get(f"/resource_providers/{DESTINATION}").json()["generation"] == 1
    assert client.get(f"/allocations/{INSTANCE}").json() == {"allocations": {}}


def test_a_post_naming_a_missing_provider_keeps_its_new_consumers(client, database, providers):
    """As upstream: its consumers are created before providers are looked up."""
    missing = "4e5b9abc-5f6d-4a7b-8c8d-9e0f1a2b3c05"
    answer = client.post(
        "/allocations",
        {INSTANCE: holding({DESTINATION: {"VCPU": 1}}), MIGRATION: holding({missing: {"VCPU": 1}})},
    )
    assert answer.status == 400
    assert "that does not exist" in error_of(answer)["detail"]
    sizes = table_sizes(database)
    assert (sizes["consumers"], sizes["allocations"]) == (2, 0)
    again = client.post("/allocations", {INSTANCE: holding({DESTINATION: {"VCPU": 1}})})
    assert "expected 0 but got None" in error_of(again)["detail"]


def test_a_failed_post_keeps_an_existing_consumers_allocations_and_owner(client, providers):
    client.post("/allocations", {INSTANCE: holding({SOURCE: {"VCPU": 1}})})
    answer = client.post(
        "/allocations",
        {
            INSTANCE: holding({SOURCE: {"VCPU": 2}}, generation=1, project_id="project-b"),
            MIGRATION: holding({SOURCE: {"VCPU": 9}}),
        },
    )
    assert answer.status == 409
    shown = client.get(f"/allocations/{INSTANCE}").json()
    assert shown["project_id"] == PROJECT
    assert shown["consumer_generation"] == 1
    assert shown["allocations"][SOURCE]["resources"] == {"VCPU": 1}


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "does not have enough properties"),
        ({INSTANCE: {"cow": "moo"}}, "JSON does not validate"),
        ({"not-a-uuid": holding({SOURCE: {"VCPU": 1}})}, "does not match any of the regexes"),
    ],
)
def test_malformed_post_bodies_are_refused(client, database, providers, payload, fragment):
    answer = client.post("/allocations", payload)
    assert answer.status == 400
    assert fragment in error_of(answer)["detail"] or "should be non-empty" in error_of(answer)["detail"]
    assert table_sizes(database)["consumers"] == 0


def test_post_needs_consumer_generations_from_1_28(app, providers):
    entry = holding({SOURCE: {"VCPU": 1}})
    del entry["consumer_generation"], entry["consumer_type"]
    assert Client(app, version="1.28").post("/allocations", {INSTANCE: entry}).status == 400
    assert Client(app, version="1.27").post("/allocations", {INSTANCE: entry}).status == 204


def test_post_needs_an_administrator_or_service(app, providers):
    assert Client(app, token="user").post("/allocations", {INSTANCE: holding({SOURCE: {"VCPU": 1}})}).status == 403
