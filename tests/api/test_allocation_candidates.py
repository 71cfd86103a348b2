"""HTTP spec: GET /allocation_candidates, response shapes and request checks.

Topology (tests.candidates.topology): cn1 (VCPU, MEMORY_MB) with children
pf1/pf2 (SRIOV_NET_VF), cn2 (VCPU 4 with 1 used, DISK_GB), and ss sharing
DISK_GB with cn1 through an aggregate.
"""
from __future__ import annotations

import gc

import pytest
from sqlalchemy import select

from stowage.api.app import create_app
from stowage.api.handlers import allocation_candidates
from stowage.storage.schema import revision
from tests.candidates.topology import build_topology, candidates, canonical
from tests.support import Client
from tests.support import test_conf as configuration

PATH = "/allocation_candidates"


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


@pytest.fixture
def topology(client):
    return build_topology(client)


def at(app, version: str) -> Client:
    return Client(app, version=version)


def get(client: Client, query: str) -> dict:
    answer = client.get(f"{PATH}?{query}")
    assert answer.status == 200, answer.body
    return answer.json()


def test_a_large_answer_is_sent_in_pieces_without_a_length(client, topology, monkeypatch):
    query = "resources=VCPU:1,DISK_GB:10"
    whole = client.get(f"{PATH}?{query}")
    monkeypatch.setattr(allocation_candidates, "_PIECE", 1)
    monkeypatch.setattr(allocation_candidates, "_SUMMARIES_PIECE", 2)
    pieces = client.get(f"{PATH}?{query}")
    assert int(whole.headers["content-length"]) == len(whole.body)
    assert "content-length" not in pieces.headers
    assert pieces.headers["content-type"] == "application/json"
    assert pieces.json() == whole.json()
    body = whole.json()
    assert len(body["allocation_requests"]) > 1 and len(body["provider_summaries"]) > 2


def test_summaries_kept_as_text_are_written_afresh_after_their_tree_changes(client, topology):
    first = get(client, "resources=VCPU:1")["provider_summaries"][topology.cn2]
    claim = {"allocations": {topology.cn2: {"resources": {"VCPU": 2}}}, "project_id": "p",
             "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE"}
    assert client.put("/allocations/5d1e0c4b-3a2f-4e1d-9c8b-7a6f5e4d3c2b", claim).status == 204
    again = get(client, "resources=VCPU:1")["provider_summaries"][topology.cn2]
    assert first["resources"]["VCPU"] == {"capacity": 4, "used": 1}
    assert again["resources"]["VCPU"] == {"capacity": 4, "used": 3}


def test_kept_summary_texts_go_with_their_summaries(client, topology):
    # Each write replaces the summaries of the tree it touched: what was
    # kept for the old ones must not pile up for the life of the worker.
    get(client, "resources=VCPU:1")
    gc.collect()
    kept = len(allocation_candidates.SUMMARY_TEXTS)
    for total in range(9, 29):
        inventories = {"VCPU": {"total": total}, "MEMORY_MB": {"total": 4096}}
        answer = client.put(f"/resource_providers/{topology.cn1}/inventories", {
            "inventories": inventories,
            "resource_provider_generation": current_generation(client, topology.cn1),
        })
        assert answer.status == 200
        get(client, "resources=VCPU:1")
    gc.collect()
    assert kept > 0 and len(allocation_candidates.SUMMARY_TEXTS) <= kept


def current_generation(client: Client, uuid: str) -> int:
    return client.get(f"/resource_providers/{uuid}").json()["generation"]


# --- microversion boundaries of the response ---------------------------------------------


def test_candidates_do_not_exist_before_1_10(app, topology):
    assert at(app, "1.9").get(f"{PATH}?resources=VCPU:1").status == 404


def test_at_1_10_allocation_requests_are_lists_of_providers(app, topology):
    body = get(at(app, "1.10"), "resources=VCPU:1,DISK_GB:10")
    listed = sorted(
        sorted((item["resource_provider"]["uuid"], tuple(sorted(item["resources"].items())))
               for item in request["allocations"])
        for request in body["allocation_requests"]
    )
    assert listed == sorted([
        sorted([(topology.cn1, (("VCPU", 1),)), (topology.ss, (("DISK_GB", 10),))]),
        [(topology.cn2, (("DISK_GB", 10), ("VCPU", 1)))],
    ])


