"""Schemas for /resource_providers bodies and the list's query string."""
from __future__ import annotations

from stowage.api import versions as v
from stowage.api.versions import Version

_NAME = {"type": "string", "maxLength": 200}
_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_UUID = {"anyOf": [_UUID, {"type": "null"}]}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


# POST /resource_providers; a uuid is generated when none is given.
CREATE = _object({"name": _NAME, "uuid": _UUID}, ["name"])
# 1.14 adds an optional parent.
CREATE_NESTED = _object(
    {"name": _NAME, "uuid": _UUID, "parent_provider_uuid": _NULLABLE_UUID}, ["name"]
)
# PUT /resource_providers/{uuid}: the uuid itself never changes.
UPDATE = _object({"name": _NAME}, ["name"])
UPDATE_NESTED = _object({"name": _NAME, "parent_provider_uuid": _NULLABLE_UUID}, ["name"])


def create_schema(version: Version) -> dict:
    return CREATE_NESTED if version >= v.NESTED_PROVIDERS else CREATE


def update_schema(version: Version) -> dict:
    return UPDATE_NESTED if version >= v.NESTED_PROVIDERS else UPDATE


# GET /resource_providers: which parameters each microversion accepts. The
# values of member_of, resources and required are parsed (and their errors
# worded) by stowage.api.schemas.query.
_LIST_PARAMETERS: list[tuple[Version, dict]] = [
    (v.BASE, {"name": {"type": "string"}, "uuid": _UUID}),
    (v.MEMBER_OF, {"member_of": {"type": "string"}}),
    (v.RESOURCES_FILTER, {"resources": {"type": "string"}}),
    (v.NESTED_PROVIDERS, {"in_tree": _UUID}),
    (v.PROVIDERS_REQUIRED, {"required": {"type": "string"}}),
]
_list_schemas: dict[Version, dict] = {}


def list_query_schema(version: Version) -> dict:
    """The query schema for ``version`` (built once per distinct parameter set)."""
    introduced = max(since for since, _ in _LIST_PARAMETERS if since <= version)
    schema = _list_schemas.get(introduced)
    if schema is None:
        properties: dict = {}
        for since, parameters in _LIST_PARAMETERS:
            if since <= version:
                properties.update(parameters)
        schema = _list_schemas[introduced] = _object(properties)
    return schema
