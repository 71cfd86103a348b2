"""HTTP spec: /resource_classes and /resource_classes/{name} (1.2+; bodiless PUT from 1.7)."""
from __future__ import annotations

import os_resource_classes
import pytest
from sqlalchemy import select

from stowage.storage.schema import resource_classes
from tests.api.test_usages import allocate
from tests.support import Client

PROVIDER = "6a0f4c1e-2b3d-4e5f-8a9b-1c2d3e4f5a6b"
LONG_NAME = "CUSTOM_" + "S" * 249  # 256 characters


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def names(client: Client) -> list[str]:
    answer = client.get("/resource_classes")
    assert answer.status == 200
    return [found["name"] for found in answer.json()["resource_classes"]]


def class_id(database, name: str) -> int | None:
    with database.read() as connection:
        return connection.scalar(select(resource_classes.c.id).where(resource_classes.c.name == name))


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/resource_classes"), ("POST", "/resource_classes"), ("GET", "/resource_classes/VCPU"),
     ("PUT", "/resource_classes/CUSTOM_A"), ("DELETE", "/resource_classes/CUSTOM_A")],
)
def test_resource_classes_do_not_exist_at_1_1(app, method, path):
    body = {"name": "CUSTOM_A"} if method in ("POST", "PUT") else None
    assert Client(app, version="1.1").request(method, path, body).status == 404


def test_the_list_holds_the_standard_classes_in_upstream_order(client):
    assert names(client) == list(os_resource_classes.STANDARDS)


def test_a_class_shows_its_name_and_self_link(client):
    assert client.get("/resource_classes/VCPU").json() == {
        "name": "VCPU",
        "links": [{"rel": "self", "href": "/resource_classes/VCPU"}],
    }


def test_an_unknown_class_is_404(client):
    answer = client.get("/resource_classes/CUSTOM_NOPE")
    assert answer.status == 404
    assert "No such resource class CUSTOM_NOPE" in error_of(answer)["detail"]


# --- POST --------------------------------------------------------------------


def test_posting_a_custom_class_answers_201_with_a_location_and_no_body(client, database):
    answer = client.post("/resource_classes", {"name": "CUSTOM_GOLD"})
    assert answer.status == 201
    assert answer.headers["location"] == "http://localhost/resource_classes/CUSTOM_GOLD"
    assert "content-type" not in answer.headers
    assert answer.body == b""
    assert names(client)[-1] == "CUSTOM_GOLD"


def test_custom_class_ids_start_at_10000_and_count_up(client, database):
    client.post("/resource_classes", {"name": "CUSTOM_A"})
    client.put("/resource_classes/CUSTOM_B")
    assert (class_id(database, "CUSTOM_A"), class_id(database, "CUSTOM_B")) == (10000, 10001)


def test_posting_an_existing_class_is_409(client):
    client.post("/resource_classes", {"name": "CUSTOM_GOLD"})
    answer = client.post("/resource_classes", {"name": "CUSTOM_GOLD"})
    assert answer.status == 409
    assert "Conflicting resource class already exists: CUSTOM_GOLD" in error_of(answer)["detail"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "IRON_NFV"}, "Failed validating 'pattern'"),
        ({"name": "VCPU"}, "Failed validating 'pattern'"),
        ({"name": "CUSTOM_Illegal&@!Name?"}, "Failed validating 'pattern'"),
        ({"name": LONG_NAME}, "Failed validating 'maxLength'"),
        ({"name": "CUSTOM_A", "additional": "x"}, "Additional properties are not allowed"),
        ({}, "'name' is a required property"),
    ],
)
def test_a_bad_class_body_is_400_and_creates_nothing(client, body, message):
    answer = client.post("/resource_classes", body)
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]
    assert message in error_of(answer)["detail"]
    assert len(names(client)) == len(os_resource_classes.STANDARDS)


def test_a_post_that_accepts_only_text_is_still_answered(client):
    answer = client.post("/resource_classes", {"name": "FOO"}, headers={"accept": "text/plain"})
    assert answer.status == 400


def test_a_post_not_typed_json_is_415(client):
    answer = client.post("/resource_classes", raw=b"name", headers={"content-type": "text/plain"})
    assert answer.status == 415


# --- PUT: rename, 1.2 to 1.6 ------------------------------------------------------


@pytest.fixture
def old(app) -> Client:
    return Client(app, version="1.6")


def test_before_1_7_put_renames_a_custom_class_keeping_its_id(old, database):
    old.post("/resource_classes", {"name": "CUSTOM_A"})
    answer = old.put("/resource_classes/CUSTOM_A", {"name": "CUSTOM_B"})
    assert answer.status == 200
    assert answer.json() == {"name": "CUSTOM_B", "links": [{"rel": "self", "href": "/resource_classes/CUSTOM_B"}]}
    assert class_id(database, "CUSTOM_B") == 10000
    assert old.get("/resource_classes/CUSTOM_A").status == 404


