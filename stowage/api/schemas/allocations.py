"""Bodies of ``PUT /allocations/{consumer}`` and ``POST /allocations``, by microversion.

PUT shapes::

    1.0   {"allocations": [{"resource_provider": {"uuid": RP}, "resources": {RC: N}}]}
    1.8   ... plus required "project_id" and "user_id"
    1.12  {"allocations": {RP: {"resources": {RC: N}, "generation": G?}},
           "project_id": P, "user_id": U}
    1.28  ... plus required "consumer_generation" (int or null); allocations may be {}
    1.34  ... plus optional "mappings" {group suffix: [RP, ...]} (accepted, not stored)
    1.38  ... plus required "consumer_type" ([A-Z0-9_]+)

POST (1.13+) is ``{CONSUMER: <the 1.12+ PUT body, allocations may be {}>}``
with the same 1.28, 1.34 and 1.38 additions.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from stowage import errors
from stowage.api.http import Request
from stowage.api.schemas import by_version, load_body
from stowage.api.versions import (
    ALLOCATIONS_DICT,
    BASE,
    CONSUMER_GENERATION,
    CONSUMER_TYPES,
    MAPPINGS,
    POST_ALLOCATIONS,
    REQUIRE_PROJECT_USER,
    Version,
)
from stowage.domain.allocations import ConsumerAllocations
from stowage.domain.consumers import ConsumerClaim

# Keys that must look like a UUID (as upstream: 36 hex digits and dashes).
UUID_KEY = "^[0-9a-fA-F-]{36}$"
RESOURCE_CLASS_NAME = "^[A-Z0-9_]+$"
CONSUMER_TYPE_NAME = "^[A-Z0-9_]+$"
# Request group suffixes of 1.33+; deliberately unanchored, as upstream.
GROUP_SUFFIX = "[a-zA-Z0-9_-]{1,64}"

_OWNER = {"type": "string", "minLength": 1, "maxLength": 255}
_AMOUNTS = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {RESOURCE_CLASS_NAME: {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}
# "additionalProperties" does nothing to an integer or null, but upstream has
# it: it is printed in messages and can change the error best_match picks.
_CONSUMER_GENERATION = {"type": ["integer", "null"], "additionalProperties": False}
_MAPPINGS = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {
        GROUP_SUFFIX: {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "uuid"},
        }
    },
}
_CONSUMER_TYPE = {"type": "string", "pattern": CONSUMER_TYPE_NAME, "minLength": 1, "maxLength": 255}

# Key order below is upstream's, which its error messages print; it differs
# between shapes (e.g. "required" before or after "additionalProperties").


def _list_form(with_owner: bool) -> dict:
    """The list-shaped PUT body of microversions 1.0 - 1.11."""
    provider = {
        "type": "object",
        "properties": {"uuid": {"type": "string", "format": "uuid"}},
        "additionalProperties": False,
        "required": ["uuid"],
    }
    entry = {
        "type": "object",
        "properties": {"resource_provider": provider, "resources": _AMOUNTS},
        "required": ["resource_provider", "resources"],
        "additionalProperties": False,
    }
    properties: dict = {"allocations": {"type": "array", "minItems": 1, "items": entry}}
    required = ["allocations"]
    if with_owner:
        properties.update(project_id=_OWNER, user_id=_OWNER)
        required += ["project_id", "user_id"]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def consumer_body(version: Version, may_be_empty: bool = True) -> dict:
    """The dict-shaped body for one consumer at ``version`` (1.12+ PUT, each
    POST and reshaper entry); ``may_be_empty`` allows ``"allocations": {}``.
    """
    by_provider = {
        "type": "object",
        "properties": {"generation": {"type": "integer"}, "resources": _AMOUNTS},
        "required": ["resources"],
        "additionalProperties": False,
    }
    properties: dict = {
        "allocations": {
            "type": "object",
            "minProperties": 0 if may_be_empty else 1,
            "patternProperties": {UUID_KEY: by_provider},
            "additionalProperties": False,
        },
        "project_id": _OWNER,
        "user_id": _OWNER,
    }
    required = ["allocations", "project_id", "user_id"]
    if version >= CONSUMER_GENERATION:
        properties["consumer_generation"] = _CONSUMER_GENERATION
        required.append("consumer_generation")
    if version >= MAPPINGS:
        properties["mappings"] = _MAPPINGS
    if version >= CONSUMER_TYPES:
        properties["consumer_type"] = _CONSUMER_TYPE
        required.append("consumer_type")
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": required,
    }


def consumers_body(version: Version, min_consumers: int) -> dict:
    """``{CONSUMER: consumer body}`` as POST /allocations and POST /reshaper take it."""
    return {
        "type": "object",
        "minProperties": min_consumers,
        "additionalProperties": False,
        "patternProperties": {UUID_KEY: consumer_body(version)},
    }


# Newest first; one object per shape, since validators are cached per schema.
PUT_SCHEMAS = (
    (CONSUMER_TYPES, consumer_body(CONSUMER_TYPES)),
    (MAPPINGS, consumer_body(MAPPINGS)),
    (CONSUMER_GENERATION, consumer_body(CONSUMER_GENERATION)),
    (ALLOCATIONS_DICT, consumer_body(ALLOCATIONS_DICT, may_be_empty=False)),
    (REQUIRE_PROJECT_USER, _list_form(with_owner=True)),
    (BASE, _list_form(with_owner=False)),
)
POST_SCHEMAS = tuple(
    (since, consumers_body(since, min_consumers=1))
    for since in (CONSUMER_TYPES, MAPPINGS, CONSUMER_GENERATION, POST_ALLOCATIONS)
)


def put_schema(version: Version) -> dict:
    """``PUT /allocations/{consumer}`` at ``version``."""
    return by_version(PUT_SCHEMAS, version)


def post_schema(version: Version) -> dict:
    """``POST /allocations`` (1.13+) at ``version``."""
    return by_version(POST_SCHEMAS, version)


def consumer_uuid(text: str) -> str:
    """The consumer uuid of a path or key in canonical dashed lower-case form."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise errors.BadRequest(f"Malformed consumer_uuid: {text}") from None


