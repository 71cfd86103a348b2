"""Bodies of the inventory endpoints, and the typed inventories they become.

Limits are upstream's: integers fit a signed 32-bit column, ``total``,
``min_unit``, ``max_unit`` and ``step_size`` are at least 1, ``reserved`` at
least 0, and ``allocation_ratio`` at most the largest single-precision float.
Capacity rules (reserved against total) are the domain's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stowage.api.http import Request
from stowage.api.schemas import load_body, validate
from stowage.domain.inventories import MAX_ALLOCATION_RATIO, MAX_INT, Inventory

# Resource class names as they may appear in inventory bodies.
RESOURCE_CLASS_PATTERN = "^[A-Z0-9_]+$"

_GENERATION = {"type": "integer"}
_FIELDS = {
    "total": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "reserved": {"type": "integer", "maximum": MAX_INT, "minimum": 0},
    "min_unit": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "max_unit": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "step_size": {"type": "integer", "maximum": MAX_INT, "minimum": 1},
    "allocation_ratio": {"type": "number", "maximum": MAX_ALLOCATION_RATIO},
}


def _inventory_body(required: list[str], **extra: dict) -> dict:
    """One inventory's fields (a generation first, ``extra`` last)."""
    return {
        "type": "object",
        "properties": {"resource_provider_generation": _GENERATION, **_FIELDS, **extra},
        "required": required,
        "additionalProperties": False,
    }


# PUT /resource_providers/{uuid}/inventories/{resource_class}
UPDATE_ONE = _inventory_body(["total", "resource_provider_generation"])

# POST /resource_providers/{uuid}/inventories: the class in the body; a
# generation is accepted but not checked, as upstream.
CREATE = _inventory_body(
    ["total", "resource_class"],
    resource_class={"type": "string", "pattern": RESOURCE_CLASS_PATTERN},
)

# One entry of PUT /resource_providers/{uuid}/inventories.
ENTRY = _inventory_body(["total"])

# PUT /resource_providers/{uuid}/inventories: every inventory, by class. As
# upstream, entries under names that are no class name are left unchecked
# (see ``inventories_from``).
REPLACE_ALL = {
    "type": "object",
    "properties": {
        "resource_provider_generation": _GENERATION,
        "inventories": {"type": "object", "patternProperties": {RESOURCE_CLASS_PATTERN: ENTRY}},
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float))


def _unchecked_inventory(resource_class: str, fields: object) -> Inventory:
    """An entry the schema left unchecked, for a name no class can have.

    Upstream takes such an entry as it is, uses only its capacity (total,
    reserved, allocation ratio) and then finds the class unknown; so the
    domain gets just those. An entry upstream cannot take that far (not an
    object, or a capacity that is no number: a 500 there) is checked as a
    named entry would be, for a plain 400.
    """
    capacity = ("total", "reserved", "allocation_ratio")
    if (
        isinstance(fields, dict)
        and "total" in fields
        and all(_is_number(fields[name]) for name in capacity if name in fields)
    ):
        return Inventory(
            resource_class=resource_class,
            total=fields["total"],
            reserved=fields.get("reserved", 0),
            allocation_ratio=fields.get("allocation_ratio", 1.0),
        )
    return _inventory(resource_class, validate(fields, ENTRY))


def inventories_from(entries: dict[str, Any]) -> list[Inventory]:
    """The ``inventories`` mapping of a validated body, in body order.

    Names are matched as jsonschema matches ``patternProperties`` (a search).
    """
    return [
        _inventory(name, fields)
        if re.search(RESOURCE_CLASS_PATTERN, name)
        else _unchecked_inventory(name, fields)
        for name, fields in entries.items()
    ]


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
        inventories_from(body["inventories"]),
    )
