"""HTTP spec: creating, showing, renaming and deleting one resource provider."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stowage.storage import schema
from tests.support import Client

PROVIDER = "5a6b0a4e-3c1f-4a8e-9d55-0e3f6b7c8d91"
OTHER = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
URL = f"/resource_providers/{PROVIDER}"


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def create(client: Client, name: str = "compute", uuid: str = PROVIDER, **extra):
    return client.post("/resource_providers", {"name": name, "uuid": uuid, **extra})


def row_count(database, table) -> int:
    with database.read() as connection:
        return connection.scalar(select(func.count()).select_from(table))


# --- create -------------------------------------------------------------------


def test_creating_from_1_20_answers_200_with_the_provider_and_its_location(client):
    answer = create(client)
    assert answer.status == 200
    assert answer.headers["location"].endswith(URL)
    assert answer.headers["cache-control"] == "no-cache"
    assert "last-modified" in answer.headers
    body = answer.json()
    assert body["uuid"] == PROVIDER
    assert body["name"] == "compute"
    assert body["generation"] == 0
    assert body["parent_provider_uuid"] is None
    assert body["root_provider_uuid"] == PROVIDER


def test_creating_before_1_20_answers_201_with_only_a_location(app):
    answer = create(Client(app, version="1.19"))
    assert answer.status == 201
    assert answer.body == b""
    assert "content-type" not in answer.headers
    assert answer.headers["location"].endswith(URL)


def test_a_provider_created_without_a_uuid_gets_one(client):
    answer = client.post("/resource_providers", {"name": "nameless"})
    assert answer.status == 200
    generated = answer.json()["uuid"]
    assert answer.headers["location"].endswith(f"/resource_providers/{generated}")
    assert client.get(f"/resource_providers/{generated}").status == 200


def test_a_uuid_without_dashes_is_stored_in_its_dashed_form(client):
    answer = create(client, uuid=PROVIDER.replace("-", "").upper())
    assert answer.status == 200
    assert answer.json()["uuid"] == PROVIDER


@pytest.mark.parametrize(
    "second, conflict",
    [
        ({"name": "other", "uuid": PROVIDER}, f"Conflicting resource provider uuid: {PROVIDER}"),
        ({"name": "compute", "uuid": OTHER}, "Conflicting resource provider name: compute"),
        ({"name": "other", "uuid": PROVIDER.replace("-", "")}, f"uuid: {PROVIDER} already exists"),
    ],
)
def test_a_taken_uuid_or_name_is_a_409_duplicate(client, database, second, conflict):
    assert create(client).status == 200
    answer = client.post("/resource_providers", second)
    assert answer.status == 409
    error = error_of(answer)
    assert conflict in error["detail"]
    assert error["code"] == "placement.duplicate_name"
    assert row_count(database, schema.resource_providers) == 1


@pytest.mark.parametrize(
    "body, complaint",
    [
        ({}, "'name' is a required property"),
        ({"name": "x" * 201}, "Failed validating 'maxLength'"),
        ({"name": "bad", "uuid": "not a uuid"}, "Failed validating 'format'"),
        ({"name": "bad", "transport": "car"}, "Additional properties are not allowed"),
        ({"name": 5}, "5 is not of type 'string'"),
    ],
)
def test_a_malformed_body_is_a_400_and_creates_nothing(client, database, body, complaint):
    answer = client.post("/resource_providers", body)
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]
    assert complaint in error_of(answer)["detail"]
    assert row_count(database, schema.resource_providers) == 0


def test_malformed_json_is_a_400(client):
    answer = client.post("/resource_providers", raw=b'{"name": }')
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]


def test_a_body_not_typed_as_json_is_a_415(client):
    answer = client.post(
        "/resource_providers", raw=b'{"name": "x"}', headers={"content-type": "text/plain"}
    )
    assert answer.status == 415


def test_a_parent_cannot_be_named_before_1_14(app):
    answer = create(Client(app, version="1.13"), parent_provider_uuid=OTHER)
    assert answer.status == 400
    assert "Additional properties are not allowed" in error_of(answer)["detail"]


# --- show ---------------------------------------------------------------------


def test_showing_a_provider_lists_the_links_of_its_microversion(app, client):
    create(client)
    for version, relations in [
        ("1.0", ["self", "inventories", "usages"]),
        ("1.1", ["self", "inventories", "usages", "aggregates"]),
        ("1.6", ["self", "inventories", "usages", "aggregates", "traits"]),
        ("1.11", ["self", "inventories", "usages", "aggregates", "traits", "allocations"]),
    ]:
        body = Client(app, version=version).get(URL).json()
        assert [link["rel"] for link in body["links"]] == relations
        hrefs = {link["rel"]: link["href"] for link in body["links"]}
        assert hrefs["self"] == URL
        assert hrefs["usages"] == URL + "/usages"


def test_tree_fields_appear_from_1_14(app, client):
    create(client)
    older = Client(app, version="1.13").get(URL).json()
    assert set(older) == {"uuid", "name", "generation", "links"}
    newer = Client(app, version="1.14").get(URL).json()
    assert newer["root_provider_uuid"] == PROVIDER
    assert newer["parent_provider_uuid"] is None


def test_an_update_reports_when_the_provider_was_last_updated_before(client):
    """As upstream: the previous update's time; a child never updated has none
    (a root's creation counts as its first update)."""
    create(client)
    create(client, "child", OTHER, parent_provider_uuid=PROVIDER)
    assert "last-modified" in client.put(URL, {"name": "compute"}).headers
    first = client.put(f"/resource_providers/{OTHER}", {"name": "child-2"})
    assert first.status == 200
    assert first.headers["cache-control"] == "no-cache"
    assert "last-modified" not in first.headers
    assert "last-modified" in client.put(f"/resource_providers/{OTHER}", {"name": "child-3"}).headers


def test_cache_headers_appear_from_1_15(app, client):
    create(client)
    assert "last-modified" not in Client(app, version="1.14").get(URL).headers
    headers = Client(app, version="1.15").get(URL).headers
    assert headers["cache-control"] == "no-cache"
    assert headers["last-modified"].endswith(" GMT")


def test_an_unknown_provider_is_a_404(client):
    answer = client.get(f"/resource_providers/{OTHER}")
    assert answer.status == 404
    assert f"No resource provider with uuid {OTHER} found" in error_of(answer)["detail"]
    assert client.get("/resource_providers/not-a-uuid").status == 404


def test_a_non_admin_may_not_see_providers(app, client):
    create(client)
    assert Client(app, token="user").get(URL).status == 403


# --- rename -------------------------------------------------------------------


def test_renaming_keeps_the_generation(client):
    create(client)
    answer = client.put(URL, {"name": "renamed"})
    assert answer.status == 200
    assert answer.json()["name"] == "renamed"
    assert answer.json()["generation"] == 0
    assert "location" not in answer.headers
    assert client.get(URL).json()["name"] == "renamed"


def test_renaming_to_a_taken_name_is_a_409_duplicate(client):
    create(client)
    create(client, name="other", uuid=OTHER)
    answer = client.put(URL, {"name": "other"})
    assert answer.status == 409
    assert error_of(answer)["code"] == "placement.duplicate_name"
    assert client.get(URL).json()["name"] == "compute"


@pytest.mark.parametrize(
    "body",
    [{"name": "x", "uuid": OTHER}, {"root_provider_uuid": OTHER}, {"name": "y" * 201}, {}],
)
def test_a_malformed_update_is_a_400_and_changes_nothing(client, body):
    create(client)
    answer = client.put(URL, body)
    assert answer.status == 400
    assert "JSON does not validate" in error_of(answer)["detail"]
    assert client.get(URL).json()["name"] == "compute"


def test_updating_an_unknown_provider_is_a_404(client):
    assert client.put(f"/resource_providers/{OTHER}", {"name": "x"}).status == 404


def test_an_update_without_a_body_is_a_415_even_for_an_unknown_provider(client):
    assert client.request("PUT", f"/resource_providers/{OTHER}").status == 415


# --- delete -------------------------------------------------------------------


def test_deleting_answers_204_and_the_provider_is_gone(client):
    create(client)
    answer = client.delete(URL)
    assert answer.status == 204
    assert answer.body == b""
    assert client.get(URL).status == 404


def test_deleting_an_unknown_provider_is_a_404(client):
    answer = client.delete(URL)
    assert answer.status == 404
    expected = f"No resource provider with uuid {PROVIDER} found for delete"
    assert expected in error_of(answer)["detail"]


def test_deleting_removes_inventories_traits_and_aggregate_links(client, database):
    create(client)
    inventory = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}
    assert client.put(URL + "/inventories", inventory).status == 200
    traits = {"resource_provider_generation": 1, "traits": ["HW_CPU_X86_AVX"]}
    assert client.put(URL + "/traits", traits).status == 200
    aggregates = {"resource_provider_generation": 2, "aggregates": [OTHER]}
    assert client.put(URL + "/aggregates", aggregates).status == 200
    assert client.delete(URL).status == 204
    for table in (schema.inventories, schema.provider_traits, schema.provider_aggregates):
        assert row_count(database, table) == 0
    # The same uuid and name can be used again.
    assert create(client).status == 200


def test_a_provider_with_allocations_cannot_be_deleted(client):
    create(client)
    inventory = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}
    assert client.put(URL + "/inventories", inventory).status == 200
    consumer = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    allocation = {
        "allocations": {PROVIDER: {"resources": {"VCPU": 1}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    assert client.put(f"/allocations/{consumer}", allocation).status == 204
    answer = client.delete(URL)
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.resource_provider.inuse"
    assert f"Unable to delete resource provider {PROVIDER}" in error["detail"]
    assert client.get(URL).status == 200


def test_a_parent_cannot_be_deleted_before_its_children(client):
    create(client)
    create(client, name="child", uuid=OTHER, parent_provider_uuid=PROVIDER)
    answer = client.delete(URL)
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.resource_provider.cannot_delete_parent"
    assert (
        f"Unable to delete parent resource provider {PROVIDER}: It has child resource providers."
        in error["detail"]
    )
    assert client.delete(f"/resource_providers/{OTHER}").status == 204
    assert client.delete(URL).status == 204
