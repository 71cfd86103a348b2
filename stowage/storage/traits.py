"""Traits and their association with providers (``traits``, ``resource_provider_traits``)."""
from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, exists, select
from sqlalchemy.exc import IntegrityError

from stowage import errors
from stowage.storage.common import insert_ignoring_duplicates, utcnow
from stowage.storage.schema import provider_traits, traits


@dataclass(frozen=True)
class TraitRow:
    id: int
    name: str
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self.updated_at or self.created_at


# How often to retry a create whose conflicting row a concurrent delete removed.
_CREATE_ATTEMPTS = 10

_TRAIT_COLUMNS = [traits.c.id, traits.c.name, traits.c.created_at, traits.c.updated_at]


def _rows(result) -> list[TraitRow]:
    return [TraitRow(*row) for row in result]


def find_trait(connection: Connection, name: str) -> TraitRow | None:
    row = connection.execute(select(*_TRAIT_COLUMNS).where(traits.c.name == name)).first()
    return TraitRow(*row) if row else None


def list_traits(
    connection: Connection,
    names: Collection[str] | None = None,
    prefix: str | None = None,
    associated: bool | None = None,
) -> list[TraitRow]:
    """Traits matching every filter given, ordered by name.

    ``names`` keeps only those names, ``prefix`` those starting with it
    (taken literally: ``_`` and ``%`` are not wildcards), ``associated``
    those some provider has (True) or no provider has (False)::

        SELECT id, name, created_at, updated_at FROM traits
        WHERE name IN (:names) AND name LIKE :prefix || '%' ESCAPE '/'
          AND [NOT] EXISTS (SELECT 1 FROM resource_provider_traits
                            WHERE trait_id = traits.id)
        ORDER BY name
    """
    query = select(*_TRAIT_COLUMNS).order_by(traits.c.name)
    if names is not None:
        query = query.where(traits.c.name.in_(list(names)))
    if prefix is not None:
        query = query.where(traits.c.name.startswith(prefix, autoescape=True))
    if associated is not None:
        has_provider = exists().where(provider_traits.c.trait_id == traits.c.id)
        query = query.where(has_provider if associated else ~has_provider)
    return _rows(connection.execute(query))


def trait_ids_by_name(connection: Connection, names: Iterable[str], keep: bool = False) -> dict[str, int]:
    """Map each existing trait among ``names`` to its id; unknown names are absent.

    ``keep`` share-locks the rows found until the transaction ends, so that a
    concurrent delete of one of them waits (and then fails as in use) instead
    of pulling it away before the caller links it to a provider; a trait
    deleted first is simply not found.

    ``SELECT name, id FROM traits WHERE name IN (:names) [FOR KEY SHARE]``
    """
    names = sorted(set(names))
    if not names:
        return {}
    query = select(traits.c.name, traits.c.id).where(traits.c.name.in_(names))
    if keep:
        query = query.order_by(traits.c.id).with_for_update(read=True, key_share=True)
    return {name: trait_id for name, trait_id in connection.execute(query)}


def create_trait(connection: Connection, name: str) -> tuple[TraitRow, bool]:
    """Create the trait unless it exists; returns it and whether it was created.

    Concurrent creators of one name both succeed: the loser's insert is
    ignored (on PostgreSQL and MySQL it waits for the winner to commit) and it reads
    the winner's row; should a concurrent delete remove that row meanwhile,
    it tries again. Raises ``ConcurrentUpdate`` if that keeps happening.
    """
    for _attempt in range(_CREATE_ATTEMPTS):
        existing = find_trait(connection, name)
        if existing is not None:
            return existing, False
        if insert_ignoring_duplicates(connection, traits, [{"name": name, "created_at": utcnow()}]):
            created = find_trait(connection, name)
            assert created is not None  # our own uncommitted row
            return created, True
    raise errors.ConcurrentUpdate(f"The trait {name} was created and deleted concurrently; please retry.")


def delete_trait(connection: Connection, trait: TraitRow) -> None:
    """Delete ``trait``; raises ``TraitInUse`` if any provider has it.

    A provider gaining the trait concurrently makes the delete trip the
    foreign key; that is reported as the same ``TraitInUse``.

    ``DELETE FROM traits WHERE id = :id AND NOT EXISTS
    (SELECT 1 FROM resource_provider_traits WHERE trait_id = :id)``
    """
    in_use = exists().where(provider_traits.c.trait_id == trait.id)
    try:
        result = connection.execute(delete(traits).where(traits.c.id == trait.id, ~in_use))
    except IntegrityError:
        raise errors.TraitInUse(trait.name) from None
    if result.rowcount == 0:
        if connection.execute(select(in_use)).scalar():
            raise errors.TraitInUse(trait.name)
        raise errors.TraitNotFound(trait.name)


def traits_of_provider(connection: Connection, provider_id: int) -> list[TraitRow]:
    """The traits a provider has, ordered by name.

    ``SELECT traits.* FROM traits JOIN resource_provider_traits rpt
    ON rpt.trait_id = traits.id WHERE rpt.resource_provider_id = :id``
    """
    query = (
        select(*_TRAIT_COLUMNS)
        .join(provider_traits, provider_traits.c.trait_id == traits.c.id)
        .where(provider_traits.c.resource_provider_id == provider_id)
        .order_by(traits.c.name)
    )
    return _rows(connection.execute(query))


def add_provider_traits(connection: Connection, provider_id: int, trait_ids: Collection[int]) -> None:
    """Associate the traits with the provider; already-present pairs are ignored."""
    now = utcnow()
    insert_ignoring_duplicates(
        connection,
        provider_traits,
        [
            {"resource_provider_id": provider_id, "trait_id": trait_id, "created_at": now}
            for trait_id in sorted(trait_ids)
        ],
    )


def remove_provider_traits(connection: Connection, provider_id: int, trait_ids: Collection[int]) -> None:
    """Dissociate the traits from the provider."""
    if not trait_ids:
        return
    connection.execute(
        delete(provider_traits).where(
            and_(
                provider_traits.c.resource_provider_id == provider_id,
                provider_traits.c.trait_id.in_(sorted(trait_ids)),
            )
        )
    )
