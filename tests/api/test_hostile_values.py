"""HTTP spec: values nobody planned for get a clear 4xx, or the answer a
value in range would get, on every backend; never a 500.

Integers past what the database columns hold (PostgreSQL's and MySQL's
INTEGER stops at 2**31 - 1, SQLite's at 2**63 - 1) and NUL characters in
strings (PostgreSQL refuses them in text) are the two kinds of value one
backend takes and another does not.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support import Client

PROVIDER = "0f5e3c1a-9b7d-4e2f-8a6c-5d4b3a291807"
CONSUMER = "6a4b2c1d-8e9f-4a7b-9c6d-5e4f3a2b1c0d"
HUGE = [2**31, 2**63, 10**30]


def error_of(answer) -> dict:
    assert answer.status < 500, answer.body
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


@pytest.fixture
def provider(client: Client) -> str:
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "cn"}).status == 200
    inventory = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}
    assert client.put(f"/resource_providers/{PROVIDER}/inventories", inventory).status == 200
    return PROVIDER


def allocation(amount: int = 1, **fields) -> dict:
    return {"allocations": {PROVIDER: {"resources": {"VCPU": amount}}}, "project_id": "p",
            "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE", **fields}


# --- integers -------------------------------------------------------------------


@pytest.mark.parametrize("amount", HUGE)
def test_an_amount_no_inventory_can_hold_lists_no_provider(client, provider, amount):
    answer = client.get(f"/resource_providers?resources=VCPU:{amount}")
    assert answer.status == 200, answer.body
    assert answer.json()["resource_providers"] == []


@pytest.mark.parametrize("amount", HUGE)
def test_an_amount_no_inventory_can_hold_has_no_candidates(client, provider, amount):
    answer = client.get(f"/allocation_candidates?resources=VCPU:{amount}")
    assert answer.status == 200, answer.body
    assert answer.json()["allocation_requests"] == []


@pytest.mark.parametrize("limit", HUGE)
def test_a_limit_past_every_candidate_returns_them_all(client, provider, limit):
    answer = client.get(f"/allocation_candidates?resources=VCPU:1&limit={limit}")
    assert answer.status == 200, answer.body
    assert len(answer.json()["allocation_requests"]) == 1


@pytest.mark.parametrize("amount", HUGE)
def test_claiming_more_than_any_inventory_holds_is_refused_and_writes_nothing(
        client, provider, amount):
    error_of(client.put(f"/allocations/{CONSUMER}", allocation(amount)))
    error_of(client.post("/allocations", {CONSUMER: allocation(amount)}))
    assert client.get(f"/allocations/{CONSUMER}").json()["allocations"] == {}


@pytest.mark.parametrize("generation", HUGE)
def test_a_generation_past_any_there_is_is_a_conflict_or_a_400(client, provider, generation):
    path = f"/resource_providers/{PROVIDER}"
    for method, route, body in [
        ("PUT", f"{path}/inventories",
         {"resource_provider_generation": generation, "inventories": {"VCPU": {"total": 4}}}),
        ("PUT", f"{path}/inventories/VCPU",
         {"resource_provider_generation": generation, "total": 4}),
        ("PUT", f"{path}/traits", {"resource_provider_generation": generation, "traits": []}),
        ("PUT", f"{path}/aggregates", {"resource_provider_generation": generation,
                                        "aggregates": []}),
        ("PUT", f"/allocations/{CONSUMER}", allocation(consumer_generation=generation)),
        ("POST", "/allocations", {CONSUMER: allocation(consumer_generation=generation)}),
    ]:
        answer = client.request(method, route, body)
        assert answer.status in (400, 409), (route, answer.body)
        error_of(answer)
    assert client.get(f"{path}/inventories").json()["inventories"]["VCPU"]["total"] == 8


@pytest.mark.parametrize("total", HUGE)
def test_an_inventory_past_the_column_is_a_400(client, provider, total):
    body = {"resource_provider_generation": 1, "inventories": {"VCPU": {"total": total}}}
    assert error_of(client.put(f"/resource_providers/{PROVIDER}/inventories", body))


# A ratio whose capacity overflows to -infinity (found by schemathesis; upstream
# 500s on it too), and the non-numbers the standard library's JSON reads.
RATIOS = ["-1.077667239901453e+308", "-Infinity", "NaN"]


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize(("method", "route", "body"), [
    ("POST", "/inventories", '{"resource_class": "DISK_GB", "total": 149594941, "allocation_ratio": %s}'),
    ("PUT", "/inventories/VCPU",
     '{"resource_provider_generation": 1, "total": 149594941, "allocation_ratio": %s}'),
    ("PUT", "/inventories", '{"resource_provider_generation": 1, "inventories": '
                            '{"VCPU": {"total": 149594941, "allocation_ratio": %s}}}'),
])
def test_a_ratio_leaving_no_finite_capacity_is_a_400_that_writes_nothing(
    client, provider, ratio, method, route, body
):
    path = f"/resource_providers/{PROVIDER}"
    answer = client.request(method, path + route, raw=(body % ratio).encode(),
                            headers={"content-type": "application/json"})
    assert answer.status == 400, answer.body
    assert error_of(answer)["code"] == "placement.undefined_code"
    assert client.get(f"{path}/inventories").json() == {
        "resource_provider_generation": 1,
        "inventories": {"VCPU": {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
                                 "step_size": 1, "allocation_ratio": 1.0}},
    }


# --- NUL characters -------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/resource_providers?name=a\x00b",
    "/resource_providers?uuid=a\x00b",
    "/resource_providers/a\x00b",
    "/allocations/a\x00b",
    "/usages?project_id=p\x00",
    "/usages?project_id=p&user_id=u\x00",
    "/traits?name=in:CUSTOM_A\x00",
    "/traits?name=startswith:CUSTOM_\x00",
    "/traits/CUSTOM_A\x00B",
    "/resource_classes/CUSTOM_A\x00B",
    "/allocation_candidates?resources=VCPU:1&required=CUSTOM_A\x00",
    "/allocation_candidates?resources=CUSTOM_A\x00:1",
    "/resource_providers?resources=CUSTOM_A\x00:1",
    "/resource_providers?required=CUSTOM_A\x00",
])
def test_a_nul_in_a_read_is_a_4xx(client, provider, path):
    error_of(client.get(path))


@pytest.mark.parametrize("method, route, body", [
    ("POST", "/resource_providers", {"name": "a\x00b"}),
    ("PUT", f"/resource_providers/{PROVIDER}", {"name": "a\x00b"}),
    ("PUT", f"/allocations/{CONSUMER}", allocation(project_id="p\x00")),
    ("PUT", f"/allocations/{CONSUMER}", allocation(user_id="u\x00")),
    ("POST", "/allocations", {CONSUMER: allocation(project_id="p\x00")}),
    ("POST", "/resource_classes", {"name": "CUSTOM_A\x00"}),
    ("PUT", "/traits/CUSTOM_A\x00", None),
    ("PUT", "/resource_classes/CUSTOM_A\x00", None),
])
def test_a_nul_in_a_write_is_a_400_that_writes_nothing(client, provider, method, route, body):
    answer = client.request(method, route, body)
    assert answer.status == 400, answer.body
    error_of(answer)
    assert client.get(f"/allocations/{CONSUMER}").json()["allocations"] == {}
    names = [p["name"] for p in client.get("/resource_providers").json()["resource_providers"]]
    assert names == ["cn"]


def test_a_nul_in_a_consumer_id_is_refused_like_any_other_malformed_uuid(client, provider):
    answer = client.put("/allocations/" + str(uuid.uuid4())[:-1] + "\x00", allocation())
    assert answer.status == 400
    error_of(answer)
