"""The tables a transfer moves, described once for every schema that holds them.

A row travels in its *canonical* form: a mapping from column name to value,
the same whichever schema it came from (Stowage's or upstream's, see
``layouts``). Canonical rows keep their ids, because ids decide the order
of several answers (providers are listed in id order, a provider's traits
in trait-id order, a consumer's allocations in consumer-id order), so a
copy that renumbered rows would answer differently.

Upstream's ``allocations.consumer_id`` is the consumer's uuid where
Stowage's is ``consumers.id``: the canonical allocation carries
``consumer_uuid``, which both schemas can read and write.

Timestamps are kept to the second. The API shows them only as HTTP dates,
Stowage writes whole seconds, and MySQL's ``DATETIME`` drops fractions, so
whole seconds are what every backend holds alike.
"""
from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
Key = tuple[Any, ...]

_TIMESTAMPS = ("created_at", "updated_at")


@dataclass(frozen=True)
class TableSpec:
    """One table as a transfer sees it.

    ``key`` is the primary key, the order rows are read in and the identity
    rows are matched by. ``unique`` lists the other unique constraints: a
    target row that holds a value a source row with another key needs is
    *vacated* first (``vacate_by_delete``: deleted, for tables no other
    table refers to; otherwise its strings replaced by placeholders until
    the row gets its own values). ``tree_columns`` refer to rows of the same
    table (a provider's root and parent), which may be written only once the
    row they name exists; until then a row is *detached*, its tree columns
    NULL. (A row that names itself, a root, is detached too before it is
    deleted: MySQL refuses to delete a row its own foreign key points at.)
    """

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...] = ()
    vacate_by_delete: bool = False
    tree_columns: tuple[str, ...] = ()

    def key_of(self, row: Row) -> Key:
        return tuple(row[column] for column in self.key)

    def detached(self, row: Row) -> dict[str, Any]:
        """``row`` with its tree columns detached (see the class docstring)."""
        return {**row, **dict.fromkeys(self.tree_columns)}

    def refers_ahead(self, row: Row) -> bool:
        """True when a tree column names a row later in key order (maybe not written yet)."""
        own = row[self.key[0]] if self.tree_columns else None
        return any(row[column] is not None and row[column] > own for column in self.tree_columns)

    def comparable(self, row: Row) -> tuple[Any, ...]:
        """What two rows must share to count as equal (and what the checksum hashes)."""
        return tuple(comparable_value(row[column]) for column in self.columns)


def comparable_value(value: Any) -> Any:
    """``value`` as compared across backends.

    Floats (allocation ratios) to six significant digits: MySQL's ``FLOAT``
    is single precision and its text protocol sends six digits.
    """
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime.datetime):
        return value.replace(microsecond=0, tzinfo=None).isoformat(" ")
    return value


def canonical_value(value: Any) -> Any:
    """A value as read, brought to the canonical form (timestamps to the second)."""
    if isinstance(value, datetime.datetime):
        return value.replace(microsecond=0, tzinfo=None)
    return value


CONSUMER_TYPES = TableSpec(
    "consumer_types", ("id", "name", *_TIMESTAMPS), key=("id",), unique=(("name",),)
)
PROJECTS = TableSpec(
    "projects", ("id", "external_id", *_TIMESTAMPS), key=("id",), unique=(("external_id",),)
)
USERS = TableSpec(
    "users", ("id", "external_id", *_TIMESTAMPS), key=("id",), unique=(("external_id",),)
)
# Standard classes are not transferred: each service syncs its own at
# startup, with the ids os-resource-classes gives them (see layouts).
RESOURCE_CLASSES = TableSpec(
    "resource_classes", ("id", "name", *_TIMESTAMPS), key=("id",), unique=(("name",),)
)
TRAITS = TableSpec("traits", ("id", "name", *_TIMESTAMPS), key=("id",), unique=(("name",),))
AGGREGATES = TableSpec(
    "placement_aggregates", ("id", "uuid", *_TIMESTAMPS), key=("id",), unique=(("uuid",),)
)
PROVIDERS = TableSpec(
    "resource_providers",
    (
        "id",
        "uuid",
        "name",
        "generation",
        "root_provider_id",
        "parent_provider_id",
        *_TIMESTAMPS,
    ),
    key=("id",),
    unique=(("uuid",), ("name",)),
    tree_columns=("root_provider_id", "parent_provider_id"),
)
INVENTORIES = TableSpec(
    "inventories",
    (
        "id",
        "resource_provider_id",
        "resource_class_id",
        "total",
        "reserved",
        "min_unit",
        "max_unit",
        "step_size",
        "allocation_ratio",
        *_TIMESTAMPS,
    ),
    key=("id",),
    unique=(("resource_provider_id", "resource_class_id"),),
    vacate_by_delete=True,
)
PROVIDER_TRAITS = TableSpec(
    "resource_provider_traits",
    ("resource_provider_id", "trait_id", *_TIMESTAMPS),
    key=("resource_provider_id", "trait_id"),
)
PROVIDER_AGGREGATES = TableSpec(
    "resource_provider_aggregates",
    ("resource_provider_id", "aggregate_id", *_TIMESTAMPS),
    key=("resource_provider_id", "aggregate_id"),
)
CONSUMERS = TableSpec(
    "consumers",
    ("id", "uuid", "project_id", "user_id", "generation", "consumer_type_id", *_TIMESTAMPS),
    key=("id",),
    unique=(("uuid",),),
)
ALLOCATIONS = TableSpec(
    "allocations",
    (
        "id",
        "resource_provider_id",
        "consumer_uuid",
        "resource_class_id",
        "used",
        *_TIMESTAMPS,
    ),
    key=("id",),
)

# Parents before the tables that refer to them: rows are written in this
# order and stale rows deleted in the reverse one, so no foreign key is
# ever left dangling, on backends that check them row by row too.
TABLES: tuple[TableSpec, ...] = (
    CONSUMER_TYPES,
    PROJECTS,
    USERS,
    RESOURCE_CLASSES,
    TRAITS,
    AGGREGATES,
    PROVIDERS,
    INVENTORIES,
    PROVIDER_TRAITS,
    PROVIDER_AGGREGATES,
    CONSUMERS,
    ALLOCATIONS,
)
