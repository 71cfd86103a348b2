"""HTTP spec: /resource_providers/{uuid}/usages and /usages (1.9+; by consumer type from 1.38).

Allocations are written straight into the tables by ``allocate`` so that
usages are specified independently of the allocations API.
"""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from stowage.api.app import create_app
from stowage.storage import schema
from stowage.storage.common import utcnow
from tests.support import Client, test_conf

PROVIDER = "0b6a5b4e-0d0c-4f55-9a0e-6f4f3d1c2b10"
OTHER_PROVIDER = "9e3c1d2b-7a6f-4b5e-8d9c-0a1b2c3d4e5f"
USAGES = f"/resource_providers/{PROVIDER}/usages"


def allocate(
    database,
    provider_uuid: str,
    resources: dict[str, int],
    project: str = "project-a",
    user: str = "user-a",
    consumer_type: str | None = None,
    consumer: str | None = None,
) -> str:
    """Give a consumer (new unless named) allocations against one provider; returns its uuid.

    Rows go straight into projects, users, consumer_types, consumers and
    allocations, with no capacity checks.
    """
    consumer = consumer or str(uuid.uuid4())
    now = utcnow()
    with database.write() as connection:

        def ensure(table, **key) -> int:
            column, value = next(iter(key.items()))
            found = connection.scalar(select(table.c.id).where(table.c[column] == value))
            if found is not None:
                return found
            return connection.execute(table.insert().values(created_at=now, **key)).inserted_primary_key[0]

        project_id = ensure(schema.projects, external_id=project)
        user_id = ensure(schema.users, external_id=user)
        type_id = ensure(schema.consumer_types, name=consumer_type) if consumer_type else None
        consumer_id = connection.scalar(
            select(schema.consumers.c.id).where(schema.consumers.c.uuid == consumer)
        )
        if consumer_id is None:
            consumer_id = connection.execute(
                schema.consumers.insert().values(
                    uuid=consumer,
                    project_id=project_id,
                    user_id=user_id,
                    consumer_type_id=type_id,
                    generation=1,
                    created_at=now,
                )
            ).inserted_primary_key[0]
        provider_id = connection.scalar(
            select(schema.resource_providers.c.id).where(schema.resource_providers.c.uuid == provider_uuid)
        )
        for resource_class, used in resources.items():
            class_id = connection.scalar(
                select(schema.resource_classes.c.id).where(schema.resource_classes.c.name == resource_class)
            )
            connection.execute(
                schema.allocations.insert().values(
                    resource_provider_id=provider_id,
                    consumer_id=consumer_id,
                    resource_class_id=class_id,
                    used=used,
                    created_at=now,
                )
            )
    return consumer


def create_provider(client: Client, provider_uuid: str = PROVIDER, **inventory: int) -> str:
    assert client.post("/resource_providers", {"uuid": provider_uuid, "name": provider_uuid}).status == 200
    if inventory:
        body = {
            "resource_provider_generation": 0,
            "inventories": {name: {"total": total} for name, total in inventory.items()},
        }
        assert client.put(f"/resource_providers/{provider_uuid}/inventories", body).status == 200
    return provider_uuid


def usages_of(client: Client, query: str) -> dict:
    answer = client.get(f"/usages?{query}")
    assert answer.status == 200, answer.body
    return answer.json()["usages"]


# --- /resource_providers/{uuid}/usages --------------------------------------


def test_an_unknown_provider_has_no_usages(client):
    answer = client.get(USAGES)
    assert answer.status == 404
    assert f"No resource provider with uuid {PROVIDER} found" in answer.json()["errors"][0]["detail"]


def test_a_provider_without_inventory_has_empty_usages(client):
    create_provider(client)
    assert client.get(USAGES).json() == {"resource_provider_generation": 0, "usages": {}}


def test_every_class_with_inventory_appears_at_zero_until_allocated(client):
    create_provider(client, VCPU=8, DISK_GB=100)
    assert client.get(USAGES).json() == {
        "resource_provider_generation": 1,
        "usages": {"VCPU": 0, "DISK_GB": 0},
    }


def test_provider_usages_sum_every_consumers_allocations(client, database):
    create_provider(client, VCPU=8, DISK_GB=100, MEMORY_MB=4096)
    allocate(database, PROVIDER, {"VCPU": 2, "DISK_GB": 10})
    allocate(database, PROVIDER, {"VCPU": 3}, project="project-b")
    assert client.get(USAGES).json()["usages"] == {"VCPU": 5, "DISK_GB": 10, "MEMORY_MB": 0}


def test_provider_usages_count_only_that_providers_allocations(client, database):
    create_provider(client, VCPU=8)
    create_provider(client, OTHER_PROVIDER, VCPU=8)
    allocate(database, OTHER_PROVIDER, {"VCPU": 4})
    assert client.get(USAGES).json()["usages"] == {"VCPU": 0}


def test_provider_usages_carry_cache_headers_from_1_15_only(app):
    create_provider(Client(app))
    assert "last-modified" not in Client(app, version="1.14").get(USAGES).headers
    headers = Client(app, version="1.15").get(USAGES).headers
    assert headers["cache-control"] == "no-cache"
    assert headers["last-modified"].endswith(" GMT")


# --- /usages: before 1.38 ----------------------------------------------------


