"""Allocations: what consumers hold of providers' inventory, and the rules for it.

A write replaces, in one transaction, everything the named consumers hold.
For every provider and resource class it touches:

- the provider must have inventory of the class;
- each amount must lie within ``min_unit..max_unit`` and be a multiple of
  ``step_size``;
- the provider's total usage must stay within
  ``(total - reserved) * allocation_ratio``, unless the provider was already
  over and the write does not make it worse.

Every provider the write names gets its generation bumped by compare-and-swap
on the generation read at the start, so two writers racing on one provider
cannot both commit; the loser's whole write is retried server-side. Every
consumer the write changes gets its generation bumped too, and consumers
left with nothing are deleted (see ``stowage.domain.consumers`` for the
consumers upstream keeps without allocations).
"""
from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from stowage import errors
from stowage.domain import consumers as consumer_domain
from stowage.domain.consumers import ConsumerClaim
from stowage.storage import allocations as allocation_storage
from stowage.storage import consumers as consumer_storage
from stowage.storage.allocations import (
    ConsumerAllocationRow,
    InventoryUsage,
    NewAllocation,
    ProviderAllocationRow,
)
from stowage.storage.catalog import resource_class_ids
from stowage.storage.common import bump_revision
from stowage.storage.consumers import ConsumerRow
from stowage.storage.database import Database
from stowage.storage.providers import ProviderRow, find_provider, increment_generation

LOG = logging.getLogger(__name__)

# Leads of the error messages, which differ by endpoint as clients have long seen.
CONFLICT_LEAD = "Inventory and/or allocations changed while attempting to allocate: "
POST_UNKNOWN_CLASS_LEAD = "Unable to allocate inventory "


def put_unknown_class_lead(consumer_uuid: str) -> str:
    return f"Unable to allocate inventory for consumer {consumer_uuid}: "


@dataclass(frozen=True)
class ConsumerAllocations:
    """What one consumer should hold after a write: {provider uuid: {class: amount}}.

    Empty ``allocations`` removes everything the consumer holds.
    """

    claim: ConsumerClaim
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageLeads:
    """How a failed write introduces itself, per endpoint."""

    unknown_class: str
    conflict: str = CONFLICT_LEAD


@dataclass(frozen=True)
class ConsumerHoldings:
    """A consumer (None if unknown) and its allocations, for display."""

    consumer: ConsumerRow | None
    allocations: list[ConsumerAllocationRow]

    @property
    def last_modified(self) -> datetime.datetime | None:
        return _newest(self.allocations)


@dataclass(frozen=True)
class ProviderHoldings:
    """A provider and every allocation against it, for display."""

    provider: ProviderRow
    allocations: list[ProviderAllocationRow]

    @property
    def last_modified(self) -> datetime.datetime | None:
        return _newest(self.allocations)


@dataclass(frozen=True)
class WantedAllocation:
    """One allocation a write asks for, resolved to ids."""

    consumer_id: int
    provider_id: int
    provider_uuid: str
    resource_class_id: int
    resource_class: str
    amount: int


def _newest(rows) -> datetime.datetime | None:
    stamps = [row.updated_at or row.created_at for row in rows]
    stamps = [stamp for stamp in stamps if stamp is not None]
    return max(stamps) if stamps else None


def consumer_holdings(connection: Connection, consumer_uuid: str) -> ConsumerHoldings:
    """What the consumer holds; an unknown consumer simply holds nothing."""
    rows = allocation_storage.allocations_of_consumer(connection, consumer_uuid)
    consumer = consumer_storage.find_consumer(connection, consumer_uuid) if rows else None
    return ConsumerHoldings(consumer, rows)


def provider_holdings(connection: Connection, provider_uuid: str) -> ProviderHoldings:
    """Every allocation against the provider; raises ``ProviderNotFound`` if it does not exist."""
    provider = find_provider(connection, provider_uuid)
    if provider is None:
        raise errors.ProviderNotFound(provider_uuid)
    return ProviderHoldings(provider, allocation_storage.allocations_on_provider(connection, provider.id))


