"""HTTP spec: /resource_providers/{uuid}/aggregates (1.1+; generations from 1.19)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from stowage.storage.schema import aggregates, revision
from tests.support import Client

PROVIDER = "5d8f8b0e-3c1a-4a51-9a43-6f0b7f1b2c11"
OTHER = "c0b4f7a2-9e0d-4f3e-8a6b-1d2e3f4a5b6c"
AGGREGATES = f"/resource_providers/{PROVIDER}/aggregates"
AGG_1 = "f918801a-5e54-4bee-9095-09a9d0c786b8"
AGG_2 = "a893eb5c-e2a0-4251-ab26-f71d3b0cfc0b"


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


@pytest.fixture
def provider(client: Client) -> str:
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "compute"}).status == 200
    return PROVIDER


def set_aggregates(client: Client, uuids: list[str], generation: int,
                   provider_uuid: str = PROVIDER):
    body = {"aggregates": uuids, "resource_provider_generation": generation}
    return client.put(f"/resource_providers/{provider_uuid}/aggregates", body)


def membership(client: Client) -> dict:
    answer = client.get(AGGREGATES)
    assert answer.status == 200
    return answer.json()


def provider_generation(client: Client, provider_uuid: str = PROVIDER) -> int:
    return client.get(f"/resource_providers/{provider_uuid}").json()["generation"]


def data_revision(database) -> int:
    with database.read() as connection:
        return connection.scalar(select(revision.c.revision))


def test_aggregates_do_not_exist_at_1_0(app, provider):
    old = Client(app, version="1.0")
    assert old.get(AGGREGATES).status == 404
    assert old.put(AGGREGATES, []).status == 404


def test_a_new_provider_is_in_no_aggregate(client, provider):
    assert membership(client) == {"aggregates": [], "resource_provider_generation": 0}


def test_before_1_19_answers_carry_no_generation(app, provider):
    assert Client(app, version="1.18").get(AGGREGATES).json() == {"aggregates": []}


def test_from_1_19_setting_aggregates_needs_the_generation_and_bumps_it(client, provider):
    answer = set_aggregates(client, [AGG_1, AGG_2], 0)
    assert answer.status == 200
    assert answer.json() == {"aggregates": [AGG_1, AGG_2], "resource_provider_generation": 1}
    assert membership(client) == {"aggregates": sorted([AGG_1, AGG_2]), "resource_provider_generation": 1}
    assert provider_generation(client) == 1


def test_from_1_19_setting_the_same_aggregates_still_bumps_the_generation(client, provider):
    set_aggregates(client, [AGG_1], 0)
    answer = set_aggregates(client, [AGG_1], 1)
    assert answer.json()["resource_provider_generation"] == 2


def test_before_1_19_a_plain_list_sets_aggregates_without_touching_the_generation(app, client, provider):
    answer = Client(app, version="1.18").put(AGGREGATES, [AGG_1, AGG_2])
    assert answer.status == 200
    assert answer.json() == {"aggregates": [AGG_1, AGG_2]}
    assert membership(client) == {"aggregates": sorted([AGG_1, AGG_2]), "resource_provider_generation": 0}


def test_setting_replaces_the_whole_membership(client, provider):
    set_aggregates(client, [AGG_1], 0)
    set_aggregates(client, [AGG_2], 1)
    assert membership(client)["aggregates"] == [AGG_2]
    set_aggregates(client, [], 2)
    assert membership(client) == {"aggregates": [], "resource_provider_generation": 3}


def test_a_stale_generation_is_a_409_concurrent_update_and_changes_nothing(client, provider):
    set_aggregates(client, [AGG_1], 0)
    answer = set_aggregates(client, [], 0)
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.concurrent_update"
    assert "Resource provider's generation already changed." in error["detail"]
    assert membership(client) == {"aggregates": [AGG_1], "resource_provider_generation": 1}


@pytest.mark.parametrize(
    "version, body, message",
    [
        ("1.19", [AGG_1], "JSON does not validate"),
        ("1.18", {"aggregates": [AGG_1], "resource_provider_generation": 0}, "JSON does not validate"),
        ("1.19", {"aggregates": [AGG_1]}, "'resource_provider_generation' is a required property"),
        ("1.19", {"resource_provider_generation": 0}, "'aggregates' is a required property"),
        ("1.19", {"aggregates": ["harry"], "resource_provider_generation": 0}, "'harry' is not a 'uuid'"),
        ("1.18", ["sally"], "'sally' is not a 'uuid'"),
        (
            "1.19",
            {"aggregates": [AGG_1, AGG_1], "resource_provider_generation": 0},
            "has non-unique elements",
        ),
        ("1.18", [AGG_2, AGG_2], "has non-unique elements"),
        ("1.19", {"aggregates": [AGG_1], "resource_provider_generation": 0, "x": 1},
         "Additional properties are not allowed"),
        ("1.19", {"aggregates": [AGG_1], "resource_provider_generation": "0"}, "is not of type 'integer'"),
    ],
)
def test_a_malformed_body_is_400_and_changes_nothing(app, client, provider, version, body, message):
    answer = Client(app, version=version).put(AGGREGATES, body)
    assert answer.status == 400
    assert message in error_of(answer)["detail"]
    assert membership(client) == {"aggregates": [], "resource_provider_generation": 0}


def test_a_body_that_is_not_json_is_400(client, provider):
    answer = client.put(AGGREGATES, raw=b'{"bad", "not json"}', headers={"content-type": "application/json"})
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]


def test_an_unknown_provider_is_404_even_with_an_invalid_body(client):
    path = f"/resource_providers/{uuid.uuid4()}/aggregates"
    assert client.get(path).status == 404
    answer = client.put(path, [])
    assert answer.status == 404
    assert "No resource provider with uuid" in error_of(answer)["detail"]


def test_providers_share_one_row_per_aggregate(client, database, provider):
    assert client.post("/resource_providers", {"uuid": OTHER, "name": "other"}).status == 200
    set_aggregates(client, [AGG_1, AGG_2], 0)
    set_aggregates(client, [AGG_1], 0, OTHER)
    set_aggregates(client, [], 1)
    assert client.get(f"/resource_providers/{OTHER}/aggregates").json()["aggregates"] == [AGG_1]
    with database.read() as connection:
        assert connection.scalar(select(func.count()).select_from(aggregates)) == 2


def test_changing_membership_bumps_the_data_revision_on_both_sides_of_1_19(app, database, provider):
    start = data_revision(database)
    Client(app, version="1.18").put(AGGREGATES, [AGG_1])
    old_style = data_revision(database)
    Client(app, version="1.19").put(AGGREGATES, {"aggregates": [], "resource_provider_generation": 0})
    assert start < old_style < data_revision(database)


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_answers_carry_cache_headers_from_1_15_only(app, provider, method):
    before = Client(app, version="1.14").request(method, AGGREGATES, [AGG_1] if method == "PUT" else None)
    after = Client(app, version="1.15").request(method, AGGREGATES, [AGG_1] if method == "PUT" else None)
    assert before.status == after.status == 200
    assert "last-modified" not in before.headers and "cache-control" not in before.headers
    assert after.headers["cache-control"] == "no-cache"
    assert after.headers["last-modified"].endswith(" GMT")
