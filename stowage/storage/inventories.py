"""Inventory rows (``inventories``) and the allocations that pin them."""
from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from stowage.storage.common import utcnow
from stowage.storage.schema import allocations, inventories, resource_classes


@dataclass(frozen=True)
class InventoryRow:
    """One provider's inventory of one resource class, named."""

    resource_class_id: int
    resource_class: str
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self.updated_at or self.created_at


@dataclass(frozen=True)
class InventoryValues:
    """The settable fields of an inventory, as written to a row."""

    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float

    def as_columns(self) -> dict:
        return {
            "total": self.total,
            "reserved": self.reserved,
            "min_unit": self.min_unit,
            "max_unit": self.max_unit,
            "step_size": self.step_size,
            "allocation_ratio": self.allocation_ratio,
        }


def provider_inventories(connection: Connection, provider_id: int) -> list[InventoryRow]:
    """The provider's inventories, in resource class id order.

    ``SELECT i.resource_class_id, rc.name, i.total, ... FROM inventories i
    JOIN resource_classes rc ON rc.id = i.resource_class_id
    WHERE i.resource_provider_id = :provider ORDER BY i.resource_class_id``
    """
    result = connection.execute(
        select(
            inventories.c.resource_class_id,
            resource_classes.c.name,
            inventories.c.total,
            inventories.c.reserved,
            inventories.c.min_unit,
            inventories.c.max_unit,
            inventories.c.step_size,
            inventories.c.allocation_ratio,
            inventories.c.created_at,
            inventories.c.updated_at,
        )
        .join(resource_classes, resource_classes.c.id == inventories.c.resource_class_id)
        .where(inventories.c.resource_provider_id == provider_id)
        .order_by(inventories.c.resource_class_id)
    )
    # SQLAlchemy's select() overloads type at most 9 columns exactly; from a
    # 10th on the row is typed as open-ended, so mypy cannot count it.
    return [InventoryRow(*row) for row in result]  # type: ignore[call-arg]


def insert_inventory(
    connection: Connection, provider_id: int, class_id: int, values: InventoryValues
) -> bool:
    """Add an inventory; False if the provider already has one of that class.

    The insert runs in a savepoint so that the unique-key clash of a
    concurrent writer leaves the transaction usable.
    """
    try:
        with connection.begin_nested():
            connection.execute(
                inventories.insert().values(
                    resource_provider_id=provider_id,
                    resource_class_id=class_id,
                    created_at=utcnow(),
                    **values.as_columns(),
                )
            )
    except IntegrityError:
        return False
    return True


def update_inventory(
    connection: Connection, provider_id: int, class_id: int, values: InventoryValues
) -> bool:
    """Overwrite an inventory; False if the provider has none of that class."""
    result = connection.execute(
        update(inventories)
        .where(
            inventories.c.resource_provider_id == provider_id,
            inventories.c.resource_class_id == class_id,
        )
        .values(updated_at=utcnow(), **values.as_columns())
    )
    return bool(result.rowcount)


def delete_inventories(connection: Connection, provider_id: int, class_ids: Collection[int]) -> int:
    """Delete the provider's inventories of ``class_ids``; returns how many went."""
    if not class_ids:
        return 0
    result = connection.execute(
        delete(inventories).where(
            inventories.c.resource_provider_id == provider_id,
            inventories.c.resource_class_id.in_(list(class_ids)),
        )
    )
    return result.rowcount


def allocated_class_ids(
    connection: Connection, provider_id: int, class_ids: Collection[int]
) -> list[int]:
    """Those of ``class_ids`` that allocations against the provider consume, in id order.

    ``SELECT DISTINCT resource_class_id FROM allocations
    WHERE resource_provider_id = :provider AND resource_class_id IN (:classes)
    ORDER BY resource_class_id``
    """
    if not class_ids:
        return []
    result = connection.execute(
        select(allocations.c.resource_class_id)
        .where(
            and_(
                allocations.c.resource_provider_id == provider_id,
                allocations.c.resource_class_id.in_(list(class_ids)),
            )
        )
        .group_by(allocations.c.resource_class_id)
        .order_by(allocations.c.resource_class_id)
    )
    return list(result.scalars())


def used_by_class(connection: Connection, provider_id: int, class_ids: Collection[int]) -> dict[int, int]:
    """Sum of allocations against the provider for each of ``class_ids`` that has any.

    ``SELECT resource_class_id, SUM(used) FROM allocations
    WHERE resource_provider_id = :provider AND resource_class_id IN (:classes)
    GROUP BY resource_class_id``
    """
    if not class_ids:
        return {}
    result = connection.execute(
        select(allocations.c.resource_class_id, func.sum(allocations.c.used))
        .where(
            allocations.c.resource_provider_id == provider_id,
            allocations.c.resource_class_id.in_(list(class_ids)),
        )
        .group_by(allocations.c.resource_class_id)
    )
    return {class_id: int(used) for class_id, used in result}