def replace_allocations(
    database: Database,
    requests: list[ConsumerAllocations],
    leads: MessageLeads,
    attempts: int,
) -> None:
    """Atomically give each consumer exactly its requested allocations.

    A lost provider-generation race, or a transaction the database aborted
    (a deadlock, a serialisation or Galera certification failure), rolls
    back and runs the whole write again: ``attempts`` runs in all
    ([placement] allocation_conflict_retry_count), one budget for both, then
    ``AllocationWriteConflict``, which nothing retries again (the API's own
    retry of aborted transactions does not see it).
    """
    for _attempt in range(max(1, attempts)):
        try:
            run_allocation_write(
                database,
                [request.claim for request in requests],
                lambda connection: write_allocations(connection, requests, leads),
            )
            return
        except (ProviderRaceLost, errors.TransactionAborted) as failure:
            LOG.debug("Retrying an allocation write after %s", type(failure).__name__)
            continue
    LOG.warning("Gave up an allocation write after %d attempts", attempts)
    raise errors.AllocationWriteConflict(leads.conflict)


def run_allocation_write(
    database: Database, claims: list[ConsumerClaim], write: Callable[[Connection], None]
) -> None:
    """Run ``write`` in one transaction; if it names a missing provider, keep
    its new consumers all the same (at generation 0), as upstream does: it
    creates them before it looks for providers, and does not remove them."""
    try:
        with database.write() as connection:
            write(connection)
    except errors.AllocationProviderNotFound:
        with database.write() as connection:
            for claim in claims:
                consumer_domain.create_missing_consumer(connection, claim)
            bump_revision(connection)
        raise


class ProviderRaceLost(Exception):
    """A provider generation moved under us; the write is worth retrying.

    Never leaves the domain: ``replace_allocations`` retries on it and the
    reshaper turns it into a 409.
    """


@dataclass
class PreparedWrite:
    """An allocation write whose consumers and providers have been checked.

    ``visited`` are the consumers the write changes: those given allocations
    and those losing some. A consumer given none that holds none is left as
    it is (generation included), as upstream leaves it.
    """

    requests: list[ConsumerAllocations]
    consumers: list[ConsumerRow]
    providers: dict[str, ProviderRow]
    # Providers whose generations move: every one named, and those of the
    # allocations being taken away.
    touched: dict[int, ProviderRow]
    visited: list[ConsumerRow]


def write_allocations(
    connection: Connection, requests: list[ConsumerAllocations], leads: MessageLeads
) -> None:
    """Replace the named consumers' allocations inside the caller's transaction.

    Checks run in upstream's order: consumer generations, then providers
    exist, then resource classes exist, then inventory and capacity. Raises
    ``ProviderRaceLost`` (retryable) if a provider generation moved.
    """
    apply_write(connection, prepare_write(connection, requests), leads)


def prepare_write(connection: Connection, requests: list[ConsumerAllocations]) -> PreparedWrite:
    """Find or create the consumers (checking their generations), then the
    providers; raises ``ConsumerGenerationMismatch`` or
    ``AllocationProviderNotFound``. Providers are read inside the caller's
    transaction, so generations it already bumped (the reshaper) are seen."""
    requests = list({request.claim.uuid: request for request in requests}.values())
    consumers = [consumer_domain.ensure_consumer(connection, request.claim) for request in requests]
    providers: dict[str, ProviderRow] = {}

    def provider(uuid: str) -> ProviderRow:
        if uuid not in providers:
            found = find_provider(connection, uuid)
            if found is None:
                raise errors.AllocationProviderNotFound(uuid)
            providers[uuid] = found
        return providers[uuid]

    touched: dict[int, ProviderRow] = {}
    visited: list[ConsumerRow] = []
    for request, consumer in zip(requests, consumers, strict=False):
        if request.allocations:
            held = [provider(uuid) for uuid in request.allocations]
        else:
            rows = allocation_storage.allocations_of_consumer(connection, request.claim.uuid)
            held = [provider(row.provider_uuid) for row in rows]
        if held:
            visited.append(consumer)
        for found in held:
            touched.setdefault(found.id, found)
    return PreparedWrite(requests, consumers, providers, touched, visited)


