"""Inventory operations: what a provider offers of each resource class.

Rules (upstream Placement's):

* every change bumps the provider generation, even one that changes nothing
  (replacing an empty inventory with an empty one);
* capacity is ``rules.capacity``, ``int((total - reserved) * ratio)``; it must be
  positive, or from 1.26 at least zero (``reserved == total`` is allowed);
* an inventory cannot be removed while allocations consume it;
* shrinking an inventory below what is already allocated is allowed: the
  provider is then over capacity, which is only logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection

from stowage import errors, rules
from stowage.storage import catalog
from stowage.storage import inventories as storage
from stowage.storage.inventories import InventoryRow, InventoryValues
from stowage.storage.providers import ProviderRow, get_provider, increment_generation

LOG = logging.getLogger(__name__)

# The largest value of an integer inventory field (a signed 32-bit column).
MAX_INT = 0x7FFFFFFF
# The largest allocation ratio (a single-precision float column upstream).
MAX_ALLOCATION_RATIO = 3.40282e38


@dataclass(frozen=True)
class Inventory:
    """An inventory as a client sets it; unset fields take upstream's defaults."""

    resource_class: str
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        return rules.capacity(self.total, self.reserved, self.allocation_ratio)

    def values(self) -> InventoryValues:
        return InventoryValues(
            total=self.total,
            reserved=self.reserved,
            min_unit=self.min_unit,
            max_unit=self.max_unit,
            step_size=self.step_size,
            allocation_ratio=float(self.allocation_ratio),
        )


@dataclass(frozen=True)
class ProviderInventories:
    """A provider's generation and its stored inventories, by resource class id."""

    generation: int
    inventories: list[InventoryRow]


def check_capacity(
    provider_uuid: str,
    inventories: list[Inventory],
    reserved_may_equal_total: bool,
    creating: bool = False,
) -> None:
    """Raise ``InvalidInventoryCapacity`` for the first inventory left without capacity.

    ``reserved_may_equal_total`` is microversion 1.26's relaxation: zero
    capacity is then allowed, only negative capacity is not.
    """
    for inventory in inventories:
        capacity = inventory.capacity
        if capacity < 0 or (capacity == 0 and not reserved_may_equal_total):
            raise errors.InvalidInventoryCapacity(
                provider_uuid, inventory.resource_class, reserved_may_equal_total, creating
            )


def list_inventories(connection: Connection, provider_uuid: str) -> ProviderInventories:
    """Raises ``NotFound`` when there is no such provider."""
    provider = get_provider(connection, provider_uuid)
    return ProviderInventories(provider.generation, storage.provider_inventories(connection, provider.id))


def show_inventory(
    connection: Connection, provider_uuid: str, resource_class: str
) -> tuple[int, InventoryRow]:
    """The provider generation and its inventory of ``resource_class``.

    Raises ``NotFound`` for a missing provider and ``InventoryNotFound`` when
    it has no such inventory (also when the class does not exist).
    """
    provider = get_provider(connection, provider_uuid)
    for row in storage.provider_inventories(connection, provider.id):
        if row.resource_class == resource_class:
            return provider.generation, row
    raise errors.InventoryNotFound(provider_uuid, resource_class)


def provider_to_write(connection: Connection, provider_uuid: str) -> ProviderRow:
    """The provider an inventory write names; raises ``ProviderNotFound``.

    Upstream looks it up before it reads the body, so a missing provider is
    a 404 whatever the body holds.
    """
    return get_provider(connection, provider_uuid)


def create_inventory(
    connection: Connection, provider: ProviderRow, inventory: Inventory, reserved_may_equal_total: bool
) -> int:
    """Add one inventory; returns the new provider generation.

    Raises ``InvalidInventoryCapacity``, ``UnknownInventoryClass``,
    ``InventoryExists`` and, if another writer changed the provider
    meanwhile, ``ConcurrentUpdate``.
    """
    provider_uuid = provider.uuid
    check_capacity(provider_uuid, [inventory], reserved_may_equal_total, creating=True)
    class_id = catalog.resource_class_ids(connection, [inventory.resource_class]).get(
        inventory.resource_class
    )
    if class_id is None:
        raise errors.UnknownInventoryClass(provider_uuid, inventory.resource_class, replacing=False)
    if not storage.insert_inventory(connection, provider.id, class_id, inventory.values()):
        raise errors.InventoryExists(provider_uuid, inventory.resource_class)
    return increment_generation(connection, provider)


def update_inventory(
    connection: Connection,
    provider: ProviderRow,
    generation: int,
    inventory: Inventory,
    reserved_may_equal_total: bool,
) -> int:
    """Overwrite the provider's inventory of one class; returns the new generation.

    Raises ``ConcurrentUpdate`` for a stale ``generation``,
    ``InvalidInventoryCapacity``, ``ResourceClassNotFound`` for an unknown
    class and ``InventoryToUpdateMissing`` when the provider has no inventory
    of the class.
    """
    provider_uuid = provider.uuid
    _check_generation(provider, generation)
    check_capacity(provider_uuid, [inventory], reserved_may_equal_total)
    class_id = catalog.resource_class_ids(connection, [inventory.resource_class]).get(
        inventory.resource_class
    )
    if class_id is None:
        raise errors.ResourceClassNotFound(inventory.resource_class)
    if not storage.update_inventory(connection, provider.id, class_id, inventory.values()):
        raise errors.InventoryToUpdateMissing(provider_uuid, inventory.resource_class)
    _warn_if_over_capacity(connection, provider, {class_id: inventory})
    return increment_generation(connection, provider)


