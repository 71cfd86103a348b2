"""Property spec: any query string built from the filter grammars'
pieces, and any JSON body sent to a write, is answered — 2xx, or a 4xx in
Placement's error format — on every backend, at every microversion; never
a 5xx.

The pieces are the grammars' own (``resources``, ``required``,
``member_of``, ``in_tree``, granular suffixes, ``same_subtree``,
``group_policy``, ``limit``, ``root_required``) mixed with what breaks
them: unknown names, empty and negative and huge amounts, stray
separators, NULs and bytes that are not UTF-8.
"""
from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Client

PROVIDER = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
AGGREGATE = "7c6b5a4d-3e2f-4b1a-9d8c-7b6a5f4e3d2c"
VERSIONS = st.sampled_from(["1.0", "1.10", "1.17", "1.21", "1.25", "1.29", "1.33", "1.35",
                            "1.36", "1.38", "1.39", "latest"])
FUZZ = settings(max_examples=int(os.environ.get("STOWAGE_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

NAMES = st.sampled_from(["VCPU", "MEMORY_MB", "DISK_GB", "CUSTOM_GOLD", "CUSTOM_NONE",
                         "HW_CPU_X86_AVX2", "vcpu", "", "CUSTOM_", "VCPU\x00", "ÄÖ"])
AMOUNTS = st.one_of(st.integers(-3, 5).map(str), st.sampled_from(
    ["", "0", "1.5", "2147483648", str(2**64), "1e3", " 1", "x"]))
UUIDS = st.sampled_from([PROVIDER, AGGREGATE, str(uuid.UUID(int=7)), "not-a-uuid", ""])
SUFFIXES = st.one_of(st.just(""), st.integers(0, 12).map(str),
                     st.text("_ABCXYZ019-!", min_size=1, max_size=70).map(lambda t: "_" + t))
RAW = st.text(max_size=12).map(lambda t: quote(t)) | st.sampled_from(["%00", "%ff", "%", ","])


def joined(parts: st.SearchStrategy, separator: str = ",") -> st.SearchStrategy:
    return st.lists(parts, max_size=4).map(separator.join)


VALUES = {
    "resources": joined(st.tuples(NAMES, AMOUNTS).map(":".join) | RAW),
    "required": st.tuples(st.sampled_from(["", "in:", "!", "!in:"]),
                          joined(st.tuples(st.sampled_from(["", "!"]), NAMES).map("".join))
                          ).map("".join) | RAW,
    "member_of": st.tuples(st.sampled_from(["", "in:", "!", "!in:"]), joined(UUIDS)
                           ).map("".join) | RAW,
    "in_tree": UUIDS | RAW,
    "same_subtree": joined(SUFFIXES) | RAW,
    "group_policy": st.sampled_from(["none", "isolate", "", "ISOLATE", "any"]) | RAW,
    "limit": AMOUNTS | RAW,
    "root_required": joined(st.tuples(st.sampled_from(["", "!"]), NAMES).map("".join)) | RAW,
    "name": RAW, "uuid": UUIDS | RAW,
}
GRANULAR = {"resources", "required", "member_of", "in_tree"}


@st.composite
def query_strings(draw) -> str:
    pairs = []
    for _ in range(draw(st.integers(0, 6))):
        parameter = draw(st.sampled_from(sorted(VALUES)) | st.text("abz_", max_size=6))
        name = parameter + (draw(SUFFIXES) if parameter in GRANULAR else "")
        value = draw(VALUES.get(parameter, RAW))
        pairs.append(f"{quote(name)}={quote(value, safe='%:,!')}")
    return "&".join(pairs)


# What an error body must never show: the code, the SQL or the files behind it.
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "pymysql", "sqlite3", "SELECT ",
         "INSERT ", "UPDATE ", ".py", "/stowage/")


def assert_answered(answer) -> None:
    assert answer.status < 500, answer.body[:500]
    if answer.status >= 400 and answer.status != 401:
        assert answer.headers["content-type"] == "application/json"
        (error,) = answer.json()["errors"]
        assert error["status"] == answer.status
        assert not [leak for leak in LEAKS if leak in error["detail"]], error["detail"]


@pytest.fixture
def seeded(client: Client) -> Client:
    assert client.post("/resource_providers", {"uuid": PROVIDER, "name": "fuzz"}).status == 200
    client.put(f"/resource_providers/{PROVIDER}/inventories", {
        "resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}})
    client.put(f"/resource_providers/{PROVIDER}/aggregates", {
        "resource_provider_generation": 1, "aggregates": [AGGREGATE]})
    client.put("/traits/CUSTOM_GOLD")
    return client


@FUZZ
@given(query=query_strings(), version=VERSIONS,
       path=st.sampled_from(["/allocation_candidates", "/resource_providers", "/usages",
                             "/traits", "/resource_classes"]))
def test_any_query_is_answered(seeded, query, version, path):
    assert_answered(Client(seeded.app, version=version).get(f"{path}?{query}"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8) | UUIDS | NAMES,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | UUIDS | NAMES | st.sampled_from(
        ["allocations", "resources", "project_id", "user_id", "consumer_generation",
         "consumer_type", "resource_provider_generation", "inventories", "total", "traits",
         "aggregates", "name", "uuid", "parent_provider_uuid", "mappings"]), children,
        max_size=5),
    max_leaves=12,
)


@FUZZ
@given(body=JSON, version=VERSIONS, route=st.sampled_from([
    ("PUT", f"/allocations/{uuid.UUID(int=9)}"), ("POST", "/allocations"),
    ("POST", "/resource_providers"), ("PUT", f"/resource_providers/{PROVIDER}"),
    ("PUT", f"/resource_providers/{PROVIDER}/inventories"),
    ("POST", f"/resource_providers/{PROVIDER}/inventories"),
    ("PUT", f"/resource_providers/{PROVIDER}/inventories/VCPU"),
    ("PUT", f"/resource_providers/{PROVIDER}/traits"),
    ("PUT", f"/resource_providers/{PROVIDER}/aggregates"),
    ("POST", "/reshaper"), ("POST", "/resource_classes"),
]))
def test_any_json_body_is_answered(seeded, body, version, route):
    method, path = route
    assert_answered(Client(seeded.app, version=version).request(method, path, body))
