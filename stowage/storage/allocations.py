"""Allocation rows: reads by consumer and by provider, capacity snapshots, writes.

The capacity rules themselves live in ``stowage.domain.allocations``; this
module only fetches the numbers they need and writes the outcome.
"""
from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BindParameter, Connection, Select, bindparam, case, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from stowage import errors, rules
from stowage.storage.common import utcnow
from stowage.storage.schema import (
    allocations,
    consumers,
    inventories,
    resource_classes,
    resource_providers,
)


@dataclass(frozen=True)
class ConsumerAllocationRow:
    """One allocation of a consumer, with its provider's current generation."""

    provider_id: int
    provider_uuid: str
    provider_generation: int
    resource_class: str
    used: int
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


@dataclass(frozen=True)
class ProviderAllocationRow:
    """One allocation against a provider, with its consumer's generation."""

    consumer_uuid: str
    consumer_generation: int
    resource_class: str
    used: int
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


@dataclass(frozen=True)
class InventoryUsage:
    """A provider's inventory of one class, what every consumer uses of it
    (``used``) and how much of that the consumers being written hold
    (``used_by_writers``)."""

    provider_id: int
    resource_class_id: int
    resource_class: str
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    used: int
    used_by_writers: int

    @property
    def capacity(self) -> int:
        return rules.capacity(self.total, self.reserved, self.allocation_ratio)

    @property
    def used_by_others(self) -> int:
        return self.used - self.used_by_writers

    def unit_problem(self, amount: int) -> str | None:
        return rules.unit_problem(amount, self.min_unit, self.max_unit, self.step_size)


@dataclass(frozen=True)
class NewAllocation:
    provider_id: int
    consumer_id: int
    resource_class_id: int
    used: int


def allocations_of_consumer(connection: Connection, consumer_uuid: str) -> list[ConsumerAllocationRow]:
    """Every allocation of the consumer, ordered by provider then class.

    ``SELECT rp.id, rp.uuid, rp.generation, rc.name, a.used, a.created_at,
    a.updated_at FROM allocations a JOIN consumers c ON c.id = a.consumer_id
    JOIN resource_providers rp ON rp.id = a.resource_provider_id
    JOIN resource_classes rc ON rc.id = a.resource_class_id WHERE c.uuid = :uuid``
    """
    joined = (
        allocations.join(consumers, consumers.c.id == allocations.c.consumer_id)
        .join(resource_providers, resource_providers.c.id == allocations.c.resource_provider_id)
        .join(resource_classes, resource_classes.c.id == allocations.c.resource_class_id)
    )
    rows = connection.execute(
        select(
            resource_providers.c.id,
            resource_providers.c.uuid,
            resource_providers.c.generation,
            resource_classes.c.name,
            allocations.c.used,
            allocations.c.created_at,
            allocations.c.updated_at,
        )
        .select_from(joined)
        .where(consumers.c.uuid == consumer_uuid)
        .order_by(resource_providers.c.id, resource_classes.c.id)
    )
    return [ConsumerAllocationRow(*row) for row in rows]


def allocations_on_provider(connection: Connection, provider_id: int) -> list[ProviderAllocationRow]:
    """Every allocation against the provider, ordered by consumer then class.

    ``SELECT c.uuid, c.generation, rc.name, a.used, a.created_at, a.updated_at
    FROM allocations a JOIN consumers c ON c.id = a.consumer_id
    JOIN resource_classes rc ON rc.id = a.resource_class_id
    WHERE a.resource_provider_id = :provider_id``
    """
    joined = allocations.join(consumers, consumers.c.id == allocations.c.consumer_id).join(
        resource_classes, resource_classes.c.id == allocations.c.resource_class_id
    )
    rows = connection.execute(
        select(
            consumers.c.uuid,
            consumers.c.generation,
            resource_classes.c.name,
            allocations.c.used,
            allocations.c.created_at,
            allocations.c.updated_at,
        )
        .select_from(joined)
        .where(allocations.c.resource_provider_id == provider_id)
        .order_by(consumers.c.id, resource_classes.c.id)
    )
    return [ProviderAllocationRow(*row) for row in rows]


