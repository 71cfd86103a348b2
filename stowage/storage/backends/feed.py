"""What every backend's change-feed triggers say alike: which trees a
catalog row's change reaches.

A resource class renamed (or deleted) changes the trees whose inventories
or allocations name it; a trait, the trees whose providers carry it. The
trigger notes those roots, not "every tree", so read models patch the few
trees instead of rebuilding.
"""
from __future__ import annotations

from typing import NamedTuple

# Each event of a provider table and the row images a trigger on it notes.
ROW_EVENTS = (("INSERT", ["NEW"]), ("UPDATE", ["NEW", "OLD"]), ("DELETE", ["OLD"]))
# A catalog row's insert changes no tree; a rename or delete, those using it.
CATALOG_EVENTS = ("UPDATE", "DELETE")


class CatalogUse(NamedTuple):
    """Rows of ``table`` name a ``catalog`` row by ``column`` (and belong to
    the provider in their ``resource_provider_id``)."""

    catalog: str
    table: str
    column: str


def roots_using(use: CatalogUse, row: str = "OLD") -> str:
    """``SELECT`` of the distinct roots of the providers whose ``use.table``
    rows name the catalog row ``row`` of a trigger."""
    return (
        f"SELECT DISTINCT rp.root_provider_id FROM {use.table} used "
        f"JOIN resource_providers rp ON rp.id = used.resource_provider_id WHERE used.{use.column} = {row}.id"
    )