def apply_write(connection: Connection, prepared: PreparedWrite, leads: MessageLeads) -> None:
    """Check classes and capacity, then write the prepared allocations and
    move the generations; consumers left with nothing are deleted."""
    wanted = _resolve(connection, prepared.requests, prepared.consumers, prepared.providers, leads)
    provider_ids = [item.provider_id for item in wanted]
    class_ids = [item.resource_class_id for item in wanted]
    previous_usage = allocation_storage.usage_by_provider_and_class(connection, provider_ids, class_ids)
    visited_ids = [consumer.id for consumer in prepared.visited]
    allocation_storage.delete_allocations_of_consumers(connection, visited_ids)
    # Read after the deletion: the usage seen is everyone else's.
    inventory = allocation_storage.inventory_usage(connection, provider_ids, class_ids)
    check_fits(wanted, inventory, previous_usage)
    allocation_storage.insert_allocations(
        connection,
        [
            NewAllocation(item.provider_id, item.consumer_id, item.resource_class_id, item.amount)
            for item in wanted
        ],
    )
    # Ordered by id so that concurrent writers lock rows in the same order.
    for provider_id in sorted(prepared.touched):
        try:
            increment_generation(connection, prepared.touched[provider_id])
        except errors.ConcurrentUpdate:
            raise ProviderRaceLost() from None
    for consumer in sorted(prepared.visited, key=lambda row: row.id):
        consumer_domain.bump_generation(connection, consumer, leads.conflict)
    consumer_storage.delete_consumers_without_allocations(connection, visited_ids)
    bump_revision(connection)


def _resolve(
    connection: Connection,
    requests: list[ConsumerAllocations],
    consumers: list[ConsumerRow],
    providers: dict[str, ProviderRow],
    leads: MessageLeads,
) -> list[WantedAllocation]:
    names = [
        name
        for request in requests
        for amounts in request.allocations.values()
        for name in amounts
    ]
    ids = resource_class_ids(connection, set(names))
    for name in names:
        if name not in ids:
            raise errors.UnknownResourceClassInRequest(name, leads.unknown_class)
    return [
        WantedAllocation(
            consumer.id,
            providers[provider_uuid].id,
            provider_uuid,
            ids[name],
            name,
            amount,
        )
        for request, consumer in zip(requests, consumers, strict=False)
        for provider_uuid, amounts in request.allocations.items()
        for name, amount in amounts.items()
    ]


def check_fits(
    wanted: list[WantedAllocation],
    inventory: dict[tuple[int, int], InventoryUsage],
    previous_usage: dict[tuple[int, int], int],
) -> None:
    """Raise an ``AllocationDoesNotFit`` unless ``wanted`` fits the inventory.

    ``inventory`` maps (provider id, class id) to the inventory and the usage
    of everyone but the consumers being written; ``previous_usage`` is the
    usage before the write, including those consumers. Checks, in order:
    some inventory of the classes on every provider; then per allocation,
    inventory of its class, min_unit/max_unit/step_size, and capacity for
    the sum the write puts on that provider and class.
    """
    if not wanted:
        return
    providers_with_inventory = {provider_id for provider_id, _class_id in inventory}
    missing = list(
        dict.fromkeys(
            item.provider_uuid for item in wanted if item.provider_id not in providers_with_inventory
        )
    )
    if missing:
        classes = list(dict.fromkeys(item.resource_class for item in wanted))
        raise errors.NoInventoryForAllocation(classes, missing)

    requested: dict[tuple[int, int], int] = defaultdict(int)
    for item in wanted:
        requested[(item.provider_id, item.resource_class_id)] += item.amount

    for item in wanted:
        key = (item.provider_id, item.resource_class_id)
        record = inventory.get(key)
        if record is None:
            raise errors.NoInventoryForAllocation([item.resource_class], [item.provider_uuid])
        if record.unit_problem(item.amount) is not None:
            raise errors.AllocationConstraintsViolated(item.resource_class, item.provider_uuid)
        after = record.used + requested[key]
        if after > record.capacity:
            # Over capacity is tolerated only if it was already so and this
            # write does not make it worse (e.g. shrinking an allocation
            # after the inventory shrank).
            before = previous_usage.get(key)
            if before is None or after > before:
                raise errors.CapacityExceeded(item.resource_class, item.provider_uuid)


def delete_consumer_allocations(connection: Connection, consumer_uuid: str) -> None:
    """Remove everything the consumer holds, and the consumer.

    Provider generations are left alone, as upstream does: freeing resources
    can never over-commit. Raises ``NotFound`` if the consumer holds nothing.
    """
    consumer = consumer_storage.find_consumer(connection, consumer_uuid)
    if consumer is None or not allocation_storage.delete_allocations_of_consumers(
        connection, [consumer.id]
    ):
        raise errors.NotFound(f"No allocations for consumer '{consumer_uuid}'")
    consumer_storage.delete_consumers_without_allocations(connection, [consumer.id])
    bump_revision(connection)
