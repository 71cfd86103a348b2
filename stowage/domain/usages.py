"""Usages: how much of each resource class is allocated, per provider or per project.

From 1.38 project usages are grouped by consumer type, each group with a
``consumer_count``. The ``consumer_type`` filter takes a type name, or one of
two lower-case words no type can be named (type names are upper case):
``all`` (one group of every consumer) and ``unknown`` (consumers without a
type; also the group name such consumers get when grouping).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from stowage.storage import usages as storage
from stowage.storage.providers import get_provider
from stowage.storage.usages import ConsumerScope

ALL_CONSUMER_TYPES = "all"
UNKNOWN_CONSUMER_TYPE = "unknown"
CONSUMER_COUNT = "consumer_count"


@dataclass(frozen=True)
class ProviderUsages:
    generation: int
    usages: dict[str, int]


def provider_usages(connection: Connection, provider_uuid: str) -> ProviderUsages:
    """Usage of every class the provider has inventory of; raises ``NotFound``."""
    provider = get_provider(connection, provider_uuid)
    return ProviderUsages(provider.generation, storage.provider_usages(connection, provider.id))


def project_usages(connection: Connection, project_id: str, user_id: str | None) -> dict[str, int]:
    """Usage per class by the project's (or the project user's) consumers (1.9 to 1.37)."""
    return storage.usage_by_class(connection, ConsumerScope(project_id, user_id))


def project_usages_by_consumer_type(
    connection: Connection, project_id: str, user_id: str | None, consumer_type: str | None
) -> dict[str, dict[str, int]]:
    """Usage per consumer type, then per class, plus each type's ``consumer_count`` (1.38+).

    ``consumer_type`` is None (every type), a type name, ``all`` or ``unknown``.
    A type with no allocations does not appear.
    """
    if consumer_type in (ALL_CONSUMER_TYPES, UNKNOWN_CONSUMER_TYPE):
        scope = ConsumerScope(
            project_id, user_id, untyped_only=consumer_type == UNKNOWN_CONSUMER_TYPE
        )
        by_class = storage.usage_by_class(connection, scope)
        if not by_class:
            return {}
        return {consumer_type: {**by_class, CONSUMER_COUNT: storage.consumer_count(connection, scope)}}

    scope = ConsumerScope(project_id, user_id, consumer_type=consumer_type)
    counts = storage.consumer_counts_by_type(connection, scope)
    grouped: dict[str, dict[str, int]] = {}
    for usage in storage.usage_by_type_and_class(connection, scope):
        group = grouped.setdefault(
            usage.consumer_type or UNKNOWN_CONSUMER_TYPE,
            {CONSUMER_COUNT: counts.get(usage.consumer_type, 0)},
        )
        group[usage.resource_class] = usage.used
    return grouped
