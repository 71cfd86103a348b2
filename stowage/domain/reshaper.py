"""Reshape: move inventory and the allocations on it between providers at once.

Typically a class of inventory moves from a compute node to a new child
provider, and every consumer's allocations of it move along. It all happens
in one transaction, in three steps, once the providers and consumers named
are checked:

1. interim inventories: each provider gets the union of its current and its
   new inventories, so nothing in use is removed yet and everything new
   exists (capacity may transiently be below usage: that is allowed);
2. allocations: every named consumer's allocations are replaced, with the
   usual capacity rules checked against the interim inventories;
3. final inventories: each provider gets exactly its new inventories, which
   fails if allocations still consume something removed.

Each step bumps the generations of the providers it touches, as upstream does,
by compare-and-swap from the generation the client sent for each inventory
provider: a write that moved one after the reshape checked it makes it a 409.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Connection

from stowage import errors
from stowage.domain import allocations as allocation_domain
from stowage.domain.allocations import ConsumerAllocations, MessageLeads
from stowage.domain.inventories import Inventory, check_capacity, set_inventories
from stowage.storage import catalog
from stowage.storage import inventories as inventory_storage
from stowage.storage.database import Database
from stowage.storage.providers import ProviderRow, find_provider

LEADS = MessageLeads(unknown_class="malformed reshaper data: ", conflict="update conflict: ")


@dataclass(frozen=True)
class InventoryReplacement:
    """A provider's complete new inventory and the generation the client last saw."""

    provider_uuid: str
    generation: int
    inventories: list[Inventory]


def reshape(
    database: Database,
    replacements: list[InventoryReplacement],
    allocations: list[ConsumerAllocations],
) -> None:
    """Apply ``replacements`` and ``allocations`` in one transaction.

    Raises ``ReshapeProviderNotFound`` and ``ReshapeGenerationMismatch`` for
    the inventory providers, then what ``prepare_write`` raises (consumer
    generations, allocation providers), ``UnknownResourceClassInRequest``,
    what ``apply_write`` raises, ``ClassesInUse`` when removed inventory is
    still allocated, and ``AllocationWriteConflict`` on a lost race (a
    generation that moved after the checks, even one the client sent).
    """
    allocation_domain.run_allocation_write(
        database,
        [request.claim for request in allocations],
        lambda connection: _reshape(connection, replacements, allocations),
    )


def _reshape(
    connection: Connection,
    replacements: list[InventoryReplacement],
    allocations: list[ConsumerAllocations],
) -> None:
    # Each inventory provider with the generation this transaction expects
    # of it, starting from the one the client sent: the first
    # compare-and-swap on it starts from there, so a write committed after
    # the check below (a claim while the consumers are created) makes the
    # reshape a 409 instead of being built upon. A swap that succeeds
    # row-locks the provider until commit, so the capacity checks see what
    # the client saw plus this reshape's own changes.
    providers: dict[int, ProviderRow] = {}
    provider_ids: list[int] = []
    for replacement in replacements:
        provider = find_provider(connection, replacement.provider_uuid)
        if provider is None:
            raise errors.ReshapeProviderNotFound(replacement.provider_uuid)
        if provider.generation != replacement.generation:
            raise errors.ReshapeGenerationMismatch(
                replacement.provider_uuid, provider.generation, replacement.generation
            )
        # Microversion 1.30+ always allows reserved == total (1.26's rule).
        check_capacity(provider.uuid, replacement.inventories, reserved_may_equal_total=True)
        providers[provider.id] = provider
        provider_ids.append(provider.id)
    prepared = allocation_domain.prepare_write(connection, allocations)
    names = [inventory.resource_class for replacement in replacements for inventory in replacement.inventories]
    known = catalog.resource_class_ids(connection, set(names))
    for name in names:
        if name not in known:
            raise errors.UnknownResourceClassInRequest(name, LEADS.unknown_class)

    try:
        for replacement, provider_id in zip(replacements, provider_ids, strict=True):
            # An empty replacement would only repeat the current inventory.
            if replacement.inventories:
                provider = providers[provider_id]
                generation = set_inventories(
                    connection, provider, _union(connection, provider, replacement.inventories)
                )
                providers[provider_id] = replace(provider, generation=generation)

        prepared = _with_generations(prepared, providers)
        allocation_domain.apply_write(connection, prepared, LEADS)
        # apply_write bumped each provider it touched once.
        for provider_id, provider in prepared.touched.items():
            if provider_id in providers:
                providers[provider_id] = replace(provider, generation=provider.generation + 1)

        for replacement, provider_id in zip(replacements, provider_ids, strict=True):
            set_inventories(
                connection, providers[provider_id], replacement.inventories, in_use_lead=LEADS.conflict
            )
    except (allocation_domain.ProviderRaceLost, errors.ProviderGenerationMoved):
        raise errors.AllocationWriteConflict(LEADS.conflict) from None


def _with_generations(
    prepared: allocation_domain.PreparedWrite, providers: dict[int, ProviderRow]
) -> allocation_domain.PreparedWrite:
    """``prepared`` with the inventory providers (``providers``, by id) as the
    reshape left them, with the generations it expects; the others stay as
    ``prepare_write`` read them."""
    merged = {uuid: providers.get(provider.id, provider) for uuid, provider in prepared.providers.items()}
    touched = {provider.id: provider for provider in merged.values() if provider.id in prepared.touched}
    return replace(prepared, providers=merged, touched=touched)


def _union(connection: Connection, provider: ProviderRow, new: list[Inventory]) -> list[Inventory]:
    """The provider's current inventories, overridden and extended by ``new``."""
    merged = {
        row.resource_class: Inventory(
            resource_class=row.resource_class,
            total=row.total,
            reserved=row.reserved,
            min_unit=row.min_unit,
            max_unit=row.max_unit,
            step_size=row.step_size,
            allocation_ratio=row.allocation_ratio,
        )
        for row in inventory_storage.provider_inventories(connection, provider.id)
    }
    merged.update({inventory.resource_class: inventory for inventory in new})
    return list(merged.values())