def test_total_usages_do_not_exist_before_1_9(app):
    assert Client(app, version="1.8").get("/usages?project_id=project-a").status == 404


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "'project_id' is a required property"),
        ("project_id=", "Failed validating 'minLength'"),
        ("project_id=p&user_id=", "Failed validating 'minLength'"),
        ("project_id=" + "p" * 256, "Failed validating 'maxLength'"),
        ("project_id=p&dummy=1", "Additional properties are not allowed"),
    ],
)
def test_a_bad_total_usages_query_is_400(app, query, message):
    answer = Client(app, version="1.9").get(f"/usages?{query}")
    assert answer.status == 400
    assert message in answer.json()["errors"][0]["detail"]


def test_consumer_type_is_not_a_parameter_before_1_38(app):
    answer = Client(app, version="1.37").get("/usages?project_id=p&consumer_type=all")
    assert answer.status == 400
    assert "Additional properties are not allowed" in answer.json()["errors"][0]["detail"]


def test_a_project_without_allocations_has_empty_usages(app):
    assert usages_of(Client(app, version="1.9"), "project_id=nobody") == {}


def test_total_usages_sum_the_projects_allocations_by_class(app, database):
    client = Client(app, version="1.37")
    create_provider(client, VCPU=8, DISK_GB=100)
    create_provider(client, OTHER_PROVIDER, VCPU=8)
    allocate(database, PROVIDER, {"VCPU": 2, "DISK_GB": 10}, user="alice")
    allocate(database, OTHER_PROVIDER, {"VCPU": 3}, user="bob")
    allocate(database, PROVIDER, {"VCPU": 1}, project="project-b")
    assert usages_of(client, "project_id=project-a") == {"VCPU": 5, "DISK_GB": 10}
    assert usages_of(client, "project_id=project-a&user_id=bob") == {"VCPU": 3}
    assert usages_of(client, "project_id=project-a&user_id=carol") == {}


def test_total_usages_carry_cache_headers_from_1_15_only(app):
    assert "last-modified" not in Client(app, version="1.14").get("/usages?project_id=p").headers
    assert Client(app, version="1.15").get("/usages?project_id=p").headers["cache-control"] == "no-cache"


# --- /usages: 1.38, by consumer type ---------------------------------------


@pytest.fixture
def typed_allocations(client, database):
    """Four consumers of project-a: two INSTANCE, one MIGRATION, one without a type."""
    create_provider(client, VCPU=16, DISK_GB=1000)
    allocate(database, PROVIDER, {"VCPU": 2, "DISK_GB": 10}, consumer_type="INSTANCE")
    allocate(database, PROVIDER, {"VCPU": 1}, consumer_type="INSTANCE", user="bob")
    allocate(database, PROVIDER, {"DISK_GB": 5}, consumer_type="MIGRATION")
    allocate(database, PROVIDER, {"VCPU": 4, "DISK_GB": 100})
    allocate(database, PROVIDER, {"VCPU": 7}, project="project-b", consumer_type="INSTANCE")


def test_from_1_38_usages_are_grouped_by_consumer_type_with_a_count(client, typed_allocations):
    assert usages_of(client, "project_id=project-a") == {
        "INSTANCE": {"consumer_count": 2, "VCPU": 3, "DISK_GB": 10},
        "MIGRATION": {"consumer_count": 1, "DISK_GB": 5},
        "unknown": {"consumer_count": 1, "VCPU": 4, "DISK_GB": 100},
    }


def test_a_consumer_using_two_classes_is_counted_once(client, typed_allocations):
    assert usages_of(client, "project_id=project-a&consumer_type=INSTANCE&user_id=user-a") == {
        "INSTANCE": {"consumer_count": 1, "VCPU": 2, "DISK_GB": 10}
    }


def test_consumer_type_all_puts_every_consumer_in_one_group(client, typed_allocations):
    assert usages_of(client, "project_id=project-a&consumer_type=all") == {
        "all": {"consumer_count": 4, "VCPU": 7, "DISK_GB": 115}
    }


def test_consumer_type_unknown_keeps_consumers_without_a_type(client, typed_allocations):
    assert usages_of(client, "project_id=project-a&consumer_type=unknown") == {
        "unknown": {"consumer_count": 1, "VCPU": 4, "DISK_GB": 100}
    }


@pytest.mark.parametrize("consumer_type", ["COW", "ALL", "UNKNOWN"])
def test_a_type_no_consumer_has_gives_empty_usages(client, typed_allocations, consumer_type):
    assert usages_of(client, f"project_id=project-a&consumer_type={consumer_type}") == {}


def test_all_and_unknown_give_empty_usages_for_a_project_without_allocations(client):
    assert usages_of(client, "project_id=nobody&consumer_type=all") == {}
    assert usages_of(client, "project_id=nobody&consumer_type=unknown") == {}


def test_a_lower_case_consumer_type_name_is_400(client):
    answer = client.get("/usages?project_id=p&consumer_type=instance")
    assert answer.status == 400
    assert "Failed validating 'pattern'" in answer.json()["errors"][0]["detail"]


# --- policy ---------------------------------------------------------------


def test_a_projects_reader_may_see_its_own_total_usages_but_no_others(database):
    app = create_app(test_conf(oslo_policy={"enforce_new_defaults": True}), database)
    reader = Client(app, token="reader:project-a")
    headers = {"x-roles": "reader"}
    assert reader.get("/usages?project_id=project-a", headers=headers).status == 200
    assert reader.get("/usages?project_id=project-b", headers=headers).status == 403
    assert reader.get(USAGES, headers=headers).status == 403


def test_a_plain_user_may_not_see_usages_under_the_legacy_defaults(app):
    user = Client(app, token="user:project-a")
    assert user.get("/usages?project_id=project-a").status == 403
    assert user.get(USAGES).status == 403
