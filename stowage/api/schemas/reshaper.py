"""Body of ``POST /reshaper`` (1.30+)::

    {"inventories": {RP: {"resource_provider_generation": G,
                          "inventories": {RC: {"total": N, ...}}}},   # at least one RP
     "allocations": {CONSUMER: <a POST /allocations consumer body>}}  # may be {}

The consumer bodies follow ``POST /allocations`` of the same microversion
(``mappings`` from 1.34, required ``consumer_type`` from 1.38).
"""
from __future__ import annotations

from stowage.api.http import Request
from stowage.api.schemas import load_body
from stowage.api.schemas.allocations import (
    UUID_KEY,
    IncompleteOwner,
    consumers_body,
    consumers_requests,
)
from stowage.api.schemas.inventories import REPLACE_ALL
from stowage.api.versions import CONSUMER_TYPES, MAPPINGS, Version
from stowage.domain.allocations import ConsumerAllocations
from stowage.domain.inventories import Inventory
from stowage.domain.reshaper import InventoryReplacement

_INVENTORY_FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


def reshape_body(version: Version) -> dict:
    return {
        "type": "object",
        "properties": {
            "inventories": {
                "type": "object",
                "minProperties": 1,
                "patternProperties": {UUID_KEY: REPLACE_ALL},
                "additionalProperties": False,
            },
            # Nothing may be allocated (yet) of the inventory being moved.
            "allocations": consumers_body(version, min_consumers=0),
        },
        "required": ["inventories", "allocations"],
        "additionalProperties": False,
    }


# One schema per distinct shape, so validators are cached.
_SCHEMAS: dict[tuple[bool, bool], dict] = {}


def _schema(version: Version) -> dict:
    shape = (version >= MAPPINGS, version >= CONSUMER_TYPES)
    if shape not in _SCHEMAS:
        _SCHEMAS[shape] = reshape_body(version)
    return _SCHEMAS[shape]


def _inventory(resource_class: str, fields: dict) -> Inventory:
    settable = {name: fields[name] for name in _INVENTORY_FIELDS if name in fields}
    if "allocation_ratio" in settable:
        settable["allocation_ratio"] = float(settable["allocation_ratio"])
    return Inventory(resource_class=resource_class, **settable)


def reshape_request(
    request: Request, incomplete: IncompleteOwner
) -> tuple[list[InventoryReplacement], list[ConsumerAllocations]]:
    """The validated body as inventory replacements and consumer allocations."""
    body = load_body(request, _schema(request.version))
    replacements = [
        InventoryReplacement(
            provider_uuid=provider,
            generation=entry["resource_provider_generation"],
            inventories=[_inventory(name, fields) for name, fields in entry["inventories"].items()],
        )
        for provider, entry in body["inventories"].items()
    ]
    return replacements, consumers_requests(request.version, body["allocations"], incomplete)
