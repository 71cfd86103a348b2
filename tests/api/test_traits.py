"""HTTP spec: /traits and /resource_providers/{uuid}/traits (microversion 1.6+)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from stowage.storage.schema import revision
from tests.support import Client

PROVIDER = "7e1e9a51-0d5e-4b0f-9a8f-8f5a0c1f3a10"
TRAITS = f"/resource_providers/{PROVIDER}/traits"
INVALID_NAME = "The trait is invalid."


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def create_provider(client: Client, provider_uuid: str = PROVIDER, name: str = "compute") -> None:
    assert client.post("/resource_providers", {"uuid": provider_uuid, "name": name}).status == 200


def set_traits(client: Client, names: list[str], generation: int, path: str = TRAITS):
    return client.put(path, {"traits": names, "resource_provider_generation": generation})


def trait_names(client: Client, query: str = "") -> list[str]:
    answer = client.get("/traits" + query)
    assert answer.status == 200
    return answer.json()["traits"]


def provider_traits(client: Client) -> dict:
    answer = client.get(TRAITS)
    assert answer.status == 200
    return answer.json()


def data_revision(database) -> int:
    with database.read() as connection:
        return connection.scalar(select(revision.c.revision))


# --- The trait catalog ---------------------------------------------------


def test_creating_a_custom_trait_answers_201_with_its_location_then_204(client):
    first = client.put("/traits/CUSTOM_GOLD")
    again = client.put("/traits/CUSTOM_GOLD")
    assert (first.status, again.status) == (201, 204)
    assert first.headers["location"] == again.headers["location"] == "/traits/CUSTOM_GOLD"
    assert "content-type" not in first.headers
    assert client.get("/traits/CUSTOM_GOLD").status == 204


@pytest.mark.parametrize(
    "name",
    ["GOLD", "CUSTOM_", "CUSTOM_lower", "CUSTOM_ABC:1", "HW_CPU_X86_SSE", "CUSTOM_" + "A" * 249],
)
def test_a_name_that_is_not_a_custom_trait_cannot_be_created(client, name):
    answer = client.put(f"/traits/{name}")
    assert answer.status == 400
    assert INVALID_NAME in error_of(answer)["detail"]
    assert trait_names(client, "?name=startswith:CUSTOM_") == []


def test_the_longest_custom_name_is_255_characters(client):
    assert client.put("/traits/CUSTOM_" + "A" * 248).status == 201


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/traits"), ("GET", "/traits/CUSTOM_GOLD"), ("PUT", "/traits/CUSTOM_GOLD"),
     ("DELETE", "/traits/CUSTOM_GOLD"), ("GET", TRAITS), ("PUT", TRAITS), ("DELETE", TRAITS)],
)
def test_traits_do_not_exist_before_1_6(app, method, path):
    assert Client(app, version="1.5").request(method, path).status == 404


def test_an_unknown_trait_is_404(client):
    assert client.get("/traits/CUSTOM_NOPE").status == 404


def test_the_list_holds_standard_and_custom_traits_sorted(client):
    client.put("/traits/CUSTOM_GOLD")
    names = trait_names(client)
    assert {"HW_CPU_X86_SSE", "MISC_SHARES_VIA_AGGREGATE", "CUSTOM_GOLD"} <= set(names)
    assert names == sorted(names)


def test_name_in_keeps_only_the_named_traits(client):
    client.put("/traits/CUSTOM_GOLD")
    names = trait_names(client, "?name=in:CUSTOM_GOLD,HW_CPU_X86_SSE,CUSTOM_UNKNOWN")
    assert names == ["CUSTOM_GOLD", "HW_CPU_X86_SSE"]


def test_name_startswith_takes_the_prefix_literally(client):
    for name in ("CUSTOM_A_B", "CUSTOM_AXB", "CUSTOM_A_C"):
        client.put(f"/traits/{name}")
    assert trait_names(client, "?name=startswith:CUSTOM_A_") == ["CUSTOM_A_B", "CUSTOM_A_C"]


def test_associated_splits_traits_by_whether_a_provider_has_them(client):
    create_provider(client)
    client.put("/traits/CUSTOM_USED")
    client.put("/traits/CUSTOM_UNUSED")
    set_traits(client, ["CUSTOM_USED", "HW_CPU_X86_SSE"], 0)
    assert trait_names(client, "?associated=true") == ["CUSTOM_USED", "HW_CPU_X86_SSE"]
    assert trait_names(client, "?associated=FALSE&name=startswith:CUSTOM_") == ["CUSTOM_UNUSED"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("?name=in_abc", 'Badly formatted name parameter. Expected name query string parameter '
         'in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: "in_abc"'),
        ("?name=endswith:GOLD", "Badly formatted name parameter"),
        ("?associated=yes", 'The query parameter "associated" only accepts "true" or "false"'),
        ("?colour=gold", "Invalid query string parameters: Additional properties are not allowed"),
    ],
)
def test_bad_list_filters_are_400(client, query, message):
    answer = client.get("/traits" + query)
    assert answer.status == 400
    assert message in error_of(answer)["detail"]


def test_deleting_an_unused_custom_trait_removes_it(client):
    client.put("/traits/CUSTOM_GOLD")
    answer = client.delete("/traits/CUSTOM_GOLD")
    assert answer.status == 204
    assert "content-type" not in answer.headers
    assert client.get("/traits/CUSTOM_GOLD").status == 404


def test_a_standard_trait_cannot_be_deleted(client):
    answer = client.delete("/traits/HW_CPU_X86_SSE")
    assert answer.status == 400
    assert "Cannot delete standard trait HW_CPU_X86_SSE." in error_of(answer)["detail"]
    assert client.get("/traits/HW_CPU_X86_SSE").status == 204


def test_deleting_an_unknown_trait_is_404(client):
    assert client.delete("/traits/CUSTOM_NOPE").status == 404


def test_a_trait_a_provider_has_cannot_be_deleted(client):
    create_provider(client)
    client.put("/traits/CUSTOM_GOLD")
    set_traits(client, ["CUSTOM_GOLD"], 0)
    answer = client.delete("/traits/CUSTOM_GOLD")
    assert answer.status == 409
    assert "The trait CUSTOM_GOLD is in use by a resource provider." in error_of(answer)["detail"]
    assert client.get("/traits/CUSTOM_GOLD").status == 204


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_trait_answers_carry_cache_headers_from_1_15_only(app, method):
    Client(app).put("/traits/CUSTOM_GOLD")
    before = Client(app, version="1.14").request(method, "/traits/CUSTOM_GOLD")
    after = Client(app, version="1.15").request(method, "/traits/CUSTOM_GOLD")
    assert "last-modified" not in before.headers and "cache-control" not in before.headers
    assert after.headers["cache-control"] == "no-cache"
    assert after.headers["last-modified"].endswith(" GMT")


def test_the_trait_list_carries_cache_headers_from_1_15_only(app):
    assert "last-modified" not in Client(app, version="1.14").get("/traits").headers
    assert Client(app, version="1.15").get("/traits").headers["cache-control"] == "no-cache"


def test_deleting_a_trait_never_carries_cache_headers(client):
    client.put("/traits/CUSTOM_GOLD")
    answer = client.delete("/traits/CUSTOM_GOLD")
    assert "last-modified" not in answer.headers and "cache-control" not in answer.headers


def test_an_unused_trait_comes_and_goes_without_moving_the_data_revision(client, database):
    # Nothing a read model holds changes, so no worker has anything to patch.
    start = data_revision(database)
    client.put("/traits/CUSTOM_GOLD")
    client.delete("/traits/CUSTOM_GOLD")
    assert data_revision(database) == start


def test_candidates_see_a_trait_created_and_deleted_after_they_were_warmed(client):
    create_provider(client)
    inventory = {"inventories": {"VCPU": {"total": 4}}, "resource_provider_generation": 0}
    assert client.put(f"/resource_providers/{PROVIDER}/inventories", inventory).status == 200
    query = "/allocation_candidates?resources=VCPU:1&required="
    assert len(client.get(query + "!HW_CPU_X86_AVX").json()["allocation_requests"]) == 1
    assert client.get(query + "CUSTOM_GOLD").status == 400
    client.put("/traits/CUSTOM_GOLD")
    assert client.get(query + "CUSTOM_GOLD").json()["allocation_requests"] == []
    assert len(client.get(query + "!CUSTOM_GOLD").json()["allocation_requests"]) == 1
    client.delete("/traits/CUSTOM_GOLD")
    assert client.get(query + "!CUSTOM_GOLD").status == 400


def test_changing_a_used_trait_moves_the_data_revision(client, database):
    create_provider(client)
    client.put("/traits/CUSTOM_GOLD")
    start = data_revision(database)
    set_traits(client, ["CUSTOM_GOLD"], 0)
    tagged = data_revision(database)
    set_traits(client, [], 1)
    assert start < tagged < data_revision(database)


# --- A provider's traits --------------------------------------------------


def test_a_new_provider_has_no_traits_at_generation_0(client):
    create_provider(client)
    assert provider_traits(client) == {"traits": [], "resource_provider_generation": 0}


def test_setting_traits_replaces_the_set_and_bumps_the_generation(client):
    create_provider(client)
    client.put("/traits/CUSTOM_GOLD")
    first = set_traits(client, ["HW_CPU_X86_SSE", "CUSTOM_GOLD"], 0)
    assert first.status == 200
    assert first.json() == {"traits": ["CUSTOM_GOLD", "HW_CPU_X86_SSE"], "resource_provider_generation": 1}
    second = set_traits(client, ["HW_CPU_X86_AVX2"], 1)
    assert second.json() == {"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": 2}
    assert provider_traits(client) == second.json()
    assert client.get(f"/resource_providers/{PROVIDER}").json()["generation"] == 2


def test_setting_the_same_traits_again_keeps_the_generation(client):
    create_provider(client)
    set_traits(client, ["HW_CPU_X86_SSE"], 0)
    answer = set_traits(client, ["HW_CPU_X86_SSE", "HW_CPU_X86_SSE"], 1)
    assert answer.json() == {"traits": ["HW_CPU_X86_SSE"], "resource_provider_generation": 1}


def test_a_stale_generation_is_a_409_concurrent_update_and_changes_nothing(client):
    create_provider(client)
    set_traits(client, ["HW_CPU_X86_SSE"], 0)
    answer = set_traits(client, [], 0)
    assert answer.status == 409
    error = error_of(answer)
    assert error["code"] == "placement.concurrent_update"
    assert "Resource provider's generation already changed." in error["detail"]
    assert provider_traits(client) == {"traits": ["HW_CPU_X86_SSE"], "resource_provider_generation": 1}


def test_unknown_traits_are_400_naming_them_and_change_nothing(client):
    create_provider(client)
    answer = client.put(
        TRAITS,
        {"traits": ["CUSTOM_NOPE", "HW_CPU_X86_SSE", "CUSTOM_NEITHER"], "resource_provider_generation": 0},
    )
    assert answer.status == 400
    assert "No such trait CUSTOM_NOPE, CUSTOM_NEITHER" in error_of(answer)["detail"]
    assert provider_traits(client) == {"traits": [], "resource_provider_generation": 0}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"traits": ["HW_CPU_X86_SSE"]}, "'resource_provider_generation' is a required property"),
        ({"resource_provider_generation": 0}, "'traits' is a required property"),
        ({"traits": ["HW_CPU_X86_SSE"], "resource_provider_generation": "0"}, "'0' is not of type 'integer'"),
        ({"traits": "HW_CPU_X86_SSE", "resource_provider_generation": 0}, "is not of type 'array'"),
        ({"traits": [""], "resource_provider_generation": 0}, "JSON does not validate"),
        (
            {"traits": [], "resource_provider_generation": 0, "extra": 1},
            "Additional properties are not allowed",
        ),
    ],
)
def test_a_malformed_provider_traits_body_is_400_and_changes_nothing(client, body, message):
    create_provider(client)
    set_traits(client, ["HW_CPU_X86_SSE"], 0)
    answer = client.put(TRAITS, body)
    assert answer.status == 400
    assert message in error_of(answer)["detail"]
    assert provider_traits(client) == {"traits": ["HW_CPU_X86_SSE"], "resource_provider_generation": 1}


def test_a_provider_traits_body_that_is_not_json_is_400(client):
    create_provider(client)
    answer = client.put(TRAITS, raw=b'{"traits": [', headers={"content-type": "application/json"})
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_an_unknown_provider_is_404(client, method):
    body = {"traits": [], "resource_provider_generation": 0} if method == "PUT" else None
    answer = client.request(method, f"/resource_providers/{uuid.uuid4()}/traits", body)
    assert answer.status == 404
    assert "No resource provider with uuid" in error_of(answer)["detail"]


def test_deleting_a_providers_traits_removes_all_and_bumps_the_generation(client):
    create_provider(client)
    set_traits(client, ["HW_CPU_X86_SSE", "HW_CPU_X86_AVX2"], 0)
    answer = client.delete(TRAITS)
    assert answer.status == 204
    assert provider_traits(client) == {"traits": [], "resource_provider_generation": 2}


def test_deleting_the_traits_of_a_provider_without_any_keeps_the_generation(client):
    create_provider(client)
    assert client.delete(TRAITS).status == 204
    assert provider_traits(client)["resource_provider_generation"] == 0


def test_provider_traits_carry_cache_headers_from_1_15_only(app):
    create_provider(Client(app))
    before, after = Client(app, version="1.14"), Client(app, version="1.15")
    answers = {
        "PUT 1.14": set_traits(before, ["HW_CPU_X86_SSE"], 0),
        "PUT 1.15": set_traits(after, ["HW_CPU_X86_AVX2"], 1),
        "GET 1.14": before.get(TRAITS),
        "GET 1.15": after.get(TRAITS),
    }
    assert {name: answer.status for name, answer in answers.items()} == dict.fromkeys(answers, 200)
    for name, answer in answers.items():
        if name.endswith("1.14"):
            assert "last-modified" not in answer.headers and "cache-control" not in answer.headers
        else:
            assert answer.headers["cache-control"] == "no-cache"
            assert answer.headers["last-modified"].endswith(" GMT")
    assert "last-modified" not in after.delete(TRAITS).headers


def test_one_providers_traits_do_not_touch_anothers(client):
    other = "0a3e7a5e-1b55-4b7c-8d7e-2f4f9e6c2d01"
    create_provider(client)
    create_provider(client, other, "other")
    set_traits(client, ["HW_CPU_X86_SSE"], 0)
    set_traits(client, ["HW_CPU_X86_AVX2"], 0, path=f"/resource_providers/{other}/traits")
    client.delete(TRAITS)
    assert client.get(f"/resource_providers/{other}/traits").json()["traits"] == ["HW_CPU_X86_AVX2"]
