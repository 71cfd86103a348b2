"""Traits: the catalog of capability names and the sets providers have.

Standard traits come from os-traits and are synced at start-up; operators
add custom ones (``CUSTOM_`` prefix). Changing a provider's trait set bumps
its generation, but only when the set really changes, as upstream does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from stowage import errors
from stowage.storage import traits as trait_storage
from stowage.storage.providers import ProviderRow, get_provider, increment_generation, lock_provider
from stowage.storage.traits import TraitRow

CUSTOM_PREFIX = "CUSTOM_"


@dataclass(frozen=True)
class TraitFilter:
    """Which traits ``GET /traits`` lists; ``None`` means "any"."""

    names: tuple[str, ...] | None = None
    prefix: str | None = None
    associated: bool | None = None


@dataclass(frozen=True)
class ProviderTraits:
    """A provider's traits together with the generation they belong to."""

    generation: int
    traits: list[TraitRow]


def list_traits(connection: Connection, trait_filter: TraitFilter) -> list[TraitRow]:
    return trait_storage.list_traits(
        connection,
        names=trait_filter.names,
        prefix=trait_filter.prefix,
        associated=trait_filter.associated,
    )


def get_trait(connection: Connection, name: str) -> TraitRow:
    """The trait called ``name``; raises ``TraitNotFound``."""
    trait = trait_storage.find_trait(connection, name)
    if trait is None:
        raise errors.TraitNotFound(name)
    return trait


def ensure_custom_trait(connection: Connection, name: str) -> tuple[TraitRow, bool]:
    """Create the custom trait if needed; returns it and whether it is new.

    ``name`` must already be a valid custom trait name (the API checks it).
    """
    return trait_storage.create_trait(connection, name)


def delete_custom_trait(connection: Connection, name: str) -> None:
    """Delete a custom trait.

    Raises ``TraitNotFound`` (unknown), ``StandardTraitUndeletable`` (no
    ``CUSTOM_`` prefix) or ``TraitInUse`` (some provider has it), checked in
    that order as upstream does.
    """
    trait = get_trait(connection, name)
    if not trait.name.startswith(CUSTOM_PREFIX):
        raise errors.StandardTraitUndeletable(name)
    trait_storage.delete_trait(connection, trait)


def provider_traits(connection: Connection, provider_uuid: str) -> ProviderTraits:
    """The provider's traits; raises ``NotFound`` for an unknown provider."""
    provider = get_provider(connection, provider_uuid)
    return ProviderTraits(provider.generation, trait_storage.traits_of_provider(connection, provider.id))


def replace_provider_traits(
    connection: Connection, provider_uuid: str, names: Sequence[str], generation: int
) -> ProviderTraits:
    """Make ``names`` the provider's whole trait set.

    ``generation`` is the provider generation the caller last saw. Raises
    ``NotFound`` (provider), ``ProviderGenerationChanged`` (stale
    generation) or ``UnknownTraits`` (names that are not traits, in request
    order). Concurrent writers of one provider queue on its row lock.
    """
    provider = lock_provider(connection, provider_uuid)
    if provider.generation != generation:
        raise errors.ProviderGenerationChanged(provider.uuid, generation, provider.generation)
    known = trait_storage.trait_ids_by_name(connection, names, keep=True)
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise errors.UnknownTraits(unknown)
    new_generation = _set_trait_ids(connection, provider, set(known.values()))
    return ProviderTraits(new_generation, trait_storage.traits_of_provider(connection, provider.id))


def clear_provider_traits(connection: Connection, provider_uuid: str) -> None:
    """Remove every trait from the provider; raises ``NotFound`` (provider)."""
    provider = lock_provider(connection, provider_uuid)
    _set_trait_ids(connection, provider, set())


def _set_trait_ids(connection: Connection, provider: ProviderRow, wanted: set[int]) -> int:
    """Apply the difference to the provider's traits; returns its generation.

    ``provider`` must be locked (``lock_provider``). The generation is
    bumped last (the data revision only at commit, ``Database.write``).
    """
    current = {trait.id for trait in trait_storage.traits_of_provider(connection, provider.id)}
    to_add = wanted - current
    to_remove = current - wanted
    if not to_add and not to_remove:
        return provider.generation
    trait_storage.remove_provider_traits(connection, provider.id, to_remove)
    trait_storage.add_provider_traits(connection, provider.id, to_add)
    return increment_generation(connection, provider)
