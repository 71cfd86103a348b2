"""Schemas for /resource_providers bodies and the list's query string."""
from __future__ import annotations

from stowage.api import versions as v
from stowage.api.versions import Version

_NAME = {"type": "string", "maxLength": 200}
_UUID = {"type": "string", "format": "uuid"}
# anyOf rather than a type list: it decides which error best_match reports.
_NULLABLE_UUID = {"anyOf": [_UUID, {"type": "null"}]}


def _body(properties: dict) -> dict:
    """A provider body: ``name`` is required, nothing else may appear."""
    return {
        "type": "object",
        "properties": properties,
        "required": ["name"],
        "additionalProperties": False,
    }


# POST /resource_providers; a uuid is generated when none is given.
CREATE = _body({"name": _NAME, "uuid": _UUID})
# 1.14 adds an optional parent.
CREATE_NESTED = _body({"name": _NAME, "uuid": _UUID, "parent_provider_uuid": _NULLABLE_UUID})
# PUT /resource_providers/{uuid}: the uuid itself never changes.
UPDATE = _body({"name": _NAME})
UPDATE_NESTED = _body({"name": _NAME, "parent_provider_uuid": _NULLABLE_UUID})


def create_schema(version: Version) -> dict:
    return CREATE_NESTED if version >= v.NESTED_PROVIDERS else CREATE


def update_schema(version: Version) -> dict:
    return UPDATE_NESTED if version >= v.NESTED_PROVIDERS else UPDATE


# GET /resource_providers: the parameters each microversion adds, in the
# order the schema lists them. The values of member_of, resources and
# required are parsed (and their errors worded) by stowage.api.schemas.query.
_LIST_PARAMETERS: list[tuple[Version, dict]] = [
    (v.BASE, {"name": {"type": "string"}, "uuid": _UUID}),
    (v.MEMBER_OF, {"member_of": {"type": "string"}}),
    (v.RESOURCES_FILTER, {"resources": {"type": "string"}}),
    (v.NESTED_PROVIDERS, {"in_tree": _UUID}),
    (v.PROVIDERS_REQUIRED, {"required": {"type": "string"}}),
]


def _list_query(introduced: Version) -> dict:
    properties: dict = {}
    for since, parameters in _LIST_PARAMETERS:
        if since <= introduced:
            properties.update(parameters)
    return {"type": "object", "properties": properties, "additionalProperties": False}


_LIST_QUERIES = {since: _list_query(since) for since, _ in _LIST_PARAMETERS}


def list_query_schema(version: Version) -> dict:
    """The query schema for ``version`` (one object per distinct parameter set)."""
    return _LIST_QUERIES[max(since for since in _LIST_QUERIES if since <= version)]
