"""Aggregates: the groups of providers a provider belongs to.

An aggregate is nothing but a uuid; putting a new uuid on a provider creates
it. From microversion 1.19 the caller sends the provider generation and
every change bumps it; earlier callers change membership without either.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from stowage import errors
from stowage.storage import aggregates as aggregate_storage
from stowage.storage.providers import ProviderRow, get_provider, increment_generation, lock_provider


@dataclass(frozen=True)
class ProviderAggregates:
    """A provider's aggregate uuids together with its generation."""

    generation: int
    aggregates: list[str]


def provider_for_update(connection: Connection, provider_uuid: str) -> ProviderRow:
    """Lock the provider whose membership is about to change; raises ``NotFound``.

    Concurrent writers of one provider queue on this lock.
    """
    return lock_provider(connection, provider_uuid)


def provider_aggregates(connection: Connection, provider_uuid: str) -> ProviderAggregates:
    """The provider's aggregate uuids, sorted; raises ``NotFound``."""
    provider = get_provider(connection, provider_uuid)
    uuids = list(aggregate_storage.aggregates_of_provider(connection, provider.id))
    return ProviderAggregates(provider.generation, uuids)


def replace_provider_aggregates(
    connection: Connection,
    provider: ProviderRow,
    aggregate_uuids: Sequence[str],
    generation: int | None,
) -> ProviderAggregates:
    """Make ``aggregate_uuids`` the provider's whole membership.

    ``provider`` comes from ``provider_for_update``. With a ``generation``
    (1.19+) the caller's view must be current (``ProviderGenerationChanged``
    otherwise) and the generation is bumped even when nothing changes, as
    upstream does; without one (before 1.19) it is left alone. The returned
    list is the requested one, in request order.
    """
    if generation is not None and provider.generation != generation:
        raise errors.ProviderGenerationChanged(provider.uuid, generation, provider.generation)
    current = aggregate_storage.aggregates_of_provider(connection, provider.id)
    wanted = set(aggregate_uuids)
    to_remove = [aggregate_id for uuid, aggregate_id in current.items() if uuid not in wanted]
    to_add = aggregate_storage.ensure_aggregates(connection, [uuid for uuid in wanted if uuid not in current])
    aggregate_storage.remove_provider_aggregates(connection, provider.id, to_remove)
    aggregate_storage.add_provider_aggregates(connection, provider.id, list(to_add.values()))
    # The generation bump comes last: the provider row is what concurrent
    # writers of this provider wait for.
    if generation is not None:
        return ProviderAggregates(increment_generation(connection, provider), list(aggregate_uuids))
    return ProviderAggregates(provider.generation, list(aggregate_uuids))
