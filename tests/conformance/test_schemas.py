"""Spec: Stowage validates every body and query string with upstream's own schema.

A schema failure answers 400 with jsonschema's whole message, which prints
the failing schema fragment (``pprint``, keys in insertion order), and which
error ``best_match`` reports depends on the schema's structure. So for every
endpoint and microversion, the schema Stowage's code picks must print exactly
as the one upstream Placement's handler picks.

Upstream's schemas are imported from the installed ``openstack-placement``
package when the tests run; which constant a handler uses at which
microversion is read off ``placement/handlers/*.py`` (the last spec checks
that every constant the handlers name is paired here).

The other specs hold the validation machinery to upstream's: the uuid
format as bodies and query strings read it, and the 400 texts themselves.
"""
from __future__ import annotations

import importlib
import inspect
import json
import pprint
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jsonschema
import microversion_parse
import pytest
import webob
import webob.exc

from stowage import errors
from stowage.api import schemas
from stowage.api import versions as v
from stowage.api.http import Request
from stowage.api.schemas import (
    aggregates,
    allocation_candidates,
    allocations,
    inventories,
    reshaper,
    resource_classes,
    resource_providers,
    traits,
    usages,
)
from stowage.api.versions import Version

UPSTREAM_PACKAGE = "placement"
# Newest first: (microversion from which it applies, upstream constant).
UpstreamChoice = tuple[tuple[tuple[int, int], str], ...]


def gabbi_safe(test_id: str) -> str:
    """gabbi's pytest plugin takes any test id with a ':' for one of its own."""
    return test_id.replace(":", "=")


def always(schema: dict) -> Callable[[Version], dict]:
    """For an endpoint whose schema never changes with the microversion."""
    return lambda version: schema


@dataclass(frozen=True)
class Endpoint:
    """Where a schema validates: the request, its microversions, both choices."""

    request: str
    first: Version
    last: Version
    ours: Callable[[Version], dict]
    upstream_module: str  # under placement.schemas
    upstream: UpstreamChoice

    def versions(self) -> list[Version]:
        return [Version(1, minor) for minor in range(self.first.minor, self.last.minor + 1)]

    def upstream_schema(self, version: Version) -> dict:
        module = importlib.import_module(f"{UPSTREAM_PACKAGE}.schemas.{self.upstream_module}")
        for since, name in self.upstream:
            if version >= since:
                return getattr(module, name)
        raise LookupError(f"{self.request} has no upstream schema at {version}")


NEWEST = v.MAX_VERSION

