"""HTTP spec: /resource_providers/{uuid}/inventories[/{resource_class}]."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stowage.storage.schema import inventories, revision
from tests.api.test_usages import allocate
from tests.support import Client

PROVIDER = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
MISSING = "7260669a-e3d4-4867-aaa7-683e2ab6958c"
INVENTORIES = f"/resource_providers/{PROVIDER}/inventories"
MAX_INT = 2**31 - 1
DEFAULTS = {"reserved": 0, "min_unit": 1, "max_unit": MAX_INT, "step_size": 1, "allocation_ratio": 1.0}


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


@pytest.fixture
def provider(client: Client) -> str:
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    return PROVIDER


def listing(client: Client) -> dict:
    answer = client.get(INVENTORIES)
    assert answer.status == 200
    return answer.json()


def generation(client: Client) -> int:
    return client.get(f"/resource_providers/{PROVIDER}").json()["generation"]


def set_all(client: Client, generation_: int, **totals: int):
    body = {
        "resource_provider_generation": generation_,
        "inventories": {name: {"total": total} for name, total in totals.items()},
    }
    return client.put(INVENTORIES, body)


def inventory_rows(database) -> int:
    with database.read() as connection:
        return connection.scalar(select(func.count()).select_from(inventories))


# --- reading -----------------------------------------------------------------


def test_a_new_provider_has_no_inventory_at_generation_0(client, provider):
    assert listing(client) == {"resource_provider_generation": 0, "inventories": {}}


@pytest.mark.parametrize("path", ["", "/VCPU"])
def test_the_inventory_of_an_unknown_provider_is_404(client, path):
    answer = client.get(f"/resource_providers/{MISSING}/inventories{path}")
    assert answer.status == 404
    assert f"No resource provider with uuid {MISSING} found" in error_of(answer)["detail"]


@pytest.mark.parametrize("resource_class", ["VCPU", "HOUSE"])
def test_a_class_the_provider_has_no_inventory_of_is_404(client, provider, resource_class):
    answer = client.get(f"{INVENTORIES}/{resource_class}")
    assert answer.status == 404
    assert f"No inventory of class {resource_class} for {PROVIDER}" in error_of(answer)["detail"]


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_an_empty_inventory_list_has_no_last_modified(client, provider, method):
    body = {"resource_provider_generation": 0, "inventories": {}} if method == "PUT" else None
    answer = client.request(method, INVENTORIES, body)
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-cache"
    assert "last-modified" not in answer.headers


@pytest.mark.parametrize("path", ["", "/DISK_GB"])
def test_inventory_reads_carry_cache_headers_from_1_15_only(app, client, provider, path):
    client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 10})
    assert "last-modified" not in Client(app, version="1.14").get(INVENTORIES + path).headers
    headers = Client(app, version="1.15").get(INVENTORIES + path).headers
    assert headers["cache-control"] == "no-cache"
    assert headers["last-modified"].endswith(" GMT")


# --- POST: one class ---------------------------------------------------------


def test_posting_an_inventory_answers_201_with_its_absolute_location_and_defaults(client, provider):
    answer = client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 2048, "reserved": 512})
    assert answer.status == 201
    assert answer.headers["location"] == f"http://localhost{INVENTORIES}/DISK_GB"
    assert answer.json() == {"resource_provider_generation": 1, "total": 2048, **DEFAULTS, "reserved": 512}
    assert client.get(f"{INVENTORIES}/DISK_GB").json() == answer.json()
    assert generation(client) == 1


def test_posting_a_class_the_provider_already_has_is_a_409_concurrent_update(client, provider):
    client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 10})
    answer = client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 20})
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.concurrent_update"
    assert "Update conflict" in error_of(answer)["detail"]
    assert listing(client)["inventories"]["DISK_GB"]["total"] == 10
    assert generation(client) == 1


def test_posting_an_unknown_class_is_400_and_writes_nothing(client, database, provider):
    answer = client.post(INVENTORIES, {"resource_class": "NO_CLASS_14", "total": 10})
    assert answer.status == 400
    assert "No such resource class NO_CLASS_14" in error_of(answer)["detail"]
    assert inventory_rows(database) == 0
    assert generation(client) == 0


def test_posting_to_an_unknown_provider_is_404(client):
    answer = client.post(f"/resource_providers/{MISSING}/inventories", {"resource_class": "VCPU", "total": 1})
    assert answer.status == 404


def test_a_generation_in_a_posted_inventory_is_accepted_and_ignored(client, provider):
    answer = client.post(INVENTORIES, {"resource_class": "VCPU", "total": 4, "resource_provider_generation": 99})
    assert answer.status == 201


@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "'total' is a required property"),
        ({"total": 0}, "0 is less than the minimum of 1"),
        ({"total": -1}, "-1 is less than the minimum of 1"),
        ({"total": MAX_INT + 1}, "Failed validating 'maximum' in schema['properties']['total']"),
        ({"total": 10, "reserved": -1}, "Failed validating 'minimum' in schema['properties']['reserved']"),
        ({"total": 10, "reserved": MAX_INT + 1}, "Failed validating 'maximum'"),
        ({"total": 10, "min_unit": 0}, "Failed validating 'minimum' in schema['properties']['min_unit']"),
        ({"total": 10, "max_unit": 0}, "Failed validating 'minimum' in schema['properties']['max_unit']"),
        ({"total": 10, "step_size": 0}, "Failed validating 'minimum' in schema['properties']['step_size']"),
        ({"total": 10, "allocation_ratio": 3.40282e39}, "Failed validating 'maximum'"),
        ({"total": "10"}, "'10' is not of type 'integer'"),
        ({"total": 10, "colour": "red"}, "Additional properties are not allowed"),
    ],
)
def test_a_malformed_inventory_is_400_and_writes_nothing(client, database, provider, fields, message):
    answer = client.post(INVENTORIES, {"resource_class": "DISK_GB", **fields})
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]
    assert message in error_of(answer)["detail"]
    assert inventory_rows(database) == 0


def test_a_lower_case_class_name_is_400(client, provider):
    answer = client.post(INVENTORIES, {"resource_class": "disk_gb", "total": 10})
    assert answer.status == 400
    assert "Failed validating 'pattern'" in error_of(answer)["detail"]


def test_a_body_that_is_not_json_is_400_and_one_not_typed_json_is_415(client, provider):
    answer = client.post(INVENTORIES, raw=b'{"foo": }', headers={"content-type": "application/json"})
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]
    answer = client.post(INVENTORIES, raw=b"total=1", headers={"content-type": "text/plain"})
    assert answer.status == 415


# --- capacity: reserved against total, before and from 1.26 ---------------------


def test_reserved_above_total_is_400_at_every_microversion(app, provider):
    for version in ("1.25", "1.26"):
        answer = Client(app, version=version).post(
            INVENTORIES, {"resource_class": "DISK_GB", "total": 256, "reserved": 512}
        )
        assert answer.status == 400
        assert f"Unable to create inventory for resource provider {PROVIDER}" in error_of(answer)["detail"]


def test_reserved_equal_to_total_is_400_before_1_26(app, provider):
    old = Client(app, version="1.25")
    answer = old.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 10, "reserved": 10})
    assert answer.status == 400
    assert "greater than or equal to total" in error_of(answer)["detail"]
    answer = old.put(
        INVENTORIES, {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4, "reserved": 4}}}
    )
    assert answer.status == 400
    assert "Unable to update inventory" in error_of(answer)["detail"]


def test_reserved_equal_to_total_is_allowed_from_1_26(app, provider):
    new = Client(app, version="1.26")
    assert new.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 10, "reserved": 10}).status == 201
    answer = new.put(f"{INVENTORIES}/DISK_GB", {"resource_provider_generation": 1, "total": 5, "reserved": 5})
    assert answer.status == 200
    answer = new.put(f"{INVENTORIES}/DISK_GB", {"resource_provider_generation": 2, "total": 5, "reserved": 6})
    assert answer.status == 400
    assert "The reserved value is greater than total" in error_of(answer)["detail"]


def test_capacity_counts_the_allocation_ratio(app, provider):
    # int((1 - 0) * 0.5) == 0: no capacity, refused before 1.26 as upstream does.
    body = {"resource_class": "VCPU", "total": 1, "allocation_ratio": 0.5}
    assert Client(app, version="1.25").post(INVENTORIES, body).status == 400
    assert Client(app, version="1.26").post(INVENTORIES, body).status == 201


def test_min_unit_above_max_unit_is_accepted_as_upstream_does(client, provider):
    answer = client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8, "min_unit": 4, "max_unit": 2})
    assert answer.status == 201


# --- PUT one class -----------------------------------------------------------


def test_updating_an_inventory_replaces_its_fields_and_bumps_the_generation(client, provider):
    client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 2048, "reserved": 512, "step_size": 10})
    answer = client.put(f"{INVENTORIES}/DISK_GB", {"resource_provider_generation": 1, "total": 1024})
    assert answer.status == 200
    assert answer.json() == {"resource_provider_generation": 2, "total": 1024, **DEFAULTS}
    assert listing(client)["inventories"]["DISK_GB"] == {"total": 1024, **DEFAULTS}


def test_updating_with_a_stale_generation_is_a_409_and_changes_nothing(client, provider):
    client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 10})
    answer = client.put(f"{INVENTORIES}/DISK_GB", {"resource_provider_generation": 5, "total": 20})
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.concurrent_update"
    assert "resource provider generation conflict" in error_of(answer)["detail"]
    assert listing(client) == {"resource_provider_generation": 1, "inventories": {"DISK_GB": {"total": 10, **DEFAULTS}}}


def test_updating_a_class_the_provider_has_no_inventory_of_is_400(client, provider):
    answer = client.put(f"{INVENTORIES}/MEMORY_MB", {"resource_provider_generation": 0, "total": 10})
    assert answer.status == 400
    assert "No inventory record with resource class" in error_of(answer)["detail"]
    assert generation(client) == 0


def test_updating_an_unknown_class_is_404(client, provider):
    answer = client.put(f"{INVENTORIES}/HOUSE", {"resource_provider_generation": 0, "total": 10})
    assert answer.status == 404
    assert "No such resource class HOUSE" in error_of(answer)["detail"]


def test_updating_needs_the_generation(client, provider):
    answer = client.put(f"{INVENTORIES}/VCPU", {"total": 10})
    assert answer.status == 400
    assert "'resource_provider_generation' is a required property" in error_of(answer)["detail"]


def test_shrinking_an_inventory_below_its_usage_is_allowed(client, database, provider):
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    allocate(database, PROVIDER, {"VCPU": 6})
    answer = client.put(f"{INVENTORIES}/VCPU", {"resource_provider_generation": 1, "total": 2})
    assert answer.status == 200
    assert client.get(f"/resource_providers/{PROVIDER}/usages").json()["usages"] == {"VCPU": 6}


# --- PUT all -------------------------------------------------------------------


def test_replacing_all_inventory_adds_updates_and_deletes_in_one_generation(client, provider):
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    client.post(INVENTORIES, {"resource_class": "DISK_GB", "total": 100})
    answer = set_all(client, 2, DISK_GB=200, MEMORY_MB=4096)
    assert answer.status == 200
    assert answer.json() == {
        "resource_provider_generation": 3,
        "inventories": {"DISK_GB": {"total": 200, **DEFAULTS}, "MEMORY_MB": {"total": 4096, **DEFAULTS}},
    }
    assert listing(client) == answer.json()


def test_replacing_with_the_same_empty_inventory_still_bumps_the_generation(app, provider):
    old = Client(app, version="1.4")
    answer = old.put(INVENTORIES, {"resource_provider_generation": 0, "inventories": {}})
    assert answer.json() == {"resource_provider_generation": 1, "inventories": {}}


def test_replacing_with_a_stale_generation_is_a_409_concurrent_update(app, provider):
    answer = set_all(Client(app, version="1.23"), 99, VCPU=1)
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.concurrent_update"


@pytest.mark.parametrize("name", ["HOUSE", "house"])
def test_replacing_with_an_unknown_class_is_400_and_writes_nothing(client, database, provider, name):
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    answer = set_all(client, 1, DISK_GB=10, **{name: 1})
    assert answer.status == 400
    assert "Unknown resource class in inventory" in error_of(answer)["detail"]
    assert listing(client) == {"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 8, **DEFAULTS}}}


def test_a_malformed_entry_is_400_whatever_its_name(client, provider):
    answer = client.put(INVENTORIES, {"resource_provider_generation": 0, "inventories": {"house": "red"}})
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]


def test_replacing_needs_the_generation_and_the_inventories(client, provider):
    answer = client.put(INVENTORIES, {"house": "red"})
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]


def test_removing_allocated_inventory_by_replacement_is_409_inuse_and_changes_nothing(app, database, provider):
    client = Client(app, version="1.23")
    set_all(client, 0, VCPU=8, DISK_GB=100)
    allocate(database, PROVIDER, {"VCPU": 1})
    answer = set_all(client, 1, DISK_GB=50)
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.inventory.inuse"
    assert f"Inventory for 'VCPU' on resource provider '{PROVIDER}' in use" in error_of(answer)["detail"]
    assert listing(client)["inventories"]["DISK_GB"]["total"] == 100


# --- DELETE --------------------------------------------------------------------


def test_deleting_one_inventory_answers_204_and_bumps_the_generation(client, provider):
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    answer = client.delete(f"{INVENTORIES}/VCPU")
    assert answer.status == 204
    assert "content-type" not in answer.headers
    assert listing(client) == {"resource_provider_generation": 2, "inventories": {}}


@pytest.mark.parametrize("resource_class", ["VCPU", "HOUSE"])
def test_deleting_an_inventory_the_provider_lacks_is_404(client, provider, resource_class):
    answer = client.delete(f"{INVENTORIES}/{resource_class}")
    assert answer.status == 404
    assert f"No inventory of class {resource_class} found for delete" in error_of(answer)["detail"]


def test_deleting_allocated_inventory_is_409_with_upstreams_concurrent_update_code(client, database, provider):
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    allocate(database, PROVIDER, {"VCPU": 1})
    answer = client.delete(f"{INVENTORIES}/VCPU")
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.concurrent_update"
    assert "Unable to delete inventory of class VCPU" in error_of(answer)["detail"]
    assert "VCPU" in listing(client)["inventories"]


def test_deleting_all_inventory_answers_204_from_1_5(app, client, provider):
    set_all(client, 0, VCPU=8, DISK_GB=100)
    assert Client(app, version="1.5").delete(INVENTORIES).status == 204
    assert Client(app, version="1.5").delete(INVENTORIES).status == 204
    assert listing(client) == {"resource_provider_generation": 3, "inventories": {}}


def test_deleting_all_inventory_before_1_5_is_405(app, provider):
    answer = Client(app, version="1.4").delete(INVENTORIES)
    assert answer.status == 405


def test_deleting_all_inventory_of_an_unknown_provider_is_404(client):
    assert client.delete(f"/resource_providers/{MISSING}/inventories").status == 404


def test_deleting_all_allocated_inventory_is_409_inuse_naming_classes_in_id_order(client, database, provider):
    set_all(client, 0, DISK_GB=100, VCPU=8, MEMORY_MB=1024)
    allocate(database, PROVIDER, {"DISK_GB": 10, "VCPU": 1})
    answer = client.delete(INVENTORIES)
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.inventory.inuse"
    assert f"Inventory for 'VCPU, DISK_GB' on resource provider '{PROVIDER}' in use" in error_of(answer)["detail"]
    assert len(listing(client)["inventories"]) == 3


# --- bookkeeping ---------------------------------------------------------------


def test_inventory_writes_bump_the_data_revision(client, database, provider):
    def current() -> int:
        with database.read() as connection:
            return connection.scalar(select(revision.c.revision))

    before = current()
    client.post(INVENTORIES, {"resource_class": "VCPU", "total": 8})
    assert current() > before


def test_policy_keeps_plain_users_out(app, provider):
    user = Client(app, token="user")
    assert user.get(INVENTORIES).status == 403
    assert user.post(INVENTORIES, {"resource_class": "VCPU", "total": 1}).status == 403
    assert user.delete(f"{INVENTORIES}/VCPU").status == 403
