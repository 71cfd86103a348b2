"""Bodies of ``PUT /resource_providers/{uuid}/aggregates``, before and from 1.19."""
from __future__ import annotations

from dataclasses import dataclass

from stowage.api.http import Request
from stowage.api.schemas import load_body
from stowage.api.versions import AGGREGATE_GENERATION, Version

AGGREGATE_LIST = {"type": "array", "items": {"type": "string", "format": "uuid"}, "uniqueItems": True}

# 1.1 - 1.18: a bare list of aggregate uuids.
BODY_LIST = AGGREGATE_LIST

# 1.19+: the list plus the provider generation the caller last saw.
BODY_WITH_GENERATION = {
    "type": "object",
    "properties": {
        "aggregates": AGGREGATE_LIST,
        "resource_provider_generation": {"type": "integer"},
    },
    "required": ["aggregates", "resource_provider_generation"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class AggregatesUpdate:
    """The new membership; ``generation`` is None before microversion 1.19."""

    aggregates: list[str]
    generation: int | None


def body_schema(version: Version) -> dict:
    return BODY_WITH_GENERATION if version >= AGGREGATE_GENERATION else BODY_LIST


def aggregates_update(request: Request) -> AggregatesUpdate:
    body = load_body(request, body_schema(request.version))
    if request.version >= AGGREGATE_GENERATION:
        return AggregatesUpdate(body["aggregates"], body["resource_provider_generation"])
    return AggregatesUpdate(body, None)
