"""HTTP spec: when an unknown class or trait in a request is a 400, and when
the answer is simply empty.

Upstream takes the groups in the order the query names them and stops with
an empty answer at the first group nothing satisfies, so a later group's
names are never looked up; within a group it looks up the classes, then
which providers are in its ``member_of``, then the traits. Topology: one
provider with 100 DISK_GB and no aggregates.
"""
from __future__ import annotations

import pytest

from tests.support import Client

PROVIDER = "9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11"
AGGREGATE = "aaaaaaaa-0000-0000-0000-000000000001"
EMPTY = {"allocation_requests": [], "provider_summaries": {}}


@pytest.fixture
def client(app) -> Client:
    client = Client(app, version="1.36")
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "disk"}).status == 200
    inventory = {"resource_provider_generation": 0, "inventories": {"DISK_GB": {"total": 100}}}
    assert client.put(f"/resource_providers/{PROVIDER}/inventories", inventory).status == 200
    return client


@pytest.mark.parametrize(
    "query",
    [
        # The first group fits nowhere: the second's class is never looked up.
        "resources1=VCPU:1&resources2=DISK_GB:512,CUSTOM_NOPE:1&group_policy=none",
        "resources=DISK_GB:512&resources2=CUSTOM_NOPE:1&group_policy=none",
        # No provider is in the group's aggregate: its traits are never looked up.
        f"resources=DISK_GB:5&resources2=DISK_GB:1&member_of2={AGGREGATE}&required2=CUSTOM_NOPE"
        "&group_policy=none",
    ],
)
def test_an_unknown_name_after_a_group_that_fits_nowhere_is_an_empty_answer(client, query):
    answer = client.get(f"/allocation_candidates?{query}")
    assert (answer.status, answer.json()) == (200, EMPTY)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("resources=DISK_GB:5&resources2=CUSTOM_NOPE:1&group_policy=none",
         "Invalid resource class in resources parameter: No such resource class CUSTOM_NOPE."),
        ("resources2=CUSTOM_NOPE:1&resources=VCPU:1&group_policy=none",
         "Invalid resource class in resources parameter: No such resource class CUSTOM_NOPE."),
        ("resources=DISK_GB:5&resources2=DISK_GB:1&required2=CUSTOM_NOPE&group_policy=none",
         "No such trait(s): CUSTOM_NOPE."),
        # An unknown tree comes after the traits.
        (f"resources=DISK_GB:5&resources2=DISK_GB:1&in_tree2={AGGREGATE}&required2=CUSTOM_NOPE"
         "&group_policy=none", "No such trait(s): CUSTOM_NOPE."),
        ("resources=VCPU:1&root_required=CUSTOM_NOPE", "No such trait(s): CUSTOM_NOPE."),
    ],
)
def test_an_unknown_name_upstream_reaches_is_a_400(client, query, detail):
    answer = client.get(f"/allocation_candidates?{query}")
    assert answer.status == 400
    assert answer.json()["errors"][0]["detail"].endswith(f" {detail}  ")