def test_from_1_12_allocation_requests_are_keyed_by_provider(app, topology):
    body = get(at(app, "1.12"), "resources=VCPU:1,DISK_GB:10")
    assert candidates(body) == canonical([
        {topology.cn1: {"VCPU": 1}, topology.ss: {"DISK_GB": 10}},
        {topology.cn2: {"VCPU": 1, "DISK_GB": 10}},
    ])
    assert all("mappings" not in request for request in body["allocation_requests"])


def test_cache_headers_appear_at_1_15(app, topology):
    before = at(app, "1.14").get(f"{PATH}?resources=VCPU:1")
    assert "cache-control" not in before.headers and "last-modified" not in before.headers
    after = at(app, "1.15").get(f"{PATH}?resources=VCPU:1")
    assert after.headers["cache-control"] == "no-cache"
    assert after.headers["last-modified"].endswith(" GMT")


def test_summaries_list_traits_from_1_17(app, topology):
    before = get(at(app, "1.16"), "resources=DISK_GB:10")
    assert before["provider_summaries"][topology.ss] == {
        "resources": {"DISK_GB": {"capacity": 1000, "used": 0}}
    }
    after = get(at(app, "1.17"), "resources=DISK_GB:10")
    assert after["provider_summaries"][topology.ss]["traits"] == ["MISC_SHARES_VIA_AGGREGATE"]


def test_summaries_list_every_class_from_1_27(app, topology):
    before = get(at(app, "1.26"), "resources=DISK_GB:10")
    assert before["provider_summaries"][topology.cn2]["resources"] == {
        "DISK_GB": {"capacity": 100, "used": 0}
    }
    after = get(at(app, "1.27"), "resources=DISK_GB:10")
    assert after["provider_summaries"][topology.cn2]["resources"] == {
        "DISK_GB": {"capacity": 100, "used": 0},
        "VCPU": {"capacity": 4, "used": 1},
    }


def test_nested_trees_combine_from_1_29(app, topology):
    before = get(at(app, "1.28"), "resources=VCPU:1,SRIOV_NET_VF:1")
    assert before == {"allocation_requests": [], "provider_summaries": {}}
    after = get(at(app, "1.29"), "resources=VCPU:1,SRIOV_NET_VF:1")
    assert candidates(after) == canonical([
        {topology.cn1: {"VCPU": 1}, topology.pf1: {"SRIOV_NET_VF": 1}},
        {topology.cn1: {"VCPU": 1}, topology.pf2: {"SRIOV_NET_VF": 1}},
    ])
    summary = after["provider_summaries"][topology.pf1]
    assert summary["parent_provider_uuid"] == topology.cn1
    assert summary["root_provider_uuid"] == topology.cn1
    assert set(after["provider_summaries"]) == {topology.cn1, topology.pf1, topology.pf2}


def test_before_1_29_a_child_alone_is_a_candidate_and_summarised_alone(app, topology):
    body = get(at(app, "1.28"), "resources=SRIOV_NET_VF:1")
    assert len(body["allocation_requests"]) == 2
    assert set(body["provider_summaries"]) == {topology.pf1, topology.pf2}
    assert "root_provider_uuid" not in body["provider_summaries"][topology.pf1]


def test_mappings_name_the_providers_of_each_group_from_1_34(app, topology):
    query = "resources=VCPU:1&resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET2"
    assert "mappings" not in get(at(app, "1.33"), query)["allocation_requests"][0]
    (request,) = get(at(app, "1.34"), query)["allocation_requests"]
    assert request["mappings"] == {"": [topology.cn1], "_NET": [topology.pf2]}


# --- limit and randomisation ----------------------------------------------------------------


def test_limit_arrives_at_1_16(app, topology):
    answer = at(app, "1.15").get(f"{PATH}?resources=VCPU:1&limit=1")
    assert answer.status == 400
    assert "'limit' was unexpected" in error_of(answer)["detail"]
    body = get(at(app, "1.16"), "resources=VCPU:1&limit=1")
    (request,) = body["allocation_requests"]
    (chosen,) = request["allocations"]
    assert set(body["provider_summaries"]) == {chosen}


def test_before_1_29_a_limit_keeps_the_summaries_of_every_provider_its_trees_offer(app, topology):
    """Upstream lists, before 1.29, the providers some candidate takes from,
    and a limit keeps those in the chosen candidates' trees: pf2 stays
    listed beside a chosen pf1 (and the other way round)."""
    body = get(at(app, "1.28"), "resources=SRIOV_NET_VF:1&limit=1")
    (request,) = body["allocation_requests"]
    assert set(request["allocations"]) <= {topology.pf1, topology.pf2}
    assert set(body["provider_summaries"]) == {topology.pf1, topology.pf2}