def inventory_usage(
    connection: Connection,
    provider_ids: Iterable[int],
    class_names: Iterable[str],
    writer_ids: Iterable[int],
) -> dict[tuple[int, str], InventoryUsage]:
    """Inventory and usage per (provider id, class name), for the pairs that
    have inventory, in one statement: the claim check's only read.

    ``used`` counts every allocation, ``used_by_writers`` those of the
    consumers ``writer_ids`` (the ones a write replaces)::

        SELECT i.resource_provider_id, rc.id, rc.name, i.total, i.reserved,
               i.min_unit, i.max_unit, i.step_size, i.allocation_ratio,
               COALESCE(u.used, 0), COALESCE(u.mine, 0)
          FROM inventories i JOIN resource_classes rc ON rc.id = i.resource_class_id
          LEFT JOIN (SELECT resource_provider_id, resource_class_id, SUM(used) AS used,
                            SUM(CASE WHEN consumer_id IN (:writers) THEN used ELSE 0 END) AS mine
                       FROM allocations WHERE resource_provider_id IN (:providers)
                      GROUP BY 1, 2) u USING (resource_provider_id, resource_class_id)
         WHERE i.resource_provider_id IN (:providers) AND rc.name IN (:names)
    """
    provider_ids, class_names = sorted(set(provider_ids)), sorted(set(class_names))
    writer_ids = sorted(set(writer_ids))
    if not provider_ids or not class_names:
        return {}
    parameters = {"providers": provider_ids, "names": class_names}
    if writer_ids:
        parameters["writers"] = writer_ids
    rows = connection.execute(_inventory_usage_statement(bool(writer_ids)), parameters)
    found = {}
    for row in rows:
        record = InventoryUsage(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
            used=int(row[9]), used_by_writers=int(row[10]),
        )
        found[(record.provider_id, record.resource_class)] = record
    return found


@functools.cache
def _inventory_usage_statement(with_writers: bool) -> Select:
    """``inventory_usage``'s statement, built once per form (every
    allocation write runs it): with or without the ``writers`` parameter."""
    in_providers: BindParameter[int] = bindparam("providers", expanding=True)
    mine = (
        case((allocations.c.consumer_id.in_(bindparam("writers", expanding=True)),
              allocations.c.used), else_=0)
        if with_writers
        else literal(0)
    )
    usage = (
        select(
            allocations.c.resource_provider_id,
            allocations.c.resource_class_id,
            func.sum(allocations.c.used).label("used"),
            func.sum(mine).label("mine"),
        )
        .where(allocations.c.resource_provider_id.in_(in_providers))
        .group_by(allocations.c.resource_provider_id, allocations.c.resource_class_id)
        .subquery("usage")
    )
    joined = inventories.join(
        resource_classes, resource_classes.c.id == inventories.c.resource_class_id
    ).outerjoin(
        usage,
        (usage.c.resource_provider_id == inventories.c.resource_provider_id)
        & (usage.c.resource_class_id == inventories.c.resource_class_id),
    )
    return (
        select(
            inventories.c.resource_provider_id,
            resource_classes.c.id,
            resource_classes.c.name,
            inventories.c.total,
            inventories.c.reserved,
            inventories.c.min_unit,
            inventories.c.max_unit,
            inventories.c.step_size,
            inventories.c.allocation_ratio,
            func.coalesce(usage.c.used, 0),
            func.coalesce(usage.c.mine, 0),
        )
        .select_from(joined)
        .where(
            inventories.c.resource_provider_id.in_(in_providers),
            resource_classes.c.name.in_(bindparam("names", expanding=True)),
        )
    )


def delete_allocations_of_consumers(connection: Connection, consumer_ids: Iterable[int]) -> int:
    """Remove every allocation of the given consumers; returns how many went."""
    consumer_ids = sorted(set(consumer_ids))
    if not consumer_ids:
        return 0
    result = connection.execute(delete(allocations).where(allocations.c.consumer_id.in_(consumer_ids)))
    return result.rowcount


class AllocationTargetGone(errors.TransactionAborted):
    """A provider or resource class that new allocations name was deleted
    after the write read it, and the foreign keys refused the rows: the
    transaction is over (PostgreSQL ends it at the failed INSERT) and a
    fresh run of the write finds what is missing."""

    def __init__(self) -> None:
        super().__init__("A provider or resource class was deleted by another request; please retry.")


def insert_allocations(connection: Connection, rows: list[NewAllocation]) -> None:
    """Insert ``rows`` in one statement.

    Raises ``AllocationTargetGone`` when a foreign key refuses them. Their
    consumers are the caller's: created, or generation-bumped (so locked),
    in this transaction.
    """
    if not rows:
        return
    now = utcnow()
    # One multi-row INSERT: an executemany runs one statement per row.
    try:
        connection.execute(
            insert(allocations).values(
                [
                    {
                        "resource_provider_id": row.provider_id,
                        "consumer_id": row.consumer_id,
                        "resource_class_id": row.resource_class_id,
                        "used": row.used,
                        "created_at": now,
                    }
                    for row in rows
                ]
            )
        )
    except IntegrityError:
        raise AllocationTargetGone() from None
