"""Resource provider rows: lookup and generation bumps shared by every resource.

Provider CRUD, tree queries and list filters grow here.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from stowage import errors
from stowage.storage.common import bump_revision, utcnow
from stowage.storage.schema import resource_providers


@dataclass(frozen=True)
class ProviderRow:
    id: int
    uuid: str
    name: str
    generation: int
    root_provider_id: int | None
    parent_provider_id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


_PROVIDER_COLUMNS = [
    resource_providers.c.id,
    resource_providers.c.uuid,
    resource_providers.c.name,
    resource_providers.c.generation,
    resource_providers.c.root_provider_id,
    resource_providers.c.parent_provider_id,
    resource_providers.c.created_at,
    resource_providers.c.updated_at,
]


def find_provider(connection: Connection, uuid: str) -> ProviderRow | None:
    row = connection.execute(
        select(*_PROVIDER_COLUMNS).where(resource_providers.c.uuid == uuid)
    ).first()
    return ProviderRow(*row) if row else None


def get_provider(connection: Connection, uuid: str) -> ProviderRow:
    """The provider with ``uuid``; raises ``NotFound`` (404) if there is none."""
    provider = find_provider(connection, uuid)
    if provider is None:
        raise errors.NotFound(f"No resource provider with uuid {uuid} found")
    return provider


def increment_generation(connection: Connection, provider: ProviderRow) -> int:
    """Bump the provider's generation if it is still ``provider.generation``.

    Raises ``ConcurrentUpdate`` when another writer got there first; returns
    the new generation. Also bumps the data revision.

    ``UPDATE resource_providers SET generation = :g + 1, updated_at = now
    WHERE id = :id AND generation = :g``
    """
    result = connection.execute(
        update(resource_providers)
        .where(
            resource_providers.c.id == provider.id,
            resource_providers.c.generation == provider.generation,
        )
        .values(generation=provider.generation + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise errors.ConcurrentUpdate(
            f"resource provider generation conflict: provider {provider.uuid} "
            "was updated by another request. Please refresh and try again."
        )
    bump_revision(connection)
    return provider.generation + 1
