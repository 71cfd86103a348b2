"""JSON schemas of the answers' bodies, by microversion.

Each function takes the microversion and returns the schema of one kind of
answer as Stowage (and upstream) writes it. Objects list every key they may
carry and allow no other, so a key added or renamed by mistake breaks the
contract tests (``tests/api/test_openapi.py``) and schemathesis' response
checks (``tests/served/test_schemathesis.py``).
"""
from __future__ import annotations

from stowage.api import versions as v
from stowage.api.versions import Version

UUID = {"type": "string", "format": "uuid"}
NULLABLE_UUID = {"anyOf": [UUID, {"type": "null"}]}
GENERATION = {"type": "integer", "minimum": 0}
COUNT = {"type": "integer", "minimum": 0}
NAME = {"type": "string"}
RESOURCE_CLASS = {"type": "string", "pattern": "^[A-Z0-9_]+$"}


def closed(properties: dict, optional: tuple[str, ...] = ()) -> dict:
    """An object with exactly ``properties``, all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def by_class(value: dict) -> dict:
    """An object keyed by resource class names."""
    return {"type": "object", "propertyNames": RESOURCE_CLASS, "additionalProperties": value}


def by_uuid(value: dict) -> dict:
    """An object keyed by uuids."""
    return {"type": "object", "propertyNames": UUID, "additionalProperties": value}


LINKS = {"type": "array", "items": closed({"rel": NAME, "href": NAME})}
AMOUNTS = by_class({"type": "integer", "minimum": 1})
USAGES = by_class(COUNT)

ERROR = closed(
    {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": closed(
                {
                    "status": {"type": "integer"},
                    "title": NAME,
                    "detail": NAME,
                    "code": NAME,
                    "request_id": NAME,
                    # A microversion out of range (406) names the range.
                    "max_version": NAME,
                    "min_version": NAME,
                },
                optional=("code", "max_version", "min_version"),
            ),
        }
    }
)

VERSIONS = closed(
    {
        "versions": {
            "type": "array",
            "items": closed(
                {
                    "id": NAME,
                    "max_version": NAME,
                    "min_version": NAME,
                    "status": NAME,
                    "links": LINKS,
                }
            ),
        }
    }
)

RESOURCE_CLASS_ANSWER = closed({"name": NAME, "links": LINKS})
RESOURCE_CLASSES = closed({"resource_classes": {"type": "array", "items": RESOURCE_CLASS_ANSWER}})

INVENTORY = closed(
    {
        "total": COUNT,
        "reserved": COUNT,
        "min_unit": COUNT,
        "max_unit": COUNT,
        "step_size": COUNT,
        "allocation_ratio": {"type": "number"},
    }
)
INVENTORY_WITH_GENERATION = closed(
    {"resource_provider_generation": GENERATION, **INVENTORY["properties"]}
)
INVENTORIES = closed({"inventories": by_class(INVENTORY), "resource_provider_generation": GENERATION})
PROVIDER_USAGES = closed({"usages": USAGES, "resource_provider_generation": GENERATION})
PROVIDER_TRAITS = closed(
    {"traits": {"type": "array", "items": NAME}, "resource_provider_generation": GENERATION}
)
TRAITS = closed({"traits": {"type": "array", "items": NAME}})
# No token or a bad one: noauth2 answers in WebOb's own form, keystonemiddleware
# in its own; neither is Placement's error format (nor upstream's).
UNAUTHORIZED = {
    "anyOf": [
        closed({"message": NAME, "code": NAME, "title": NAME}),
        closed(
            {"error": closed({"code": {"type": "integer"}, "title": NAME, "message": NAME})}
        ),
    ]
}
DESCRIPTION = {"type": "object", "required": ["openapi", "info", "paths"]}

_NULLABLE_NAME = {"type": ["string", "null"]}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
# GET /stowage/allocation_candidates/explain (stowage.api.explanation).
_COUNTED_TREES = {
    "description": "Each tree ruled out counted once, under the first step (root_traits, "
    "tree_room, groups, combine) and reason that ruled it out: the counts are trees",
    **closed(
        {
            "unit": {"const": "trees"},
            "examined": COUNT,
            "excluded": COUNT,
            "reasons": {
                "type": "array",
                "items": closed(
                    {
                        "stage": {"enum": ["root_traits", "tree_room", "groups", "combine"]},
                        "group": _NULLABLE_NAME,
                        "reason": NAME,
                        "count": COUNT,
                        "resource_class": _NULLABLE_NAME,
                        "trait": _NULLABLE_NAME,
                        "requested": _NULLABLE_INTEGER,
                        "free": _NULLABLE_INTEGER,
                        "text": NAME,
                    }
                ),
            },
        }
    ),
}
EXPLANATION = closed(
    {
        "summary": NAME,
        "candidates": COUNT,
        "trees": COUNT,
        "fitting_trees": COUNT,
        "excluded_trees": _COUNTED_TREES,
        "groups": {
            "type": "array",
            "items": closed(
                {
                    "group": _NULLABLE_NAME,
                    "stages": {
                        "type": "array",
                        "items": closed(
                            {
                                "stage": NAME,
                                # What the stage counts: trees, providers,
                                # provider choices or combinations.
                                "unit": NAME,
                                "kept": COUNT,
                                "excluded": {
                                    "type": "array",
                                    "items": closed(
                                        {
                                            "reason": NAME,
                                            "count": COUNT,
                                            "resource_class": _NULLABLE_NAME,
                                            "trait": _NULLABLE_NAME,
                                            "requested": _NULLABLE_INTEGER,
                                            "free": _NULLABLE_INTEGER,
                                            "group": _NULLABLE_NAME,
                                        }
                                    ),
                                },
                            }
                        ),
                    },
                }
            ),
        },
        "nearest_misses": {
            "type": "array",
            "items": closed(
                {
                    "provider": {"anyOf": [UUID, {"type": "null"}]},
                    "stage": NAME,
                    "group": _NULLABLE_NAME,
                    "reason": NAME,
                    "resource_class": _NULLABLE_NAME,
                    "requested": _NULLABLE_INTEGER,
                    "used": _NULLABLE_INTEGER,
                    "capacity": _NULLABLE_INTEGER,
                    "free": _NULLABLE_INTEGER,
                    "trait": _NULLABLE_NAME,
                }
            ),
        },
    }
)


def provider(version: Version) -> dict:
    properties = {"uuid": UUID, "name": NAME, "generation": GENERATION, "links": LINKS}
    if version >= v.NESTED_PROVIDERS:
        properties |= {"parent_provider_uuid": NULLABLE_UUID, "root_provider_uuid": UUID}
    return closed(properties)


def providers(version: Version) -> dict:
    return closed({"resource_providers": {"type": "array", "items": provider(version)}})


def aggregates(version: Version) -> dict:
    properties: dict = {"aggregates": {"type": "array", "items": UUID, "uniqueItems": True}}
    if version >= v.AGGREGATE_GENERATION:
        properties["resource_provider_generation"] = GENERATION
    return closed(properties)


def consumer_allocations(version: Version) -> dict:
    """GET /allocations/{consumer}: the owner and generation only when the
    consumer exists."""
    by_provider = closed({"generation": GENERATION, "resources": AMOUNTS})
    properties: dict = {"allocations": by_uuid(by_provider)}
    if version >= v.ALLOCATIONS_DICT:
        properties |= {"project_id": NAME, "user_id": NAME}
    if version >= v.CONSUMER_GENERATION:
        properties["consumer_generation"] = {"type": ["integer", "null"]}
    if version >= v.CONSUMER_TYPES:
        properties["consumer_type"] = NAME
    return closed(properties, optional=tuple(name for name in properties if name != "allocations"))


def provider_allocations(version: Version) -> dict:
    entry: dict = {"resources": AMOUNTS}
    if version >= v.CONSUMER_GENERATION:
        entry["consumer_generation"] = {"type": ["integer", "null"]}
    return closed(
        {"allocations": by_uuid(closed(entry)), "resource_provider_generation": GENERATION}
    )


def project_usages(version: Version) -> dict:
    if version >= v.CONSUMER_TYPES:
        by_type = {
            "type": "object",
            "properties": {"consumer_count": COUNT},
            "required": ["consumer_count"],
            "propertyNames": {"anyOf": [RESOURCE_CLASS, {"const": "consumer_count"}]},
            "additionalProperties": COUNT,
        }
        return closed({"usages": {"type": "object", "additionalProperties": by_type}})
    return closed({"usages": USAGES})


def allocation_candidates(version: Version) -> dict:
    if version >= v.ALLOCATIONS_DICT:
        allocations: dict = by_uuid(closed({"resources": AMOUNTS}))
    else:
        allocations = {
            "type": "array",
            "items": closed({"resource_provider": closed({"uuid": UUID}), "resources": AMOUNTS}),
        }
    request: dict = {"allocations": allocations}
    if version >= v.MAPPINGS:
        request["mappings"] = {
            "type": "object",
            "additionalProperties": {"type": "array", "items": UUID, "minItems": 1},
        }
    summary: dict = {"resources": by_class(closed({"capacity": COUNT, "used": COUNT}))}
    if version >= v.CANDIDATES_REQUIRED:
        summary["traits"] = {"type": "array", "items": NAME}
    if version >= v.NESTED_CANDIDATES:
        summary |= {"parent_provider_uuid": NULLABLE_UUID, "root_provider_uuid": UUID}
    return closed(
        {
            "allocation_requests": {"type": "array", "items": closed(request)},
            "provider_summaries": by_uuid(closed(summary)),
        }
    )


# GET /healthcheck (oslo.middleware's shape): the simple answer, or an
# administrator's with each check.
_HEALTH_CHECK = closed({
    "check": {"enum": ["database", "read_model"]},
    "reason": NAME,
    "available": {"type": "boolean"},
    "details": NAME,
    "class": NAME,
    "seconds": {"type": "number", "minimum": 0},
})
HEALTH = {
    "anyOf": [
        closed({"detailed": {"const": False}, "reasons": {"type": "array", "items": NAME}}),
        closed({
            "detailed": {"const": True},
            "now": NAME,
            "pid": {"type": "integer"},
            "reasons": {"type": "array", "items": _HEALTH_CHECK},
        }),
    ]
}
# Prometheus' text format (or OpenMetrics).
METRICS_TEXT = {"type": "string"}