ENDPOINTS = [
    Endpoint(
        "POST /resource_providers", v.BASE, NEWEST,
        resource_providers.create_schema, "resource_provider",
        (((1, 14), "POST_RP_SCHEMA_V1_14"), ((1, 0), "POST_RESOURCE_PROVIDER_SCHEMA")),
    ),
    Endpoint(
        "PUT /resource_providers/{uuid}", v.BASE, NEWEST,
        resource_providers.update_schema, "resource_provider",
        (((1, 14), "PUT_RP_SCHEMA_V1_14"), ((1, 0), "PUT_RESOURCE_PROVIDER_SCHEMA")),
    ),
    Endpoint(
        "GET /resource_providers?", v.BASE, NEWEST,
        resource_providers.list_query_schema, "resource_provider",
        (
            ((1, 18), "GET_RPS_SCHEMA_1_18"),
            ((1, 14), "GET_RPS_SCHEMA_1_14"),
            ((1, 4), "GET_RPS_SCHEMA_1_4"),
            ((1, 3), "GET_RPS_SCHEMA_1_3"),
            ((1, 0), "GET_RPS_SCHEMA_1_0"),
        ),
    ),
    Endpoint(
        "PUT /resource_providers/{uuid}/aggregates", v.PROVIDER_AGGREGATES, NEWEST,
        aggregates.body_schema, "aggregate",
        (((1, 19), "PUT_AGGREGATES_SCHEMA_V1_19"), ((1, 1), "PUT_AGGREGATES_SCHEMA_V1_1")),
    ),
    Endpoint(
        "POST /resource_providers/{uuid}/inventories", v.BASE, NEWEST,
        always(inventories.CREATE), "inventory",
        (((1, 0), "POST_INVENTORY_SCHEMA"),),
    ),
    Endpoint(
        "PUT /resource_providers/{uuid}/inventories", v.BASE, NEWEST,
        always(inventories.REPLACE_ALL), "inventory",
        (((1, 0), "PUT_INVENTORY_SCHEMA"),),
    ),
    Endpoint(
        "PUT /resource_providers/{uuid}/inventories/{resource_class}", v.BASE, NEWEST,
        always(inventories.UPDATE_ONE), "inventory",
        (((1, 0), "BASE_INVENTORY_SCHEMA"),),
    ),
    Endpoint(
        "PUT /allocations/{consumer_uuid}", v.BASE, NEWEST,
        allocations.put_schema, "allocation",
        (
            ((1, 38), "ALLOCATION_SCHEMA_V1_38"),
            ((1, 34), "ALLOCATION_SCHEMA_V1_34"),
            ((1, 28), "ALLOCATION_SCHEMA_V1_28"),
            ((1, 12), "ALLOCATION_SCHEMA_V1_12"),
            ((1, 8), "ALLOCATION_SCHEMA_V1_8"),
            ((1, 0), "ALLOCATION_SCHEMA"),
        ),
    ),
    Endpoint(
        "POST /allocations", v.POST_ALLOCATIONS, NEWEST,
        allocations.post_schema, "allocation",
        (
            ((1, 38), "POST_ALLOCATIONS_V1_38"),
            ((1, 34), "POST_ALLOCATIONS_V1_34"),
            ((1, 28), "POST_ALLOCATIONS_V1_28"),
            ((1, 13), "POST_ALLOCATIONS_V1_13"),
        ),
    ),
    Endpoint(
        "POST /resource_classes", v.CUSTOM_RESOURCE_CLASSES, NEWEST,
        always(resource_classes.NAMED), "resource_class",
        (((1, 2), "POST_RC_SCHEMA_V1_2"),),
    ),
    Endpoint(
        "PUT /resource_classes/{name} (body)", v.CUSTOM_RESOURCE_CLASSES, Version(1, 6),
        always(resource_classes.NAMED), "resource_class",
        (((1, 2), "PUT_RC_SCHEMA_V1_2"),),
    ),
    Endpoint(
        "PUT /resource_classes/{name} (name in path)", v.IDEMPOTENT_PUT_RESOURCE_CLASS, NEWEST,
        always(resource_classes.NAMED), "resource_class",
        (((1, 7), "PUT_RC_SCHEMA_V1_2"),),
    ),
    Endpoint(
        "PUT /traits/{name} (name in path)", v.TRAITS, NEWEST,
        always(traits.CUSTOM_TRAIT_NAME), "trait",
        (((1, 6), "CUSTOM_TRAIT"),),
    ),
    Endpoint(
        "PUT /resource_providers/{uuid}/traits", v.TRAITS, NEWEST,
        always(traits.PROVIDER_TRAITS_BODY), "trait",
        (((1, 6), "SET_TRAITS_FOR_RP_SCHEMA"),),
    ),
    Endpoint(
        "GET /traits?", v.TRAITS, NEWEST,
        always(traits.LIST_QUERY), "trait",
        (((1, 6), "LIST_TRAIT_SCHEMA"),),
    ),
    Endpoint(
        "GET /usages?", v.USAGES, NEWEST,
        usages.query_schema, "usage",
        (((1, 38), "GET_USAGES_SCHEMA_V1_38"), ((1, 9), "GET_USAGES_SCHEMA_1_9")),
    ),
    Endpoint(
        "POST /reshaper", v.RESHAPER, NEWEST,
        reshaper.body_schema, "reshaper",
        (
            ((1, 38), "POST_RESHAPER_SCHEMA_V1_38"),
            ((1, 34), "POST_RESHAPER_SCHEMA_V1_34"),
            ((1, 30), "POST_RESHAPER_SCHEMA"),
        ),
    ),
    Endpoint(
        "GET /allocation_candidates?", v.ALLOCATION_CANDIDATES, NEWEST,
        allocation_candidates.query_schema, "allocation_candidate",
        (
            ((1, 36), "GET_SCHEMA_1_36"),
            ((1, 35), "GET_SCHEMA_1_35"),
            ((1, 33), "GET_SCHEMA_1_33"),
            ((1, 31), "GET_SCHEMA_1_31"),
            ((1, 25), "GET_SCHEMA_1_25"),
            ((1, 21), "GET_SCHEMA_1_21"),
            ((1, 17), "GET_SCHEMA_1_17"),
            ((1, 16), "GET_SCHEMA_1_16"),
            ((1, 10), "GET_SCHEMA_1_10"),
        ),
    ),
]

