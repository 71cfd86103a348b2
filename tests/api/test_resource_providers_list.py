"""HTTP spec: GET /resource_providers and its filters.

The providers::

    compute   VCPU 8 (max_unit 4, 2 used), traits AVX + SSD,  aggregate AGG_1
    storage   DISK_GB 100 (reserved 20),   trait SSD,         aggregates AGG_1, AGG_2
    empty     nothing
"""
from __future__ import annotations

import pytest

from stowage.api.app import create_app
from tests.support import Client, test_conf

COMPUTE = "11111111-0000-4000-8000-000000000001"
STORAGE = "11111111-0000-4000-8000-000000000002"
EMPTY = "11111111-0000-4000-8000-000000000003"
AGG_1 = "22222222-0000-4000-8000-000000000001"
AGG_2 = "22222222-0000-4000-8000-000000000002"
AGG_UNUSED = "22222222-0000-4000-8000-000000000003"


@pytest.fixture(params=["fast", "reference"])
def app(database, request):
    """Each spec on both listings: from the fast engine's read model, and by SQL."""
    return create_app(test_conf(stowage={"candidate_engine": request.param}), database)


def names(client: Client, query: str = "") -> set[str]:
    answer = client.get("/resource_providers" + query)
    assert answer.status == 200, answer.body
    return {provider["name"] for provider in answer.json()["resource_providers"]}


def detail(answer) -> str:
    assert answer.status == 400
    return answer.json()["errors"][0]["detail"]