def replace_inventories(
    connection: Connection,
    provider: ProviderRow,
    generation: int,
    inventories: list[Inventory],
    reserved_may_equal_total: bool,
) -> int:
    """Make ``inventories`` the provider's whole inventory; returns the new generation.

    Raises ``ConcurrentUpdate`` for a stale ``generation``, then as
    ``set_inventories``.
    """
    _check_generation(provider, generation)
    check_capacity(provider.uuid, inventories, reserved_may_equal_total)
    return set_inventories(connection, provider, inventories, in_use_lead="update conflict: ")


def delete_all_inventories(connection: Connection, provider_uuid: str) -> int:
    """Remove every inventory of the provider; returns the new generation.

    Raises ``NotFound`` and ``ClassesInUse``.
    """
    provider = get_provider(connection, provider_uuid)
    return set_inventories(connection, provider, [])


def delete_inventory(connection: Connection, provider_uuid: str, resource_class: str) -> int:
    """Remove the provider's inventory of one class; returns the new generation.

    Raises ``NotFound``, ``InventoryNotFound`` and ``ClassesInUse`` (with
    upstream's ``placement.concurrent_update`` code).
    """
    provider = get_provider(connection, provider_uuid)
    class_id = catalog.resource_class_ids(connection, [resource_class]).get(resource_class)
    if class_id is None:
        raise errors.InventoryNotFound(provider_uuid, resource_class, deleting=True, class_exists=False)
    if storage.allocated_class_ids(connection, provider.id, [class_id]):
        raise errors.ClassesInUse(
            provider_uuid,
            [resource_class],
            lead=f"Unable to delete inventory of class {resource_class}: ",
            code=errors.CONCURRENT_UPDATE,
        )
    if not storage.delete_inventories(connection, provider.id, [class_id]):
        raise errors.InventoryNotFound(provider_uuid, resource_class, deleting=True)
    return increment_generation(connection, provider)


def set_inventories(
    connection: Connection,
    provider: ProviderRow,
    inventories: list[Inventory],
    in_use_lead: str = "",
) -> int:
    """Add, update and delete so that the provider has exactly ``inventories``.

    Capacity is the caller's to check. Bumps the generation (compare-and-swap
    on ``provider.generation``) and returns the new one. Raises
    ``UnknownInventoryClass`` and ``ClassesInUse`` (message led by
    ``in_use_lead``). The reshaper uses this too.
    """
    wanted_names = [inventory.resource_class for inventory in inventories]
    class_ids = catalog.resource_class_ids(connection, wanted_names)
    for name in wanted_names:
        if name not in class_ids:
            raise errors.UnknownInventoryClass(provider.uuid, name, replacing=True)
    wanted = {class_ids[inventory.resource_class]: inventory for inventory in inventories}
    current = {row.resource_class_id: row for row in storage.provider_inventories(connection, provider.id)}

    to_delete = [class_id for class_id in current if class_id not in wanted]
    in_use = storage.allocated_class_ids(connection, provider.id, to_delete)
    if in_use:
        raise errors.ClassesInUse(
            provider.uuid, [current[class_id].resource_class for class_id in in_use], lead=in_use_lead
        )
    storage.delete_inventories(connection, provider.id, to_delete)
    for class_id, inventory in wanted.items():
        if class_id in current:
            storage.update_inventory(connection, provider.id, class_id, inventory.values())
        elif not storage.insert_inventory(connection, provider.id, class_id, inventory.values()):
            # Only a concurrent writer can have added it since we looked.
            raise errors.ConcurrentUpdate(
                f"update conflict: Inventory for '{inventory.resource_class}' on resource "
                f"provider '{provider.uuid}' was added by another request."
            )
    _warn_if_over_capacity(
        connection, provider, {class_id: wanted[class_id] for class_id in wanted if class_id in current}
    )
    return increment_generation(connection, provider)


def _check_generation(provider: ProviderRow, generation: int) -> None:
    """Raise ``ConcurrentUpdate`` unless ``generation`` is the provider's current one."""
    if provider.generation != generation:
        raise errors.ConcurrentUpdate("resource provider generation conflict")


def _warn_if_over_capacity(
    connection: Connection, provider: ProviderRow, updated: dict[int, Inventory]
) -> None:
    """Log the classes whose allocations now exceed the updated capacity (allowed)."""
    used = storage.used_by_class(connection, provider.id, list(updated))
    for class_id, amount in used.items():
        inventory = updated[class_id]
        if amount > inventory.capacity:
            LOG.warning(
                "Resource provider %s is now over-capacity for %s",
                provider.uuid,
                inventory.resource_class,
            )
