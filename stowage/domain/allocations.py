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
from stowage.storage.consumers import ConsumerRow
from stowage.storage.database import Database
from stowage.storage.providers import ProviderRow, find_provider, find_providers, increment_generation

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
    on_retry: Callable[[], None] | None = None,
) -> None:
    """Atomically give each consumer exactly its requested allocations.

    A lost provider-generation race, or a transaction the database aborted
    (a deadlock, a serialisation or Galera certification failure), rolls
    back and runs the whole write again: ``attempts`` runs in all
    ([placement] allocation_conflict_retry_count), one budget for both, then
    ``AllocationWriteConflict``, which nothing retries again (the API's own
    retry of aborted transactions does not see it). ``on_retry`` is called
    before each run again (the API counts them in its metrics).
    """
    for attempt in range(max(1, attempts)):
        try:
            run_allocation_write(
                database,
                [request.claim for request in requests],
                lambda connection: write_allocations(connection, requests, leads),
            )
            return
        except (ProviderRaceLost, errors.TransactionAborted) as failure:
            LOG.debug("Retrying an allocation write after %s", type(failure).__name__)
            if on_retry is not None and attempt + 1 < attempts:
                on_retry()
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
    it is (generation included), as upstream leaves it. ``created`` are the
    ids of consumers this write inserted: they hold nothing yet and already
    have their final generation.
    """

    requests: list[ConsumerAllocations]
    consumers: list[ConsumerRow]
    providers: dict[str, ProviderRow]
    # Providers whose generations move: every one named, and those of the
    # allocations being taken away.
    touched: dict[int, ProviderRow]
    visited: list[ConsumerRow]
    created: frozenset[int] = frozenset()


def write_allocations(
    connection: Connection, requests: list[ConsumerAllocations], leads: MessageLeads
) -> None:
    """Replace the named consumers' allocations inside the caller's transaction.

    Checks run in upstream's order: consumer generations, then providers
    exist, then resource classes exist, then inventory and capacity. Raises
    ``ProviderRaceLost`` (retryable) if a provider generation moved, and
    ``AllocationTargetGone`` (retryable) if a provider was deleted.
    """
    apply_write(connection, prepare_write(connection, requests), leads)


def prepare_write(connection: Connection, requests: list[ConsumerAllocations]) -> PreparedWrite:
    """Find or create the consumers (checking their generations), then the
    providers; raises ``ConsumerGenerationMismatch`` or
    ``AllocationProviderNotFound``. Providers are read inside the caller's
    transaction, so generations it already bumped (the reshaper) are seen."""
    requests = list({request.claim.uuid: request for request in requests}.values())
    consumers: list[ConsumerRow] = []
    created: set[int] = set()
    for request in requests:
        consumer, new = consumer_domain.ensure_consumer(
            connection, request.claim, gets_allocations=bool(request.allocations)
        )
        consumers.append(consumer)
        if new:
            created.add(consumer.id)
    # Per request, the providers whose generations it moves: those it
    # names, or, when it empties a consumer, those the consumer holds.
    held: list[list[str]] = []
    for request, consumer in zip(requests, consumers, strict=True):
        if request.allocations:
            held.append(list(request.allocations))
        elif consumer.id in created:
            held.append([])
        else:
            rows = allocation_storage.allocations_of_consumer(connection, request.claim.uuid)
            held.append(list(dict.fromkeys(row.provider_uuid for row in rows)))
    providers = find_providers(connection, {uuid for uuids in held for uuid in uuids})
    touched: dict[int, ProviderRow] = {}
    visited: list[ConsumerRow] = []
    for uuids, consumer in zip(held, consumers, strict=True):
        for uuid in uuids:
            if uuid not in providers:
                raise errors.AllocationProviderNotFound(uuid)
            touched.setdefault(providers[uuid].id, providers[uuid])
        if uuids:
            visited.append(consumer)
    return PreparedWrite(requests, consumers, providers, touched, visited, frozenset(created))


def apply_write(connection: Connection, prepared: PreparedWrite, leads: MessageLeads) -> None:
    """Check classes and capacity, then move the consumers' generations,
    write the prepared allocations and move the providers' generations;
    consumers left with nothing are deleted.

    One read serves every check (``inventory_usage``); a consumer this
    write created holds nothing to delete and needs no generation bump.
    """
    names = list(dict.fromkeys(
        name
        for request in prepared.requests
        for amounts in request.allocations.values()
        for name in amounts
    ))
    earlier = [consumer.id for consumer in prepared.visited if consumer.id not in prepared.created]
    inventory = allocation_storage.inventory_usage(
        connection, [provider.id for provider in prepared.providers.values()], names, earlier
    )
    wanted = _resolve(connection, names, inventory, prepared, leads)
    check_fits(wanted, inventory)
    # Consumer generations move before any allocation row, as DELETE
    # /allocations locks the consumer first: a consumer deleted since it
    # was read fails its compare-and-swap (ConsumerGenerationConflict)
    # rather than the new rows their foreign key, and a delete waiting on
    # the row sees what this write left. Provider generations move last,
    # as before, so that claims of one provider hold its row no longer
    # than they must; a provider deleted meanwhile makes the insert
    # ``AllocationTargetGone``, a retry that finds it missing. Each set
    # in id order, so that concurrent writers lock rows in the same order.
    for consumer in sorted(prepared.visited, key=lambda row: row.id):
        if consumer.id not in prepared.created:
            consumer_domain.bump_generation(connection, consumer, leads.conflict)
    if earlier:
        allocation_storage.delete_allocations_of_consumers(connection, earlier)
    allocation_storage.insert_allocations(
        connection,
        [
            NewAllocation(item.provider_id, item.consumer_id, item.resource_class_id, item.amount)
            for item in wanted
        ],
    )
    for provider_id in sorted(prepared.touched):
        try:
            increment_generation(connection, prepared.touched[provider_id])
        except errors.ConcurrentUpdate:
            raise ProviderRaceLost() from None
    emptied = [
        consumer.id
        for request, consumer in zip(prepared.requests, prepared.consumers, strict=True)
        if not request.allocations and consumer.id in earlier
    ]
    consumer_storage.delete_consumers_without_allocations(connection, emptied)


def _resolve(
    connection: Connection,
    names: list[str],
    inventory: dict[tuple[int, str], InventoryUsage],
    prepared: PreparedWrite,
    leads: MessageLeads,
) -> list[WantedAllocation]:
    """The wanted allocations with ids; raises ``UnknownResourceClassInRequest``
    for the first class that does not exist. Classes some provider has
    inventory of are known from ``inventory``; only the others are looked up."""
    ids = {record.resource_class: record.resource_class_id for record in inventory.values()}
    unseen = [name for name in names if name not in ids]
    if unseen:
        ids.update(resource_class_ids(connection, set(unseen)))
    for name in names:
        if name not in ids:
            raise errors.UnknownResourceClassInRequest(name, leads.unknown_class)
    return [
        WantedAllocation(
            consumer.id,
            prepared.providers[provider_uuid].id,
            provider_uuid,
            ids[name],
            name,
            amount,
        )
        for request, consumer in zip(prepared.requests, prepared.consumers, strict=True)
        for provider_uuid, amounts in request.allocations.items()
        for name, amount in amounts.items()
    ]


def check_fits(
    wanted: list[WantedAllocation], inventory: dict[tuple[int, str], InventoryUsage]
) -> None:
    """Raise an ``AllocationDoesNotFit`` unless ``wanted`` fits the inventory.

    ``inventory`` maps (provider id, class name) to the inventory with the
    usage before the write (``used``) and the part of it the consumers
    being written hold (``used_by_writers``). Checks, in order: some
    inventory of the classes on every provider; then per allocation,
    inventory of its class, min_unit/max_unit/step_size, and capacity for
    the sum the write puts on that provider and class.
    """
    if not wanted:
        return
    providers_with_inventory = {provider_id for provider_id, _name in inventory}
    missing = list(
        dict.fromkeys(
            item.provider_uuid for item in wanted if item.provider_id not in providers_with_inventory
        )
    )
    if missing:
        classes = list(dict.fromkeys(item.resource_class for item in wanted))
        raise errors.NoInventoryForAllocation(classes, missing)

    requested: dict[tuple[int, str], int] = defaultdict(int)
    for item in wanted:
        requested[(item.provider_id, item.resource_class)] += item.amount

    for item in wanted:
        key = (item.provider_id, item.resource_class)
        record = inventory.get(key)
        if record is None:
            raise errors.NoInventoryForAllocation([item.resource_class], [item.provider_uuid])
        if record.unit_problem(item.amount) is not None:
            raise errors.AllocationConstraintsViolated(item.resource_class, item.provider_uuid)
        after = record.used_by_others + requested[key]
        # Over capacity is tolerated only if it was already so and this
        # write does not make it worse (e.g. shrinking an allocation after
        # the inventory shrank).
        if after > record.capacity and after > record.used:
            raise errors.CapacityExceeded(item.resource_class, item.provider_uuid)


def delete_consumer_allocations(connection: Connection, consumer_uuid: str) -> None:
    """Remove everything the consumer holds, and the consumer.

    Provider generations are left alone, as upstream does: freeing resources
    can never over-commit. Raises ``NotFound`` if the consumer holds nothing.
    The consumer's row is locked first, as writers of its allocations bump
    it first: a delete waiting on a move of the consumer deletes what the
    move left, not only the rows it saw before.
    """
    consumer_id = consumer_storage.lock_consumer(connection, consumer_uuid)
    if consumer_id is None or not allocation_storage.delete_allocations_of_consumers(
        connection, [consumer_id]
    ):
        raise errors.NotFound(f"No allocations for consumer '{consumer_uuid}'")
    consumer_storage.delete_consumers_without_allocations(connection, [consumer_id])
