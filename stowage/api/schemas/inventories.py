"""Bodies of the inventory endpoints, and the typed inventories they become.

Limits are upstream's: integers fit a signed 32-bit column, ``total``,
``min_unit``, ``max_unit`` and ``step_size`` are at least 1, ``reserved`` at
least 0, and ``allocation_ratio`` at most the largest single-precision float.
Capacity rules (reserved against total) are the domain's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stowage.api.http import Request
from stowage.api.schemas import load_body
from stowage.domain.inventories import MAX_ALLOCATION_RATIO, MAX_INT, Inventory

# Resource class names as they may appear in inventory bodies.
RESOURCE_CLASS_PATTERN = "^[A-Z0-9_]+$"

_FIELDS = {
    "total": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "reserved": {"type": "integer", "maximum": MAX_INT, "minimum": 0},
    "min_unit": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "max_unit": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "step_size": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "allocation_ratio": {"type": "number", "maximum": MAX_ALLOCATION_RATIO},
}
_GENERATION = {"type": "integer"}

# PUT /resource_providers/{uuid}/inventories/{resource_class}
UPDATE_ONE = {
    "type": "object",
    "properties": {"resource_provider_generation": _GENERATION, **_FIELDS},
    "required": ["total", "resource_provider_generation"],
    "additionalProperties": False,
}

# POST /resource_providers/{uuid}/inventories: the class in the body; a
# generation is accepted but not checked, as upstream.
CREATE = {
    "type": "object",
    "properties": {
        "resource_class": {"type": "string", "pattern": RESOURCE_CLASS_PATTERN},
        "resource_provider_generation": _GENERATION,
        **_FIELDS,
    },
    "required": ["total", "resource_class"],
    "additionalProperties": False,
}

# One entry of PUT /resource_providers/{uuid}/inventories.
_ENTRY = {
    "type": "object",
    "properties": {"resource_provider_generation": _GENERATION, **_FIELDS},
    "required": ["total"],
    "additionalProperties": False,
}

# PUT /resource_providers/{uuid}/inventories: every inventory, by class.
REPLACE_ALL = {
    "type": "object",
    "properties": {
        "resource_provider_generation": _GENERATION,
        "inventories": {
            "type": "object",
            "patternProperties": {RESOURCE_CLASS_PATTERN: _ENTRY},
            # Upstream leaves other names unchecked and then fails on them as
            # unknown classes; checking their shape too keeps that outcome for
            # well-formed entries and turns malformed ones into a clean 400.
            "additionalProperties": _ENTRY,
        },
    },
    "required": ["resource_provider_generation", "inventories"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class InventoryUpdate:
    """One inventory plus the provider generation the client last saw."""

    generation: int
    inventory: Inventory


@dataclass(frozen=True)
class InventoriesReplacement:
    """A provider's whole inventory plus the generation the client last saw."""

    generation: int
    inventories: list[Inventory]


def _inventory(resource_class: str, fields: dict[str, Any]) -> Inventory:
    settable = {name: fields[name] for name in _FIELDS if name in fields}
    for name in ("total", "reserved", "min_unit", "max_unit", "step_size"):
        if name in settable:
            settable[name] = int(settable[name])
    if "allocation_ratio" in settable:
        settable["allocation_ratio"] = float(settable["allocation_ratio"])
    return Inventory(resource_class=resource_class, **settable)


def inventory_to_create(request: Request) -> Inventory:
    body = load_body(request, CREATE)
    return _inventory(body["resource_class"], body)


def inventory_to_update(request: Request, resource_class: str) -> InventoryUpdate:
    body = load_body(request, UPDATE_ONE)
    return InventoryUpdate(body["resource_provider_generation"], _inventory(resource_class, body))


def inventories_to_set(request: Request) -> InventoriesReplacement:
    body = load_body(request, REPLACE_ALL)
    return InventoriesReplacement(
        body["resource_provider_generation"],
        [_inventory(name, fields) for name, fields in body["inventories"].items()],
    )