PAIRS = [
    pytest.param(endpoint, version, id=f"{endpoint.request} @{version}")
    for endpoint in ENDPOINTS
    for version in endpoint.versions()
]


def printed(schema: dict) -> str:
    """The schema as jsonschema's messages print it."""
    return pprint.pformat(schema, sort_dicts=False)


@pytest.mark.parametrize("endpoint, version", PAIRS)
def test_stowage_validates_with_upstreams_schema_key_order_included(endpoint, version):
    ours, theirs = endpoint.ours(version), endpoint.upstream_schema(version)
    assert printed(ours) == printed(theirs)
    assert ours == theirs


@pytest.mark.parametrize("endpoint, version", PAIRS)
def test_each_version_gets_one_long_lived_schema_object(endpoint, version):
    # Validators are cached per schema object: a fresh schema per request
    # would grow the cache without bound.
    assert endpoint.ours(version) is endpoint.ours(version)


UPSTREAM_HANDLERS = (
    "aggregate", "allocation", "allocation_candidate", "inventory", "reshaper",
    "resource_class", "resource_provider", "trait", "usage",
)


def upstream_handler_schemas() -> set[tuple[str, str]]:
    """Every ``(schema module, constant)`` an upstream handler validates with."""
    used: set[tuple[str, str]] = set()
    for name in UPSTREAM_HANDLERS:
        module = importlib.import_module(f"{UPSTREAM_PACKAGE}.handlers.{name}")
        source = inspect.getsource(module)
        aliases = re.findall(rf"from {UPSTREAM_PACKAGE}\.schemas import (\w+) as (\w+)", source)
        for schema_module, alias in aliases:
            for constant in re.findall(rf"\b{alias}\.([A-Z][A-Z0-9_]*)\b", source):
                used.add((schema_module, constant))
        # GET /allocation_candidates picks its schema by a formatted name.
        for major, minor in getattr(module, "_GET_SCHEMA_MICROVERSIONS", []):
            used.add((name, f"GET_SCHEMA_{major}_{minor}"))
    return used


def test_every_schema_an_upstream_handler_uses_is_paired():
    paired = {(e.upstream_module, name) for e in ENDPOINTS for _, name in e.upstream}
    assert upstream_handler_schemas() == paired


def upstream_version(version: Version) -> microversion_parse.Version:
    found = microversion_parse.Version(*version)
    found.min_version, found.max_version = tuple(v.MIN_VERSION), tuple(v.MAX_VERSION)
    return found


@pytest.mark.parametrize(
    "version", [pytest.param(version, id=str(version)) for version in ENDPOINTS[-1].versions()]
)
def test_allocation_candidates_versions_agree_with_upstreams_own_selector(version):
    handler = importlib.import_module(f"{UPSTREAM_PACKAGE}.handlers.allocation_candidate")
    assert allocation_candidates.query_schema(version) == handler._get_schema(upstream_version(version))


# --- the uuid format ----------------------------------------------------------

UUID_SPELLINGS = [
    "9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11",
    "9F6B67B5-3D4D-4B8D-9C4B-2A1CF20A1A11",
    "9f6b67b53d4d4b8d9c4b2a1cf20a1a11",
    "9f6b67b5-3d4d4b8d-9c4b-2a1cf20a1a11",
    "{9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11}",
    "urn:uuid:9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11",
    "9f6b67b5_3d4d_4b8d_9c4b_2a1cf20a1a11",
    " 9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11",
    "9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a1",
    "",
    "abc",
    5,
    None,
    ["9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11"],
]


