"""Body of ``POST /reshaper`` (1.30+)::

    {"inventories": {RP: {"resource_provider_generation": G,
                          "inventories": {RC: {"total": N, ...}}}},   # at least one RP
     "allocations": {CONSUMER: <a POST /allocations consumer body>}}  # may be {}

The consumer bodies follow ``POST /allocations`` of the same microversion
(``mappings`` from 1.34, required ``consumer_type`` from 1.38).
"""
from __future__ import annotations

from stowage.api.http import Request
from stowage.api.schemas import by_version, load_body
from stowage.api.schemas.allocations import (
    UUID_KEY,
    IncompleteOwner,
    consumers_body,
    consumers_requests,
)
from stowage.api.schemas.inventories import REPLACE_ALL, inventories_from
from stowage.api.versions import CONSUMER_TYPES, MAPPINGS, RESHAPER, Version
from stowage.domain.allocations import ConsumerAllocations
from stowage.domain.reshaper import InventoryReplacement


def reshape_body(version: Version) -> dict:
    return {
        "type": "object",
        "properties": {
            "inventories": {
                "type": "object",
                "patternProperties": {UUID_KEY: REPLACE_ALL},
                # At least one provider: a reshape moves inventory.
                "minProperties": 1,
                "additionalProperties": False,
            },
            # Nothing may be allocated (yet) of the inventory being moved.
            "allocations": consumers_body(version, min_consumers=0),
        },
        "required": ["inventories", "allocations"],
        "additionalProperties": False,
    }


# Newest first; one object per shape, since validators are cached per schema.
SCHEMAS = tuple((since, reshape_body(since)) for since in (CONSUMER_TYPES, MAPPINGS, RESHAPER))


def body_schema(version: Version) -> dict:
    return by_version(SCHEMAS, version)


def reshape_request(
    request: Request, incomplete: IncompleteOwner
) -> tuple[list[InventoryReplacement], list[ConsumerAllocations]]:
    """The validated body as inventory replacements and consumer allocations."""
    body = load_body(request, body_schema(request.version))
    replacements = [
        InventoryReplacement(
            provider_uuid=provider,
            generation=entry["resource_provider_generation"],
            inventories=inventories_from(entry["inventories"]),
        )
        for provider, entry in body["inventories"].items()
    ]
    return replacements, consumers_requests(request.version, body["allocations"], incomplete)