@dataclass(frozen=True)
class IncompleteOwner:
    """Project and user given to consumers written before microversion 1.8."""

    project_id: str
    user_id: str


def consumer_allocations(
    version: Version, consumer: str, body: dict, incomplete: IncompleteOwner
) -> ConsumerAllocations:
    """One validated consumer body as the domain's request."""
    allocations = body["allocations"]
    if isinstance(allocations, list):
        # The 1.0 - 1.11 list form; a provider named twice keeps its last entry.
        allocations = {
            entry["resource_provider"]["uuid"]: {"resources": entry["resources"]}
            for entry in allocations
        }
    # The schemas ask for both (1.8+) or for neither.
    project_id: str | None = body.get("project_id")
    user_id: str | None = body.get("user_id")
    if project_id is None or user_id is None:
        project_id, user_id = incomplete.project_id, incomplete.user_id
    claim = ConsumerClaim(
        uuid=consumer,
        project_id=project_id,
        user_id=user_id,
        generation=body.get("consumer_generation"),
        check_generation=version >= CONSUMER_GENERATION,
        consumer_type=body.get("consumer_type") if version >= CONSUMER_TYPES else None,
    )
    return ConsumerAllocations(
        claim,
        {provider: dict(entry["resources"]) for provider, entry in allocations.items()},
    )


def put_request(request: Request, consumer: str, incomplete: IncompleteOwner) -> ConsumerAllocations:
    """``PUT /allocations/{consumer}``: the validated body as a domain request."""
    body = load_body(request, put_schema(request.version))
    return consumer_allocations(request.version, consumer, body, incomplete)


def consumers_requests(
    version: Version, body: dict, incomplete: IncompleteOwner
) -> list[ConsumerAllocations]:
    """A validated ``{CONSUMER: body}`` mapping as domain requests, in body order."""
    return [
        consumer_allocations(version, consumer_uuid(consumer), entry, incomplete)
        for consumer, entry in body.items()
    ]


def post_requests(request: Request, incomplete: IncompleteOwner) -> list[ConsumerAllocations]:
    """``POST /allocations``: every consumer's validated body, in body order."""
    body = load_body(request, post_schema(request.version))
    return consumers_requests(request.version, body, incomplete)