@pytest.mark.parametrize("value", UUID_SPELLINGS)
def test_a_body_uuid_is_read_as_upstream_reads_it(value):
    upstream_util = importlib.import_module(f"{UPSTREAM_PACKAGE}.util")
    theirs = upstream_util._FORMAT_CHECKER.conforms(value, "uuid")
    assert schemas.BODY_FORMATS.conforms(value, "uuid") is theirs
    if isinstance(value, str):
        assert schemas.is_uuid(value) is theirs


# --- the 400 texts ------------------------------------------------------------

PROVIDER = "9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11"

# (endpoint, version, a body it refuses)
REFUSED_BODIES = [
    ("POST /resource_providers", (1, 14), {"name": "rp", "parent_provider_uuid": 5}),
    ("POST /resource_providers", (1, 14), {"name": "rp", "uuid": 5}),
    ("POST /resource_providers", (1, 0), {"name": "rp", "uuid": f"{{{PROVIDER[:-1]}}}"}),
    ("PUT /resource_providers/{uuid}", (1, 14), {"name": "rp", "uuid": PROVIDER}),
    ("PUT /resource_providers/{uuid}/aggregates", (1, 1), ["abc"]),
    ("PUT /resource_providers/{uuid}/aggregates", (1, 19), {"aggregates": [PROVIDER, PROVIDER]}),
    ("PUT /resource_providers/{uuid}/inventories", (1, 0),
     {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 0}}}),
    ("PUT /resource_providers/{uuid}/inventories", (1, 0),
     {"resource_provider_generation": 0, "inventories": []}),
    ("POST /resource_providers/{uuid}/inventories", (1, 0), {"resource_class": "vcpu", "total": 1}),
    ("PUT /allocations/{consumer_uuid}", (1, 0),
     {"allocations": [{"resource_provider": {}, "resources": {"VCPU": 1}}]}),
    ("PUT /allocations/{consumer_uuid}", (1, 28),
     {"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": {"a": 1}}),
    ("PUT /allocations/{consumer_uuid}", (1, 38),
     {"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": None}),
    ("PUT /allocations/{consumer_uuid}", (1, 34),
     {"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": None,
      "mappings": {"1": []}}),
    ("POST /allocations", (1, 13), {}),
    ("POST /allocations", (1, 28), {PROVIDER: {"allocations": {PROVIDER: {"resources": {}}}}}),
    ("POST /reshaper", (1, 30), {"inventories": {}, "allocations": {}}),
    ("POST /reshaper", (1, 38),
     {"inventories": {PROVIDER: {"resource_provider_generation": 0, "inventories": {}}},
      "allocations": {PROVIDER: {"allocations": {}, "project_id": "p", "user_id": "u",
                                 "consumer_generation": None, "consumer_type": "x"}}}),
    ("POST /resource_classes", (1, 2), {"name": "fake_class"}),
    ("PUT /resource_providers/{uuid}/traits", (1, 6), {"traits": [""], "resource_provider_generation": 0}),
]


def endpoint_named(request: str) -> Endpoint:
    (endpoint,) = [endpoint for endpoint in ENDPOINTS if endpoint.request == request]
    return endpoint


def upstream_body_answer(schema: dict, body: Any) -> str:
    upstream_util = importlib.import_module(f"{UPSTREAM_PACKAGE}.util")
    with pytest.raises(webob.exc.HTTPBadRequest) as refused:
        upstream_util.extract_json(json.dumps(body), schema)
    return refused.value.detail


@pytest.mark.parametrize(
    "request_line, version, body",
    [pytest.param(*case, id=gabbi_safe(f"{case[0]} @{Version(*case[1])} {json.dumps(case[2])[:60]}"))
     for case in REFUSED_BODIES],
)
def test_a_refused_body_is_explained_in_upstreams_words(request_line, version, body):
    endpoint = endpoint_named(request_line)
    version = Version(*version)
    with pytest.raises(errors.BadRequest) as refused:
        schemas.validate(body, endpoint.ours(version))
    assert refused.value.detail == upstream_body_answer(endpoint.upstream_schema(version), body)


