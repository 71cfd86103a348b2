"""Resource classes and traits: the two name catalogs.

Standard resource classes take the ids os-resource-classes gives them (their
index in ``STANDARDS``), as upstream does, and custom classes start at
``FIRST_CUSTOM_CLASS_ID``; so ids stay compatible with upstream databases.
"""
from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass

import os_resource_classes
import os_traits
from sqlalchemy import Connection, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from stowage.storage.common import insert_ignoring_duplicates, utcnow
from stowage.storage.schema import allocations, inventories, resource_classes, traits

FIRST_CUSTOM_CLASS_ID = 10000

# Synced into the catalog when the service starts and never deletable, so a
# running service knows they exist without asking the database.
STANDARD_CLASSES = frozenset(os_resource_classes.STANDARDS)
STANDARD_TRAITS = frozenset(os_traits.get_traits())

# Two writers may pick the same next id (PostgreSQL, MySQL); the loser retries.
_CREATE_ATTEMPTS = 100


@dataclass(frozen=True)
class ResourceClassRow:
    id: int
    name: str
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None

    @property
    def is_standard(self) -> bool:
        """Standard classes (os-resource-classes) have ids below the custom range."""
        return self.id < FIRST_CUSTOM_CLASS_ID


_CLASS_COLUMNS = [
    resource_classes.c.id,
    resource_classes.c.name,
    resource_classes.c.created_at,
    resource_classes.c.updated_at,
]


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


def list_resource_classes(connection: Connection) -> list[ResourceClassRow]:
    """Every resource class, standard ones first (ordered by id)."""
    result = connection.execute(select(*_CLASS_COLUMNS).order_by(resource_classes.c.id))
    return [ResourceClassRow(*row) for row in result]


def find_resource_class(connection: Connection, name: str) -> ResourceClassRow | None:
    row = connection.execute(
        select(*_CLASS_COLUMNS).where(resource_classes.c.name == name)
    ).first()
    return ResourceClassRow(*row) if row else None


def resource_class_ids(connection: Connection, names: Collection[str]) -> dict[str, int]:
    """The id of each of ``names`` that exists; unknown names are left out."""
    if not names:
        return {}
    result = connection.execute(
        select(resource_classes.c.name, resource_classes.c.id).where(
            resource_classes.c.name.in_(list(names))
        )
    )
    return {name: class_id for name, class_id in result}


def resource_class_names(connection: Connection, class_ids: Collection[int]) -> dict[int, str]:
    """The name of each of ``class_ids`` that exists."""
    if not class_ids:
        return {}
    result = connection.execute(
        select(resource_classes.c.id, resource_classes.c.name).where(
            resource_classes.c.id.in_(list(class_ids))
        )
    )
    return {class_id: name for class_id, name in result}


def create_resource_class(connection: Connection, name: str) -> ResourceClassRow | None:
    """Insert a custom class with the next free custom id; None if ``name`` is taken.

    The id is ``max(FIRST_CUSTOM_CLASS_ID, max(id) + 1)``, as upstream picks it.
    Each attempt runs in a savepoint, so a clash with a concurrent writer
    (same id: retry; same name: give up) leaves the transaction usable.
    """
    for _attempt in range(_CREATE_ATTEMPTS):
        if find_resource_class(connection, name) is not None:
            return None
        highest = connection.scalar(select(func.max(resource_classes.c.id)))
        class_id = max(FIRST_CUSTOM_CLASS_ID, (highest or 0) + 1)
        now = utcnow()
        try:
            with connection.begin_nested():
                connection.execute(
                    resource_classes.insert().values(id=class_id, name=name, created_at=now)
                )
        except IntegrityError:
            continue
        return ResourceClassRow(class_id, name, now, None)
    raise RuntimeError(f"could not pick an id for resource class {name}")


def rename_resource_class(connection: Connection, class_id: int, new_name: str) -> bool:
    """Give the class ``new_name``; False if another class already has it."""
    try:
        with connection.begin_nested():
            connection.execute(
                update(resource_classes)
                .where(resource_classes.c.id == class_id)
                .values(name=new_name, updated_at=utcnow())
            )
    except IntegrityError:
        return False
    return True


def resource_class_in_use(connection: Connection, class_id: int) -> bool:
    """True while any inventory or allocation names the class.

    ``SELECT EXISTS (SELECT 1 FROM inventories WHERE resource_class_id = :id)
    OR EXISTS (SELECT 1 FROM allocations WHERE resource_class_id = :id)``
    """
    return bool(
        connection.scalar(
            select(
                exists().where(inventories.c.resource_class_id == class_id)
                | exists().where(allocations.c.resource_class_id == class_id)
            )
        )
    )


def delete_resource_class(connection: Connection, class_id: int) -> bool:
    """Delete the class row; False if it was already gone."""
    result = connection.execute(delete(resource_classes).where(resource_classes.c.id == class_id))
    return bool(result.rowcount)
