"""Resource class operations: the standard catalog plus operators' CUSTOM_ classes.

Standard classes (from os-resource-classes) can be neither renamed nor
deleted; custom classes can be renamed (1.2 to 1.6) and deleted while no
inventory or allocation uses them.
"""
from __future__ import annotations

import datetime

from sqlalchemy import Connection

from stowage import errors
from stowage.storage import catalog
from stowage.storage.catalog import ResourceClassRow


def last_modified(resource_class: ResourceClassRow) -> datetime.datetime | None:
    """When the class last changed; None for standard classes, which "change" now.

    Upstream reports the time of the request for standard classes, so a list
    (which always holds them) is always modified now.
    """
    if resource_class.is_standard:
        return None
    return resource_class.updated_at or resource_class.created_at


def list_classes(connection: Connection) -> list[ResourceClassRow]:
    return catalog.list_resource_classes(connection)


def show_class(connection: Connection, name: str) -> ResourceClassRow:
    """Raises ``ResourceClassNotFound``."""
    found = catalog.find_resource_class(connection, name)
    if found is None:
        raise errors.ResourceClassNotFound(name)
    return found


def create_class(connection: Connection, name: str) -> ResourceClassRow:
    """Create a custom class; raises ``ResourceClassExists`` if the name is taken."""
    created = catalog.create_resource_class(connection, name)
    if created is None:
        raise errors.ResourceClassExists(name)
    return created


def ensure_class(connection: Connection, name: str) -> tuple[ResourceClassRow, bool]:
    """The custom class ``name``, created if missing; True if it was created (1.7+)."""
    found = catalog.find_resource_class(connection, name)
    if found is not None:
        return found, False
    created = catalog.create_resource_class(connection, name)
    if created is None:
        # A concurrent writer created it between our look and our insert.
        return show_class(connection, name), False
    return created, True


def rename_class(connection: Connection, name: str, new_name: str) -> ResourceClassRow:
    """Rename a custom class (1.2 to 1.6).

    Raises ``ResourceClassNotFound``, ``StandardResourceClass`` and
    ``ResourceClassExists`` when ``new_name`` is taken.
    """
    found = show_class(connection, name)
    if found.is_standard:
        raise errors.StandardResourceClass(name, deleting=False)
    if new_name != found.name and not catalog.rename_resource_class(connection, found.id, new_name):
        raise errors.ResourceClassExists(new_name, renaming=True)
    return show_class(connection, new_name)


def delete_class(connection: Connection, name: str) -> None:
    """Delete a custom class.

    Raises ``ResourceClassNotFound``, ``StandardResourceClass`` and
    ``ResourceClassInUse`` while an inventory or allocation names it.
    """
    found = show_class(connection, name)
    if found.is_standard:
        raise errors.StandardResourceClass(name, deleting=True)
    if catalog.resource_class_in_use(connection, found.id):
        raise errors.ResourceClassInUse(name)
    if not catalog.delete_resource_class(connection, found.id):
        raise errors.ResourceClassNotFound(name)
