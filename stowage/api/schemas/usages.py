"""Query string of ``GET /usages``, before and from 1.38 (consumer types)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from stowage.api.http import Request
from stowage.api.schemas import validate_query
from stowage.api.versions import CONSUMER_TYPES

_EXTERNAL_ID = {"type": "string", "minLength": 1, "maxLength": 255}

# 1.9 - 1.37: whose usages; the project is required.
QUERY = {
    "type": "object",
    "properties": {"project_id": _EXTERNAL_ID, "user_id": _EXTERNAL_ID},
    "required": ["project_id"],
    "additionalProperties": False,
}

# 1.38+: optionally one consumer type: a type name (upper case) or the
# lower-case words "all" and "unknown". Upstream's pattern leaves "all"
# unanchored at the end ("allx" passes and then matches no type); kept so.
QUERY_WITH_CONSUMER_TYPE = copy.deepcopy(QUERY)
QUERY_WITH_CONSUMER_TYPE["properties"]["consumer_type"] = {
    "type": "string",
    "pattern": "^[A-Z0-9_]+$|^all|^unknown$",
    "minLength": 1,
    "maxLength": 255,
}


@dataclass(frozen=True)
class UsagesQuery:
    project_id: str
    user_id: str | None
    consumer_type: str | None
    by_consumer_type: bool


def usages_query(request: Request) -> UsagesQuery:
    by_consumer_type = request.version >= CONSUMER_TYPES
    query = validate_query(request, QUERY_WITH_CONSUMER_TYPE if by_consumer_type else QUERY)
    return UsagesQuery(
        project_id=query["project_id"],
        user_id=query.get("user_id"),
        consumer_type=query.get("consumer_type"),
        by_consumer_type=by_consumer_type,
    )
