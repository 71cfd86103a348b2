"""Aggregates and provider membership (``placement_aggregates``, ``resource_provider_aggregates``).

Aggregates have no API of their own: a row exists for every uuid ever put
on a provider, created on first use and kept afterwards (as upstream).
"""
from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, and_, delete, select

from stowage.storage.common import insert_ignoring_duplicates, utcnow
from stowage.storage.schema import aggregates, provider_aggregates


def aggregates_of_provider(connection: Connection, provider_id: int) -> dict[str, int]:
    """The provider's aggregates, uuid → internal id, ordered by uuid.

    ``SELECT a.uuid, a.id FROM placement_aggregates a
    JOIN resource_provider_aggregates rpa ON rpa.aggregate_id = a.id
    WHERE rpa.resource_provider_id = :id ORDER BY a.uuid``
    """
    query = (
        select(aggregates.c.uuid, aggregates.c.id)
        .join(provider_aggregates, provider_aggregates.c.aggregate_id == aggregates.c.id)
        .where(provider_aggregates.c.resource_provider_id == provider_id)
        .order_by(aggregates.c.uuid)
    )
    return {uuid: aggregate_id for uuid, aggregate_id in connection.execute(query)}


def ensure_aggregates(connection: Connection, uuids: Collection[str]) -> dict[str, int]:
    """Create the aggregates that do not exist yet; returns uuid → id for all.

    Safe against concurrent creators of the same uuid: the losing insert is
    ignored and the row is read back (committed rows are visible to the next
    statement at READ COMMITTED).
    """
    if not uuids:
        return {}
    now = utcnow()
    wanted = sorted(set(uuids))
    found = dict(
        connection.execute(
            select(aggregates.c.uuid, aggregates.c.id).where(aggregates.c.uuid.in_(wanted))
        ).all()
    )
    missing = [uuid for uuid in wanted if uuid not in found]
    if missing:
        insert_ignoring_duplicates(
            connection, aggregates, [{"uuid": uuid, "created_at": now} for uuid in missing]
        )
        found.update(
            connection.execute(
                select(aggregates.c.uuid, aggregates.c.id).where(aggregates.c.uuid.in_(missing))
            ).all()
        )
    return found


def add_provider_aggregates(connection: Connection, provider_id: int, aggregate_ids: Collection[int]) -> None:
    """Make the provider a member of the aggregates; existing pairs are ignored."""
    now = utcnow()
    insert_ignoring_duplicates(
        connection,
        provider_aggregates,
        [
            {"resource_provider_id": provider_id, "aggregate_id": aggregate_id, "created_at": now}
            for aggregate_id in sorted(aggregate_ids)
        ],
    )


def remove_provider_aggregates(
    connection: Connection, provider_id: int, aggregate_ids: Collection[int]
) -> None:
    """Take the provider out of the aggregates."""
    if not aggregate_ids:
        return
    connection.execute(
        delete(provider_aggregates).where(
            and_(
                provider_aggregates.c.resource_provider_id == provider_id,
                provider_aggregates.c.aggregate_id.in_(sorted(aggregate_ids)),
            )
        )
    )