def test_before_1_7_renaming_onto_an_existing_class_is_409(old):
    old.post("/resource_classes", {"name": "CUSTOM_A"})
    old.post("/resource_classes", {"name": "CUSTOM_B"})
    answer = old.put("/resource_classes/CUSTOM_A", {"name": "CUSTOM_B"})
    assert answer.status == 409
    assert "Resource class already exists: CUSTOM_B" in error_of(answer)["detail"]


def test_before_1_7_a_standard_class_cannot_be_renamed(old):
    answer = old.put("/resource_classes/VCPU", {"name": "CUSTOM_VCPU"})
    assert answer.status == 400
    assert "Cannot update standard resource class VCPU" in error_of(answer)["detail"]


def test_before_1_7_renaming_an_unknown_class_is_404(old):
    assert old.put("/resource_classes/CUSTOM_NOPE", {"name": "CUSTOM_B"}).status == 404


def test_before_1_7_a_rename_needs_a_custom_name(old):
    old.post("/resource_classes", {"name": "CUSTOM_A"})
    answer = old.put("/resource_classes/CUSTOM_A", {"name": "VCPU"})
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]


def test_before_1_7_a_bodiless_put_is_malformed_json(old):
    answer = old.put("/resource_classes/CUSTOM_COW", headers={"content-type": "application/json"})
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]


# --- PUT: create or confirm, 1.7+ --------------------------------------------------


def test_from_1_7_put_creates_a_missing_class_then_confirms_it(app):
    new = Client(app, version="1.7")
    created = new.put("/resource_classes/CUSTOM_COW")
    assert created.status == 201
    assert created.headers["location"] == "http://localhost/resource_classes/CUSTOM_COW"
    confirmed = new.put("/resource_classes/CUSTOM_COW")
    assert confirmed.status == 204
    assert confirmed.headers["location"] == "http://localhost/resource_classes/CUSTOM_COW"


@pytest.mark.parametrize("name, message", [("COW", "'pattern'"), ("VCPU", "'pattern'"), (LONG_NAME, "'maxLength'")])
def test_from_1_7_put_refuses_names_that_are_not_custom(app, name, message):
    answer = Client(app, version="1.7").put(f"/resource_classes/{name}")
    assert answer.status == 400
    assert f"Failed validating {message}" in error_of(answer)["detail"]


# --- DELETE --------------------------------------------------------------------


def test_deleting_an_unused_custom_class_removes_it(client):
    client.put("/resource_classes/CUSTOM_GOLD")
    answer = client.delete("/resource_classes/CUSTOM_GOLD")
    assert answer.status == 204
    assert client.get("/resource_classes/CUSTOM_GOLD").status == 404
    assert client.delete("/resource_classes/CUSTOM_GOLD").status == 404


def test_a_standard_class_cannot_be_deleted(client):
    answer = client.delete("/resource_classes/VCPU")
    assert answer.status == 400
    assert "Cannot delete standard resource class VCPU" in error_of(answer)["detail"]


def test_a_class_in_some_inventory_cannot_be_deleted(client):
    client.put("/resource_classes/CUSTOM_GOLD")
    client.post("/resource_providers", {"uuid": PROVIDER, "name": "rp"})
    client.post(f"/resource_providers/{PROVIDER}/inventories", {"resource_class": "CUSTOM_GOLD", "total": 5})
    answer = client.delete("/resource_classes/CUSTOM_GOLD")
    assert answer.status == 409
    assert "Error in delete resource class" in error_of(answer)["detail"]
    assert "Class is in use in inventory" in error_of(answer)["detail"]
    assert client.get("/resource_classes/CUSTOM_GOLD").status == 200


def test_a_class_some_allocation_uses_cannot_be_deleted(client, database):
    client.put("/resource_classes/CUSTOM_GOLD")
    client.post("/resource_providers", {"uuid": PROVIDER, "name": "rp"})
    allocate(database, PROVIDER, {"CUSTOM_GOLD": 1})  # no inventory behind it
    assert client.delete("/resource_classes/CUSTOM_GOLD").status == 409


# --- caching headers ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/resource_classes", "/resource_classes/VCPU", "/resource_classes/CUSTOM_A"])
def test_class_reads_carry_cache_headers_from_1_15_only(app, path):
    Client(app).put("/resource_classes/CUSTOM_A")
    assert "last-modified" not in Client(app, version="1.14").get(path).headers
    headers = Client(app, version="1.15").get(path).headers
    assert headers["cache-control"] == "no-cache"
    assert headers["last-modified"].endswith(" GMT")


def test_class_writes_never_carry_cache_headers(app):
    client = Client(app, version="1.15")
    for answer in (
        client.put("/resource_classes/CUSTOM_A"),
        client.post("/resource_classes", {"name": "CUSTOM_B"}),
        Client(app, version="1.6").put("/resource_classes/CUSTOM_A", {"name": "CUSTOM_C"}),
        client.delete("/resource_classes/CUSTOM_C"),
    ):
        assert answer.status in (200, 201, 204)
        assert "last-modified" not in answer.headers


def test_policy_keeps_plain_users_out(app):
    user = Client(app, token="user")
    assert user.get("/resource_classes").status == 403
    assert user.put("/resource_classes/CUSTOM_A").status == 403