@pytest.mark.parametrize("limit", ["0", "-1", "cow", "1.5"])
def test_a_limit_must_be_a_positive_integer(client, topology, limit):
    answer = client.get(f"{PATH}?resources=VCPU:1&limit={limit}")
    assert answer.status == 400
    assert "Failed validating 'pattern'" in error_of(answer)["detail"]


def test_a_repeated_limit_uses_the_first(client, topology):
    assert len(get(client, "resources=VCPU:1&limit=5&limit=1")["allocation_requests"]) == 2


def test_randomized_candidates_are_the_same_set_as_ordered_ones(database, topology):
    shuffled = Client(create_app(configuration(placement={"randomize_allocation_candidates": True}), database))
    ordered = Client(create_app(configuration(), database))
    query = "resources=VCPU:1"
    assert candidates(get(shuffled, query)) == candidates(get(ordered, query))
    assert len(get(shuffled, query + "&limit=1")["allocation_requests"]) == 1


# --- malformed requests: 400 with a JSON body, nothing written --------------------------------


@pytest.mark.parametrize(
    "query, detail",
    [
        ("resources=", "Got: empty string."),
        ("resources=VCPU", "Expected resources query string parameter in form"),
        ("resources=VCPU:0", "Requested resource VCPU requires amount >= 1. Got: 0."),
        ("resources=VCPU:x", "Requested resource VCPU expected positive integer amount. Got: x."),
        ("resources=MCPU:1", "Invalid resource class in resources parameter: No such resource class MCPU."),
        ("resources=VCPU:1&required=CUSTOM_NOPE", "No such trait(s): CUSTOM_NOPE."),
        ("resources=VCPU:1&required=", "Expected 'required' parameter value of the form"),
        ("resources=VCPU:1&member_of=not-a-uuid", "Expected 'member_of' parameter to contain valid UUID(s)."),
        ("resources=VCPU:1&bogus=1", "'bogus' does not match any of the regexes"),
        ("resources=VCPU:1&group_policy=sometimes", "'sometimes' is not one of ['none', 'isolate']"),
    ],
)
def test_a_malformed_request_is_a_400_that_writes_nothing(client, database, topology, query, detail):
    with database.read() as connection:
        before = connection.scalar(select(revision.c.revision))
    answer = client.get(f"{PATH}?{query}")
    assert answer.status == 400
    error = error_of(answer)
    assert detail in error["detail"]
    assert error["code"] == "placement.undefined_code"
    with database.read() as connection:
        assert connection.scalar(select(revision.c.revision)) == before


@pytest.mark.parametrize(
    "version, detail, code",
    [
        ("1.24", "'resources' is a required property", "placement.undefined_code"),
        ("1.25", "At least one request group (`resources` or `resources{$S}`) is required.",
         "placement.undefined_code"),
        ("1.35", "At least one request group (`resources` or `resources{$S}`) is required.",
         "placement.undefined_code"),
        ("1.36", "There must be at least one resources or resources[$S] parameter.",
         "placement.query.missing_value"),
    ],
)
def test_a_request_without_any_group_is_a_400(app, topology, version, detail, code):
    answer = at(app, version).get(PATH)
    assert answer.status == 400
    assert detail in error_of(answer)["detail"]
    assert error_of(answer)["code"] == code


def test_an_unknown_aggregate_or_tree_just_matches_nothing(client, topology):
    unknown = "00000000-0000-4000-8000-000000000000"
    assert get(client, f"resources=VCPU:1&member_of={unknown}")["allocation_requests"] == []
    assert get(client, f"resources=VCPU:1&in_tree={unknown}")["allocation_requests"] == []


def test_listing_candidates_needs_the_admin_or_service_role(app, topology):
    answer = Client(app, token="user").get(f"{PATH}?resources=VCPU:1")
    assert answer.status == 403


@pytest.mark.parametrize("query", ["limit=x&limit=5", "limit=0&limit=5",
                                   "group_policy=&group_policy=none",
                                   "group_policy=ISOLATE&group_policy=isolate"])
def test_the_first_of_a_repeated_limit_or_group_policy_is_checked_too(client, topology, query):
    answer = client.get(f"{PATH}?resources=VCPU:1&resources1=VCPU:1&{query}")
    assert answer.status == 400, answer.body
    assert "Invalid query string parameters" in error_of(answer)["detail"]
