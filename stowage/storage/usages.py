"""Usage sums over ``allocations``: per provider, and per project (and user)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Select, and_, func, select

from stowage.storage.schema import (
    allocations,
    consumer_types,
    consumers,
    inventories,
    projects,
    resource_classes,
    users,
)


@dataclass(frozen=True)
class ConsumerScope:
    """Whose allocations to sum: a project's, optionally one user's, optionally one type's.

    ``consumer_type`` names a type; ``untyped_only`` keeps consumers without
    one instead. Neither means every consumer.
    """

    project_id: str
    user_id: str | None = None
    consumer_type: str | None = None
    untyped_only: bool = False


@dataclass(frozen=True)
class TypedUsage:
    """Usage of one class by consumers of one type (None: consumers without a type)."""

    consumer_type: str | None
    resource_class: str
    used: int


def provider_usages(connection: Connection, provider_id: int) -> dict[str, int]:
    """Allocated amount of every class the provider has inventory of (0 if unused).

    ``SELECT rc.name, COALESCE(SUM(a.used), 0) FROM inventories i
    JOIN resource_classes rc ON rc.id = i.resource_class_id
    LEFT JOIN allocations a ON a.resource_provider_id = i.resource_provider_id
                           AND a.resource_class_id = i.resource_class_id
    WHERE i.resource_provider_id = :provider
    GROUP BY i.resource_class_id, rc.name ORDER BY i.resource_class_id``
    """
    result = connection.execute(
        select(resource_classes.c.name, func.coalesce(func.sum(allocations.c.used), 0))
        .select_from(inventories)
        .join(resource_classes, resource_classes.c.id == inventories.c.resource_class_id)
        .outerjoin(
            allocations,
            and_(
                allocations.c.resource_provider_id == inventories.c.resource_provider_id,
                allocations.c.resource_class_id == inventories.c.resource_class_id,
            ),
        )
        .where(inventories.c.resource_provider_id == provider_id)
        .group_by(inventories.c.resource_class_id, resource_classes.c.name)
        .order_by(inventories.c.resource_class_id)
    )
    return {name: int(used) for name, used in result}


def _scoped(query: Select, scope: ConsumerScope) -> Select:
    """Join ``query`` (over ``allocations``) to the consumers in ``scope``.

    ``... JOIN consumers c ON c.id = a.consumer_id
    JOIN projects p ON p.id = c.project_id [JOIN users u ON u.id = c.user_id]
    LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id
    WHERE p.external_id = :project [AND u.external_id = :user]
    [AND ct.name = :type | AND c.consumer_type_id IS NULL]``
    """
    query = (
        query.join(consumers, consumers.c.id == allocations.c.consumer_id)
        .join(projects, projects.c.id == consumers.c.project_id)
        .outerjoin(consumer_types, consumer_types.c.id == consumers.c.consumer_type_id)
        .where(projects.c.external_id == scope.project_id)
    )
    if scope.user_id is not None:
        query = query.join(users, users.c.id == consumers.c.user_id).where(
            users.c.external_id == scope.user_id
        )
    if scope.consumer_type is not None:
        query = query.where(consumer_types.c.name == scope.consumer_type)
    if scope.untyped_only:
        query = query.where(consumers.c.consumer_type_id.is_(None))
    return query


def usage_by_class(connection: Connection, scope: ConsumerScope) -> dict[str, int]:
    """Allocated amount of each class by the consumers in ``scope`` (classes in use only).

    ``SELECT rc.name, SUM(a.used) FROM allocations a
    JOIN resource_classes rc ON rc.id = a.resource_class_id <scope joins>
    GROUP BY a.resource_class_id, rc.name ORDER BY a.resource_class_id``
    """
    query = _scoped(
        select(resource_classes.c.name, func.sum(allocations.c.used))
        .select_from(allocations)
        .join(resource_classes, resource_classes.c.id == allocations.c.resource_class_id),
        scope,
    )
    result = connection.execute(
        query.group_by(allocations.c.resource_class_id, resource_classes.c.name).order_by(
            allocations.c.resource_class_id
        )
    )
    return {name: int(used) for name, used in result}


def usage_by_type_and_class(connection: Connection, scope: ConsumerScope) -> list[TypedUsage]:
    """Allocated amount of each class by the consumers in ``scope``, per consumer type.

    ``SELECT ct.name, rc.name, SUM(a.used) ... <scope joins>
    GROUP BY ct.name, a.resource_class_id, rc.name``
    """
    query = _scoped(
        select(consumer_types.c.name, resource_classes.c.name, func.sum(allocations.c.used))
        .select_from(allocations)
        .join(resource_classes, resource_classes.c.id == allocations.c.resource_class_id),
        scope,
    )
    result = connection.execute(
        query.group_by(
            consumer_types.c.name, allocations.c.resource_class_id, resource_classes.c.name
        ).order_by(consumer_types.c.name, allocations.c.resource_class_id)
    )
    return [TypedUsage(type_name, class_name, int(used)) for type_name, class_name, used in result]


def consumer_count(connection: Connection, scope: ConsumerScope) -> int:
    """How many distinct consumers in ``scope`` hold allocations.

    ``SELECT COUNT(DISTINCT a.consumer_id) FROM allocations a <scope joins>``
    """
    query = _scoped(
        select(func.count(func.distinct(allocations.c.consumer_id))).select_from(allocations), scope
    )
    return int(connection.scalar(query) or 0)


def consumer_counts_by_type(connection: Connection, scope: ConsumerScope) -> dict[str | None, int]:
    """How many distinct consumers in ``scope`` hold allocations, per consumer type.

    ``SELECT ct.name, COUNT(DISTINCT a.consumer_id) FROM allocations a
    <scope joins> GROUP BY ct.name``
    """
    query = _scoped(
        select(consumer_types.c.name, func.count(func.distinct(allocations.c.consumer_id))).select_from(
            allocations
        ),
        scope,
    )
    result = connection.execute(query.group_by(consumer_types.c.name))
    return {type_name: int(count) for type_name, count in result}
