"""Query string of ``GET /usages``, before and from 1.38 (consumer types)."""
from __future__ import annotations

from dataclasses import dataclass

from stowage.api.http import Request
from stowage.api.schemas import by_version, validate_query
from stowage.api.versions import CONSUMER_TYPES, USAGES, Version

_EXTERNAL_ID = {"type": "string", "minLength": 1, "maxLength": 255}

# 1.38+: optionally one consumer type: a type name (upper case) or the
# lower-case words "all" and "unknown". Upstream's pattern leaves "all"
# unanchored at the end ("allx" passes and then matches no type); kept so.
_CONSUMER_TYPE = {
    "type": "string",
    "pattern": "^[A-Z0-9_]+$|^all|^unknown$",
    "minLength": 1,
    "maxLength": 255,
}


def _query(**extra: dict) -> dict:
    """Whose usages: the project is required, the user optional."""
    return {
        "type": "object",
        "properties": {"project_id": _EXTERNAL_ID, "user_id": _EXTERNAL_ID, **extra},
        "required": ["project_id"],
        "additionalProperties": False,
    }


QUERY = _query()
QUERY_WITH_CONSUMER_TYPE = _query(consumer_type=_CONSUMER_TYPE)
# Newest first.
QUERY_SCHEMAS = ((CONSUMER_TYPES, QUERY_WITH_CONSUMER_TYPE), (USAGES, QUERY))


def query_schema(version: Version) -> dict:
    """The query schema of GET /usages (1.9+) at ``version``."""
    return by_version(QUERY_SCHEMAS, version)


@dataclass(frozen=True)
class UsagesQuery:
    project_id: str
    user_id: str | None
    consumer_type: str | None
    by_consumer_type: bool


def usages_query(request: Request) -> UsagesQuery:
    query = validate_query(request, query_schema(request.version))
    return UsagesQuery(
        project_id=query["project_id"],
        user_id=query.get("user_id"),
        consumer_type=query.get("consumer_type"),
        by_consumer_type=request.version >= CONSUMER_TYPES,
    )
