"""Resource classes and traits: the two name catalogs.

Standard resource classes take the ids os-resource-classes gives them (their
index in ``STANDARDS``), as upstream does, and custom classes start at
``FIRST_CUSTOM_CLASS_ID``; so ids stay compatible with upstream databases.
"""
from __future__ import annotations

import os_resource_classes
import os_traits
from sqlalchemy import Connection, select

from stowage.storage.common import insert_ignoring_duplicates, utcnow
from stowage.storage.schema import resource_classes, traits

FIRST_CUSTOM_CLASS_ID = 10000


def sync_standard_names(connection: Connection) -> None:
    """Insert missing standard resource classes and traits (idempotent).

    Safe when several workers start at once: duplicates are ignored.
    """
    now = utcnow()
    existing_classes = set(connection.scalars(select(resource_classes.c.name)))
    insert_ignoring_duplicates(
        connection,
        resource_classes,
        [
            {"id": index, "name": name, "created_at": now}
            for index, name in enumerate(os_resource_classes.STANDARDS)
            if name not in existing_classes
        ],
    )
    existing_traits = set(connection.scalars(select(traits.c.name)))
    insert_ignoring_duplicates(
        connection,
        traits,
        [
            {"name": name, "created_at": now}
            for name in os_traits.get_traits()
            if name not in existing_traits
        ],
    )