# (endpoint, version, a query string it refuses)
REFUSED_QUERIES = [
    ("GET /resource_providers?", (1, 0), {"uuid": "9f6b67b53d4d4b8d9c4b2a1cf20a1a11"}),
    ("GET /resource_providers?", (1, 14), {"in_tree": f"{{{PROVIDER}}}"}),
    ("GET /resource_providers?", (1, 3), {"resources": "VCPU:1"}),
    ("GET /traits?", (1, 6), {"colour": "gold", "shade": "pale"}),
    ("GET /usages?", (1, 9), {"user_id": "u"}),
    ("GET /usages?", (1, 38), {"project_id": "p", "consumer_type": "lower"}),
    ("GET /allocation_candidates?", (1, 10), {"limit": "1"}),
    ("GET /allocation_candidates?", (1, 16), {"resources": "VCPU:1", "limit": "0"}),
    ("GET /allocation_candidates?", (1, 25), {"resources1": "VCPU:1", "group_policy": "some"}),
    ("GET /allocation_candidates?", (1, 33), {"resources_": "VCPU:1", "resourcesX!": "VCPU:1"}),
]


def stowage_query_answer(schema: dict, query: dict[str, str]) -> str:
    request = Request({"REQUEST_METHOD": "GET", "QUERY_STRING": urlencode(query)}, "req-schemas")
    with pytest.raises(errors.BadRequest) as refused:
        schemas.validate_query(request, schema)
    return refused.value.detail


def upstream_query_answer(schema: dict, query: dict[str, str]) -> str:
    upstream_util = importlib.import_module(f"{UPSTREAM_PACKAGE}.util")
    with pytest.raises(webob.exc.HTTPBadRequest) as refused:
        upstream_util.validate_query_params(webob.Request.blank("/?" + urlencode(query)), schema)
    return refused.value.detail


@pytest.mark.parametrize(
    "request_line, version, query",
    [pytest.param(*case, id=gabbi_safe(f"{case[0]}{urlencode(case[2])} @{Version(*case[1])}"))
     for case in REFUSED_QUERIES],
)
def test_a_refused_query_string_is_explained_in_upstreams_words(request_line, version, query):
    endpoint = endpoint_named(request_line)
    version = Version(*version)
    ours = stowage_query_answer(endpoint.ours(version), query)
    assert ours == upstream_query_answer(endpoint.upstream_schema(version), query)
    assert ours.startswith("Invalid query string parameters: ")


@pytest.mark.parametrize(
    "name", ["CUSTOM_A", "CUSTOM_A\n", "custom_a", "CUSTOM_", "CUSTOM_" + "A" * 248, "CUSTOM_" + "A" * 249]
)
def test_a_custom_trait_name_is_accepted_as_upstream_accepts_it(name):
    upstream_trait = importlib.import_module(f"{UPSTREAM_PACKAGE}.schemas.trait")
    try:
        jsonschema.validate(name, upstream_trait.CUSTOM_TRAIT)
        theirs = True
    except jsonschema.ValidationError:
        theirs = False
    try:
        traits.custom_trait_name(name)
        ours = True
    except errors.InvalidTraitName:
        ours = False
    assert ours is theirs


@pytest.mark.parametrize("name", ["fake_class", 'CUSTOM_A"B', "CUSTOM_A\\", 'X", "y": "z'])
def test_a_resource_class_name_in_the_path_is_refused_in_upstreams_words(name):
    upstream_util = importlib.import_module(f"{UPSTREAM_PACKAGE}.util")
    upstream_class = importlib.import_module(f"{UPSTREAM_PACKAGE}.schemas.resource_class")
    with pytest.raises(webob.exc.HTTPBadRequest) as theirs:
        # What upstream's 1.7+ PUT /resource_classes/{name} does with the name.
        upstream_util.extract_json(f'{{"name": "{name}"}}', upstream_class.PUT_RC_SCHEMA_V1_2)
    with pytest.raises(errors.BadRequest) as ours:
        resource_classes.class_name_from_path(name)
    assert ours.value.detail == theirs.value.detail


def test_a_path_name_made_valid_only_by_json_escapes_is_refused():
    # Upstream validates the decoded name but then creates the class under
    # the raw one, backslash and all; we refuse it rather than store a name
    # no class may have.
    with pytest.raises(errors.BadRequest) as refused:
        resource_classes.class_name_from_path("CUSTOM_\\u0041")
    assert refused.value.detail.startswith("JSON does not validate: 'CUSTOM_\\\\u0041' does not match")
