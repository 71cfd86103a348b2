"""Handlers for /resource_providers/{uuid}/inventories[/{resource_class}]."""
from __future__ import annotations

import datetime

from stowage.api import policy
from stowage.api import versions as v
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas import inventories as schemas
from stowage.domain import inventories
from stowage.domain.inventories import Inventory
from stowage.storage.inventories import InventoryRow

_FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


def serialize_inventory(inventory: Inventory | InventoryRow) -> dict:
    """One inventory's fields::

    {"total": 2048, "reserved": 512, "min_unit": 10, "max_unit": 1024,
     "step_size": 10, "allocation_ratio": 1.0}
    """
    body = {name: getattr(inventory, name) for name in _FIELDS}
    body["allocation_ratio"] = float(body["allocation_ratio"])
    return body


def serialize_one(inventory: Inventory | InventoryRow, generation: int) -> dict:
    """One inventory with the provider generation::

    {"resource_provider_generation": 1, "total": 2048, "reserved": 512, ...}
    """
    return {"resource_provider_generation": generation, **serialize_inventory(inventory)}


def serialize_all(inventories_: list[Inventory] | list[InventoryRow], generation: int) -> dict:
    """Every inventory of a provider, by resource class::

    {"resource_provider_generation": 5,
     "inventories": {"DISK_GB": {"total": 1024, ...}, "VCPU": {...}}}
    """
    return {
        "resource_provider_generation": generation,
        "inventories": {
            inventory.resource_class: serialize_inventory(inventory) for inventory in inventories_
        },
    }


def _cache_headers(
    request: Request, response: Response, when: datetime.datetime | None, now_if_unknown: bool = True
) -> Response:
    """1.15's headers; an inventory just written was modified now."""
    return response.with_cache_headers(request.version, [when], now_if_unknown)


def _reserved_may_equal_total(request: Request) -> bool:
    return request.version >= v.RESERVED_EQUALS_TOTAL


def list_inventories(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/inventories."""
    services.authorize(request, policy.INVENTORIES_LIST)
    with services.database.read() as connection:
        found = inventories.list_inventories(connection, request.route_args["uuid"])
    stamps = [row.last_modified for row in found.inventories if row.last_modified]
    response = Response(body=serialize_all(found.inventories, found.generation))
    # An empty list has no last-modified (as upstream).
    return _cache_headers(
        request, response, max(stamps) if stamps else None, now_if_unknown=bool(found.inventories)
    )


def create_inventory(request: Request, services) -> Response:
    """POST /resource_providers/{uuid}/inventories: 201, a location and the inventory."""
    services.authorize(request, policy.INVENTORIES_CREATE)
    uuid = request.route_args["uuid"]
    with services.database.write() as connection:
        provider = inventories.provider_to_write(connection, uuid)
        inventory = schemas.inventory_to_create(request)
        generation = inventories.create_inventory(
            connection, provider, inventory, _reserved_may_equal_total(request)
        )
    location = request.absolute_url(f"/resource_providers/{uuid}/inventories/{inventory.resource_class}")
    response = Response(
        status=201, body=serialize_one(inventory, generation), headers=[("location", location)]
    )
    return _cache_headers(request, response, None)


def replace_inventories(request: Request, services) -> Response:
    """PUT /resource_providers/{uuid}/inventories: the provider's whole inventory."""
    services.authorize(request, policy.INVENTORIES_UPDATE)
    with services.database.write() as connection:
        provider = inventories.provider_to_write(connection, request.route_args["uuid"])
        replacement = schemas.inventories_to_set(request)
        generation = inventories.replace_inventories(
            connection,
            provider,
            replacement.generation,
            replacement.inventories,
            _reserved_may_equal_total(request),
        )
    body = serialize_all(replacement.inventories, generation)
    # Written now, unless nothing was: an empty list has no last-modified.
    return _cache_headers(
        request, Response(body=body), None, now_if_unknown=bool(replacement.inventories)
    )


def delete_inventories(request: Request, services) -> Response:
    """DELETE /resource_providers/{uuid}/inventories (1.5+; 405 before, as upstream)."""
    services.authorize(request, policy.INVENTORIES_DELETE)
    with services.database.write() as connection:
        inventories.delete_all_inventories(connection, request.route_args["uuid"])
    return no_content()


def show_inventory(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/inventories/{resource_class}."""
    services.authorize(request, policy.INVENTORIES_SHOW)
    with services.database.read() as connection:
        generation, row = inventories.show_inventory(
            connection, request.route_args["uuid"], request.route_args["resource_class"]
        )
    return _cache_headers(request, Response(body=serialize_one(row, generation)), row.last_modified)


def update_inventory(request: Request, services) -> Response:
    """PUT /resource_providers/{uuid}/inventories/{resource_class}."""
    services.authorize(request, policy.INVENTORIES_UPDATE)
    with services.database.write() as connection:
        provider = inventories.provider_to_write(connection, request.route_args["uuid"])
        update = schemas.inventory_to_update(request, request.route_args["resource_class"])
        generation = inventories.update_inventory(
            connection,
            provider,
            update.generation,
            update.inventory,
            _reserved_may_equal_total(request),
        )
    return _cache_headers(request, Response(body=serialize_one(update.inventory, generation)), None)


def delete_inventory(request: Request, services) -> Response:
    """DELETE /resource_providers/{uuid}/inventories/{resource_class}."""
    services.authorize(request, policy.INVENTORIES_DELETE)
    with services.database.write() as connection:
        inventories.delete_inventory(
            connection, request.route_args["uuid"], request.route_args["resource_class"]
        )
    return no_content()