@pytest.fixture
def world(client):
    def setup(uuid, name, inventories, traits, aggregates):
        assert client.post("/resource_providers", {"name": name, "uuid": uuid}).status == 200
        generation = 0
        if inventories:
            body = {"resource_provider_generation": generation, "inventories": inventories}
            assert client.put(f"/resource_providers/{uuid}/inventories", body).status == 200
            generation += 1
        if traits:
            body = {"resource_provider_generation": generation, "traits": traits}
            assert client.put(f"/resource_providers/{uuid}/traits", body).status == 200
            generation += 1
        if aggregates:
            body = {"resource_provider_generation": generation, "aggregates": aggregates}
            assert client.put(f"/resource_providers/{uuid}/aggregates", body).status == 200

    setup(COMPUTE, "compute", {"VCPU": {"total": 8, "max_unit": 4}},
          ["HW_CPU_X86_AVX", "STORAGE_DISK_SSD"], [AGG_1])
    setup(STORAGE, "storage", {"DISK_GB": {"total": 100, "reserved": 20}},
          ["STORAGE_DISK_SSD"], [AGG_1, AGG_2])
    setup(EMPTY, "empty", None, None, None)
    allocation = {
        "allocations": {COMPUTE: {"resources": {"VCPU": 2}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    assert client.put("/allocations/33333333-0000-4000-8000-000000000001", allocation).status == 204
    return client


def test_an_empty_service_lists_no_providers_with_cache_headers(client):
    answer = client.get("/resource_providers")
    assert answer.json() == {"resource_providers": []}
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["last-modified"].endswith(" GMT")


def test_cache_headers_are_absent_before_1_15(app):
    headers = Client(app, version="1.14").get("/resource_providers").headers
    assert "cache-control" not in headers and "last-modified" not in headers


def test_listed_providers_carry_the_same_fields_as_a_single_one(world):
    listed = world.get(f"/resource_providers?uuid={COMPUTE}").json()["resource_providers"]
    assert listed == [world.get(f"/resource_providers/{COMPUTE}").json()]


def test_filters_by_name_and_uuid(world):
    assert names(world) == {"compute", "storage", "empty"}
    assert names(world, "?name=storage") == {"storage"}
    assert names(world, f"?uuid={EMPTY}") == {"empty"}
    assert names(world, "?name=nothing") == set()


@pytest.mark.parametrize("query", ["?uuid=spameggs", "?spam=eggs", "?in_tree=nope"])
def test_unknown_parameters_and_bad_uuids_are_400(world, query):
    assert "Invalid query string parameters" in detail(world.get("/resource_providers" + query))


# --- member_of ------------------------------------------------------------------------


def test_member_of_needs_1_3(app, world):
    answer = Client(app, version="1.2").get(f"/resource_providers?member_of={AGG_1}")
    assert "Invalid query string parameters" in detail(answer)


def test_member_of_one_aggregate_or_any_of_several(world):
    assert names(world, f"?member_of={AGG_2}") == {"storage"}
    assert names(world, f"?member_of=in:{AGG_2},{AGG_UNUSED}") == {"storage"}
    assert names(world, f"?member_of=in:{AGG_1},{AGG_2}") == {"compute", "storage"}
    assert names(world, f"?member_of={AGG_UNUSED}") == set()


def test_repeated_member_of_means_all_of_them_from_1_24(app, world):
    query = f"?member_of={AGG_1}&member_of={AGG_2}"
    assert names(world, query) == {"storage"}
    answer = Client(app, version="1.23").get("/resource_providers" + query)
    assert "Multiple member_of parameters are not supported" in detail(answer)


def test_forbidden_aggregates_from_1_32(app, world):
    assert names(world, f"?member_of=!{AGG_2}") == {"compute", "empty"}
    assert names(world, f"?member_of=!in:{AGG_1},{AGG_UNUSED}") == {"empty"}
    answer = Client(app, version="1.31").get(f"/resource_providers?member_of=!{AGG_2}")
    assert "Forbidden member_of parameters are not supported" in detail(answer)


@pytest.mark.parametrize(
    "value, complaint",
    [
        (f"{AGG_1},{AGG_2}", "Multiple values for 'member_of' must be prefixed with the 'in:'"),
        ("in:not-a-uuid", "Expected 'member_of' parameter to contain valid UUID(s)"),
        ("in:", "Expected 'member_of' parameter to contain valid UUID(s)"),
    ],
)
def test_malformed_member_of_is_400(world, value, complaint):
    assert complaint in detail(world.get(f"/resource_providers?member_of={value}"))


# --- resources ------------------------------------------------------------------------


def test_resources_needs_1_4(app, world):
    answer = Client(app, version="1.3").get("/resource_providers?resources=VCPU:1")
    assert "Invalid query string parameters" in detail(answer)


def test_resources_keeps_providers_with_capacity_within_max_unit(world):
    # compute: 8 VCPU, 2 used, at most 4 at a time.
    assert names(world, "?resources=VCPU:4") == {"compute"}
    assert names(world, "?resources=VCPU:5") == set()
    # storage: 100 - 20 reserved = 80 DISK_GB.
    assert names(world, "?resources=DISK_GB:80") == {"storage"}
    assert names(world, "?resources=DISK_GB:81") == set()
    assert names(world, "?resources=VCPU:1,DISK_GB:1") == set()


def test_used_amounts_count_against_capacity(world):
    generation = world.get(f"/resource_providers/{COMPUTE}").json()["generation"]
    body = {
        "resource_provider_generation": generation,
        "inventories": {"VCPU": {"total": 5, "max_unit": 4}},
    }
    assert world.put(f"/resource_providers/{COMPUTE}/inventories", body).status == 200
    assert names(world, "?resources=VCPU:3") == {"compute"}
    assert names(world, "?resources=VCPU:4") == set()


@pytest.mark.parametrize(
    "value, complaint",
    [
        ("", "Got: empty string."),
        (
            "VCPU",
            "Badly formed resources parameter. Expected resources query string parameter "
            "in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: VCPU.",
        ),
        ("VCPU:1,", "Got: ."),
        ("VCPU:fred", "Requested resource VCPU expected positive integer amount. Got: fred."),
        ("VCPU:0", "Requested resource VCPU requires amount >= 1. Got: 0."),
        (
            "NOT_A_CLASS:1",
            "Invalid resource class in resources parameter: No such resource class NOT_A_CLASS.",
        ),
    ],
)
def test_malformed_resources_are_400(world, value, complaint):
    assert complaint in detail(world.get(f"/resource_providers?resources={value}"))


# --- required -------------------------------------------------------------------------


def test_required_needs_1_18(app, world):
    answer = Client(app, version="1.17").get("/resource_providers?required=STORAGE_DISK_SSD")
    assert "Additional properties are not allowed" in detail(answer)


def test_required_traits_must_all_be_present(world):
    assert names(world, "?required=STORAGE_DISK_SSD") == {"compute", "storage"}
    assert names(world, "?required=STORAGE_DISK_SSD,HW_CPU_X86_AVX") == {"compute"}
    assert names(world, "?required=HW_CPU_X86_SSE") == set()


def test_forbidden_traits_from_1_22(app, world):
    assert names(world, "?required=!HW_CPU_X86_AVX") == {"storage", "empty"}
    assert names(world, "?required=STORAGE_DISK_SSD,!HW_CPU_X86_AVX") == {"storage"}
    answer = Client(app, version="1.21").get("/resource_providers?required=!HW_CPU_X86_AVX")
    assert (
        "Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. "
        "Got: !HW_CPU_X86_AVX" in detail(answer)
    )


def test_any_of_traits_and_repeated_required_from_1_39(app, world):
    query = "?required=in:HW_CPU_X86_AVX,HW_CPU_X86_SSE&required=STORAGE_DISK_SSD"
    assert names(world, query) == {"compute"}
    assert names(world, "?required=in:HW_CPU_X86_AVX,STORAGE_DISK_SSD") == {"compute", "storage"}
    old = Client(app, version="1.38")
    assert "only supported since microversion 1.39" in detail(
        old.get("/resource_providers?required=in:HW_CPU_X86_AVX")
    )
    # Before 1.39 only the last 'required' counts.
    assert names(old, "?required=HW_CPU_X86_SSE&required=HW_CPU_X86_AVX") == {"compute"}


@pytest.mark.parametrize(
    "value, complaint",
    [
        ("", "Expected 'required' parameter value of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC."),
        ("A,,B", "Got an empty trait in: A,,B"),
        ("in:A,,B", "parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC"),
        ("in:A,!B", "does not support forbidden traits"),
        ("STORAGE_DISK_SSD,NO_SUCH_TRAIT", "No such trait(s): NO_SUCH_TRAIT."),
        ("!NO_SUCH_TRAIT", "No such trait(s): NO_SUCH_TRAIT."),
    ],
)
def test_malformed_or_unknown_required_traits_are_400(world, value, complaint):
    assert complaint in detail(world.get(f"/resource_providers?required={value}"))


def test_filters_combine(world):
    query = f"?required=STORAGE_DISK_SSD&member_of={AGG_1}&resources=DISK_GB:10"
    assert names(world, query) == {"storage"}
