"""HTTP spec: PUT/GET/DELETE /allocations/{consumer} and GET provider allocations.

Topology used throughout::

    compute (PROVIDER)
      VCPU     total 8, max_unit 4
      DISK_GB  total 100, reserved 20, min_unit 10, step_size 5
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stowage.storage.schema import allocations, consumers, projects, users
from tests.support import Client

PROVIDER = "2f6a1c1e-7b6d-4c47-9a3b-5f0d8f1f0a01"
OTHER_PROVIDER = "8b1a9953-c461-4d4b-a4a7-6c3f2d1e0b02"
MISSING_PROVIDER = "d3c2b1a0-9f8e-4d7c-8b6a-5e4d3c2b1a03"
CONSUMER = "6c1d0b57-3a3f-4d7e-9e61-a3f2a1b0c004"
OTHER_CONSUMER = "71e2a8a2-5c0b-4f4b-8f3e-9d6f1e2d3c05"
PROJECT = "project-a"
USER = "user-a"


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def body(resources: dict, provider: str = PROVIDER, generation=None, **extra) -> dict:
    """A 1.38 PUT body giving ``resources`` of ``provider``."""
    return {
        "allocations": {provider: {"resources": resources}} if resources else {},
        "project_id": PROJECT,
        "user_id": USER,
        "consumer_generation": generation,
        "consumer_type": "INSTANCE",
        **extra,
    }


@pytest.fixture
def provider(client: Client) -> str:
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    answer = client.put(
        f"/resource_providers/{PROVIDER}/inventories",
        {
            "resource_provider_generation": 0,
            "inventories": {
                "VCPU": {"total": 8, "max_unit": 4},
                "DISK_GB": {"total": 100, "reserved": 20, "min_unit": 10, "step_size": 5},
            },
        },
    )
    assert answer.status == 200
    return PROVIDER


def provider_generation(client: Client, provider_uuid: str = PROVIDER) -> int:
    return client.get(f"/resource_providers/{provider_uuid}").json()["generation"]


def usages(client: Client) -> dict:
    return client.get(f"/resource_providers/{PROVIDER}/usages").json()["usages"]


def count_rows(database, table) -> int:
    with database.read() as connection:
        return connection.scalar(select(func.count()).select_from(table))


# Reading


def test_an_unknown_consumer_holds_nothing(client):
    answer = client.get(f"/allocations/{CONSUMER}")
    assert answer.status == 200
    assert answer.json() == {"allocations": {}}


def test_a_consumer_shows_its_allocations_owner_generation_and_type(client, provider):
    assert client.put(f"/allocations/{CONSUMER}", body({"VCPU": 2, "DISK_GB": 10})).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json() == {
        "allocations": {PROVIDER: {"generation": 2, "resources": {"VCPU": 2, "DISK_GB": 10}}},
        "project_id": PROJECT,
        "user_id": USER,
        "consumer_generation": 1,
        "consumer_type": "INSTANCE",
    }


@pytest.mark.parametrize(
    "version, keys",
    [
        ("1.11", {"allocations"}),
        ("1.12", {"allocations", "project_id", "user_id"}),
        ("1.27", {"allocations", "project_id", "user_id"}),
        ("1.28", {"allocations", "project_id", "user_id", "consumer_generation"}),
        ("1.37", {"allocations", "project_id", "user_id", "consumer_generation"}),
        ("1.38", {"allocations", "project_id", "user_id", "consumer_generation", "consumer_type"}),
    ],
)
def test_what_get_shows_grows_with_the_microversion(app, client, provider, version, keys):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    assert set(Client(app, version=version).get(f"/allocations/{CONSUMER}").json()) == keys


def test_consumers_written_before_1_38_have_the_unknown_type(app, client, provider):
    old = Client(app, version="1.37")
    put = body({"VCPU": 1})
    del put["consumer_type"]
    assert old.put(f"/allocations/{CONSUMER}", put).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json()["consumer_type"] == "unknown"


def test_cache_headers_appear_from_1_15(app, client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    for path in (f"/allocations/{CONSUMER}", f"/resource_providers/{PROVIDER}/allocations"):
        new = Client(app, version="1.15").get(path)
        assert new.headers["cache-control"] == "no-cache"
        assert new.headers["last-modified"].endswith(" GMT")
        old = Client(app, version="1.14").get(path)
        assert "cache-control" not in old.headers and "last-modified" not in old.headers


def test_a_provider_lists_allocations_by_consumer_with_its_generation(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 2}))
    client.put(f"/allocations/{OTHER_CONSUMER}", body({"VCPU": 1, "DISK_GB": 20}))
    assert client.get(f"/resource_providers/{PROVIDER}/allocations").json() == {
        "resource_provider_generation": 3,
        "allocations": {
            CONSUMER: {"resources": {"VCPU": 2}, "consumer_generation": 1},
            OTHER_CONSUMER: {"resources": {"VCPU": 1, "DISK_GB": 20}, "consumer_generation": 1},
        },
    }


def test_provider_allocations_omit_consumer_generations_before_1_28(app, client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 2}))
    answer = Client(app, version="1.27").get(f"/resource_providers/{PROVIDER}/allocations")
    assert answer.json()["allocations"] == {CONSUMER: {"resources": {"VCPU": 2}}}


def test_allocations_of_a_missing_provider_are_404(client):
    answer = client.get(f"/resource_providers/{MISSING_PROVIDER}/allocations")
    assert answer.status == 404
    assert f"Resource provider '{MISSING_PROVIDER}' not found" in error_of(answer)["detail"]


# Writing: body shapes by microversion


def test_the_list_form_of_1_0_writes_with_the_incomplete_owner(app, client, provider):
    old = Client(app, version="1.0")
    put = {"allocations": [{"resource_provider": {"uuid": PROVIDER}, "resources": {"VCPU": 1}}]}
    assert old.put(f"/allocations/{CONSUMER}", put).status == 204
    shown = client.get(f"/allocations/{CONSUMER}").json()
    assert shown["project_id"] == shown["user_id"] == "00000000-0000-0000-0000-000000000000"


def test_the_list_form_needs_project_and_user_from_1_8(app, provider):
    put = {"allocations": [{"resource_provider": {"uuid": PROVIDER}, "resources": {"VCPU": 1}}]}
    assert Client(app, version="1.7").put(f"/allocations/{CONSUMER}", {**put, "project_id": "p"}).status == 400
    answer = Client(app, version="1.8").put(f"/allocations/{CONSUMER}", put)
    assert answer.status == 400
    assert "'project_id' is a required property" in error_of(answer)["detail"]
    owned = {**put, "project_id": PROJECT, "user_id": USER}
    assert Client(app, version="1.8").put(f"/allocations/{CONSUMER}", owned).status == 204


def test_the_dict_form_arrives_at_1_12(app, provider):
    put = {"allocations": {PROVIDER: {"resources": {"VCPU": 1}}}, "project_id": PROJECT, "user_id": USER}
    assert Client(app, version="1.11").put(f"/allocations/{CONSUMER}", put).status == 400
    assert Client(app, version="1.12").put(f"/allocations/{CONSUMER}", put).status == 204


def test_the_consumer_generation_is_required_from_1_28(app, provider):
    put = {"allocations": {PROVIDER: {"resources": {"VCPU": 1}}}, "project_id": PROJECT, "user_id": USER}
    answer = Client(app, version="1.28").put(f"/allocations/{CONSUMER}", put)
    assert answer.status == 400
    assert "'consumer_generation' is a required property" in error_of(answer)["detail"]
    assert Client(app, version="1.27").put(f"/allocations/{CONSUMER}", put).status == 204


def test_the_consumer_type_is_required_from_1_38_and_refused_before(app, provider):
    put = body({"VCPU": 1})
    without_type = {key: value for key, value in put.items() if key != "consumer_type"}
    answer = Client(app, version="1.38").put(f"/allocations/{CONSUMER}", without_type)
    assert "'consumer_type' is a required property" in error_of(answer)["detail"]
    answer = Client(app, version="1.37").put(f"/allocations/{CONSUMER}", put)
    assert "'consumer_type' was unexpected" in error_of(answer)["detail"]


def test_a_lower_case_consumer_type_is_refused(client, provider):
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}, consumer_type="instance"))
    assert answer.status == 400
    assert "'instance' does not match '^[A-Z0-9_]+$'" in error_of(answer)["detail"]


def test_mappings_are_accepted_from_1_34_only(app, provider):
    put = body({"VCPU": 1}, mappings={"": [PROVIDER]})
    del put["consumer_type"]
    assert Client(app, version="1.33").put(f"/allocations/{CONSUMER}", put).status == 400
    assert Client(app, version="1.34").put(f"/allocations/{CONSUMER}", put).status == 204


def test_a_dashless_consumer_uuid_names_the_same_consumer(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    answer = client.put(f"/allocations/{CONSUMER.replace('-', '')}", body({"VCPU": 2}, generation=1))
    assert answer.status == 204
    assert client.get(f"/allocations/{CONSUMER}").json()["allocations"][PROVIDER]["resources"] == {"VCPU": 2}


def test_a_consumer_that_is_not_a_uuid_is_refused(client, provider):
    answer = client.put("/allocations/not-a-uuid", body({"VCPU": 1}))
    assert answer.status == 400
    assert "Malformed consumer_uuid: not-a-uuid" in error_of(answer)["detail"]


@pytest.mark.parametrize(
    "resources, fragment",
    [
        ({"VCPU": 0}, "0 is less than the minimum of 1"),
        ({"cow": 1}, "does not match any of the regexes"),
        ({}, "JSON does not validate"),
    ],
)
def test_malformed_amounts_are_refused_and_nothing_is_written(client, database, provider, resources, fragment):
    put = body(resources)
    put["allocations"] = {PROVIDER: {"resources": resources}}
    answer = client.put(f"/allocations/{CONSUMER}", put)
    assert answer.status == 400
    assert fragment in error_of(answer)["detail"]
    assert count_rows(database, consumers) == 0 and count_rows(database, projects) == 0


def test_a_body_that_is_not_json_is_refused(client, provider):
    answer = client.put(f"/allocations/{CONSUMER}", raw=b"{nope", headers={"content-type": "application/json"})
    assert answer.status == 400
    answer = client.put(f"/allocations/{CONSUMER}", raw=b"{}", headers={"content-type": "text/plain"})
    assert answer.status == 415


# Writing: inventory rules


def test_a_missing_provider_is_a_bad_request_that_keeps_the_new_consumer(client, database, provider):
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}, provider=MISSING_PROVIDER))
    assert answer.status == 400
    assert f"Allocation for resource provider '{MISSING_PROVIDER}' that does not exist." in error_of(answer)["detail"]
    # Upstream creates the consumer before it looks for providers, and keeps it.
    assert count_rows(database, consumers) == 1
    assert count_rows(database, allocations) == 0


def test_an_unknown_resource_class_is_a_bad_request(client, provider):
    answer = client.put(f"/allocations/{CONSUMER}", body({"CUSTOM_NOPE": 1}))
    assert answer.status == 400
    assert error_of(answer)["detail"].endswith(
        f"Unable to allocate inventory for consumer {CONSUMER}: No such resource class CUSTOM_NOPE.  "
    )


def test_a_class_the_provider_has_no_inventory_of_is_a_conflict(client, provider):
    answer = client.put(f"/allocations/{CONSUMER}", body({"MEMORY_MB": 1}))
    assert answer.status == 409
    assert f"Inventory for 'MEMORY_MB' on resource provider '{PROVIDER}' invalid." in error_of(answer)["detail"]


def test_a_provider_without_any_inventory_is_a_conflict(client):
    client.post("/resource_providers", {"uuid": OTHER_PROVIDER, "name": "bare"})
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}, provider=OTHER_PROVIDER))
    assert answer.status == 409
    assert "Unable to allocate inventory: Inventory for 'VCPU'" in error_of(answer)["detail"]


@pytest.mark.parametrize(
    "resources",
    [{"VCPU": 5}, {"DISK_GB": 5}, {"DISK_GB": 12}],
    ids=["above max_unit", "below min_unit", "not a multiple of step_size"],
)
def test_amounts_must_respect_min_max_and_step(client, provider, resources):
    answer = client.put(f"/allocations/{CONSUMER}", body(resources))
    assert answer.status == 409
    assert "The requested amount would violate inventory constraints." in error_of(answer)["detail"]


def test_usage_may_reach_but_not_pass_total_minus_reserved(client, provider):
    assert client.put(f"/allocations/{CONSUMER}", body({"DISK_GB": 50})).status == 204
    answer = client.put(f"/allocations/{OTHER_CONSUMER}", body({"DISK_GB": 35}))
    assert answer.status == 409
    assert "The requested amount would exceed the capacity." in error_of(answer)["detail"]
    assert client.put(f"/allocations/{OTHER_CONSUMER}", body({"DISK_GB": 30})).status == 204
    assert usages(client)["DISK_GB"] == 80


def test_the_allocation_ratio_multiplies_capacity(client, provider):
    client.put(
        f"/resource_providers/{PROVIDER}/inventories/VCPU",
        {"resource_provider_generation": 1, "total": 8, "max_unit": 4, "allocation_ratio": 2.0},
    )
    for index in range(4):
        consumer = f"00000000-0000-0000-0000-00000000000{index}"
        assert client.put(f"/allocations/{consumer}", body({"VCPU": 4})).status == 204
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    assert answer.status == 409


def test_an_over_committed_provider_accepts_a_write_that_does_not_make_it_worse(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 4}))
    client.put(f"/allocations/{OTHER_CONSUMER}", body({"VCPU": 4}))
    client.put(
        f"/resource_providers/{PROVIDER}/inventories/VCPU",
        {"resource_provider_generation": provider_generation(client), "total": 4, "max_unit": 4},
    )
    assert client.put(f"/allocations/{CONSUMER}", body({"VCPU": 3}, generation=1)).status == 204
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 4}, generation=2))
    assert answer.status == 409


def test_replacing_a_consumers_allocations_frees_what_it_held(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 4}))
    client.put(f"/allocations/{OTHER_CONSUMER}", body({"VCPU": 4}))
    assert client.put(f"/allocations/{CONSUMER}", body({"VCPU": 2}, generation=1)).status == 204
    assert usages(client) == {"VCPU": 6, "DISK_GB": 0}


# Writing: generations


def test_every_write_bumps_the_provider_and_consumer_generations(client, provider):
    assert provider_generation(client) == 1
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 2}, generation=1))
    assert provider_generation(client) == 3
    assert client.get(f"/allocations/{CONSUMER}").json()["consumer_generation"] == 2


def test_a_new_consumer_must_be_claimed_with_a_null_generation(client, database, provider):
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}, generation=5))
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.concurrent_update"
    assert "consumer generation conflict - expected null but got 5" in error["detail"]
    assert count_rows(database, consumers) == 0


@pytest.mark.parametrize("stale", [None, 0, 2])
def test_a_stale_consumer_generation_is_a_conflict_and_changes_nothing(client, provider, stale):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    answer = client.put(f"/allocations/{CONSUMER}", body({"VCPU": 3}, generation=stale))
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.concurrent_update"
    assert f"expected 1 but got {stale}" in error_of(answer)["detail"]
    assert usages(client)["VCPU"] == 1
    assert provider_generation(client) == 2


def test_before_1_28_the_consumer_generation_is_not_checked(app, client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    put = {"allocations": {PROVIDER: {"resources": {"VCPU": 2}}}, "project_id": PROJECT, "user_id": USER}
    assert Client(app, version="1.27").put(f"/allocations/{CONSUMER}", put).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json()["consumer_generation"] == 2


def test_a_write_may_move_a_consumer_to_another_project_user_and_type(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    put = body({"VCPU": 1}, generation=1, project_id="project-b", user_id="user-b", consumer_type="MIGRATION")
    assert client.put(f"/allocations/{CONSUMER}", put).status == 204
    shown = client.get(f"/allocations/{CONSUMER}").json()
    assert (shown["project_id"], shown["user_id"], shown["consumer_type"]) == (
        "project-b",
        "user-b",
        "MIGRATION",
    )


def test_emptying_a_consumer_with_put_deletes_it(client, database, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    assert client.put(f"/allocations/{CONSUMER}", body({}, generation=1)).status == 204
    assert client.get(f"/allocations/{CONSUMER}").json() == {"allocations": {}}
    assert count_rows(database, consumers) == 0
    # A deleted consumer starts again from a null generation.
    assert client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1})).status == 204


def test_empty_allocations_are_refused_before_1_28(app, provider):
    put = {"allocations": {}, "project_id": PROJECT, "user_id": USER}
    assert Client(app, version="1.27").put(f"/allocations/{CONSUMER}", put).status == 400


def test_projects_and_users_are_shared_between_consumers(client, database, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    client.put(f"/allocations/{OTHER_CONSUMER}", body({"VCPU": 1}))
    assert count_rows(database, projects) == 1 and count_rows(database, users) == 1


# Deleting


def test_delete_removes_the_allocations_and_the_consumer(client, database, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    assert client.delete(f"/allocations/{CONSUMER}").status == 204
    assert count_rows(database, allocations) == 0 and count_rows(database, consumers) == 0
    assert usages(client)["VCPU"] == 0


def test_delete_leaves_the_provider_generation_alone(client, provider):
    client.put(f"/allocations/{CONSUMER}", body({"VCPU": 1}))
    client.delete(f"/allocations/{CONSUMER}")
    assert provider_generation(client) == 2


def test_deleting_what_is_not_there_is_404(client, provider):
    answer = client.delete(f"/allocations/{CONSUMER}")
    assert answer.status == 404
    assert f"No allocations for consumer '{CONSUMER}'" in error_of(answer)["detail"]


def test_allocations_need_an_administrator_or_service(app, provider):
    user = Client(app, token="user")
    assert user.get(f"/allocations/{CONSUMER}").status == 403
    assert user.put(f"/allocations/{CONSUMER}", body({"VCPU": 1})).status == 403
    assert user.delete(f"/allocations/{CONSUMER}").status == 403
    assert user.get(f"/resource_providers/{PROVIDER}/allocations").status == 403
