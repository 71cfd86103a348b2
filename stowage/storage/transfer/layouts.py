"""Where each canonical table lives in a schema, and how its rows are read and written there.

Two layouts: Stowage's own tables (``storage.schema``) and those of an
openstack-placement 16.0.0 database (``upstream_schema``). Both use the same
table and column names; they differ in how an allocation names its consumer
and in which catalog rows belong to the service itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, select, tuple_

from stowage.storage import schema
from stowage.storage.catalog import STANDARD_CLASSES, STANDARD_TRAITS
from stowage.storage.transfer import upstream_schema
from stowage.storage.transfer.errors import TransferError
from stowage.storage.transfer.tables import ALLOCATIONS, RESOURCE_CLASSES, TRAITS, Key, Row, TableSpec

# Standard resource classes are synced by each service at startup with the
# ids os-resource-classes gives them, upstream and Stowage alike, so they
# are never moved (nor compared): only custom classes are.
_STANDARD_CLASS_NAMES = sorted(STANDARD_CLASSES)


class Layout:
    """One schema's tables, read and written in canonical rows."""

    label: str
    _tables: dict[str, Table]

    def table(self, spec: TableSpec) -> Table:
        return self._tables[spec.name]

    def column(self, spec: TableSpec, name: str) -> ColumnElement[Any]:
        """The SQL expression behind canonical column ``name``."""
        return self.table(spec).c[name]

    def key_expression(self, spec: TableSpec) -> ColumnElement[Any]:
        return self.columns_expression(spec, spec.key)

    def columns_expression(self, spec: TableSpec, names: Sequence[str]) -> ColumnElement[Any]:
        """One column, or several as a row value (``(a, b) IN (...)``, ``(a, b) > (...)``)."""
        columns = [self.column(spec, name) for name in names]
        return columns[0] if len(columns) == 1 else tuple_(*columns)

    def select(self, spec: TableSpec) -> Select[Any]:
        """``SELECT <canonical columns> FROM <table>`` (custom classes only)."""
        table = self.table(spec)
        query = select(*(self.column(spec, name).label(name) for name in spec.columns))
        query = query.select_from(self._from_clause(spec))
        if spec is RESOURCE_CLASSES:
            query = query.where(table.c.name.not_in(_STANDARD_CLASS_NAMES))
        return query

    def _from_clause(self, spec: TableSpec) -> Any:
        return self.table(spec)

    def values(self, connection: Connection, spec: TableSpec, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """The rows as this schema's column values, ready for INSERT or UPDATE."""
        return [dict(row) for row in rows]

    def is_own_catalog(self, spec: TableSpec, row: Row) -> bool:
        """True for rows the service keeps for itself whatever the source holds."""
        return False


class StowageLayout(Layout):
    """Stowage's tables: allocations name their consumer by ``consumers.id``."""

    label = "Stowage"

    def __init__(self) -> None:
        self._tables = {table.name: table for table in schema.metadata.sorted_tables}

    def column(self, spec: TableSpec, name: str) -> ColumnElement[Any]:
        if spec is ALLOCATIONS and name == "consumer_uuid":
            return schema.consumers.c.uuid
        return super().column(spec, name)

    def _from_clause(self, spec: TableSpec) -> Any:
        if spec is ALLOCATIONS:
            return schema.allocations.join(
                schema.consumers, schema.consumers.c.id == schema.allocations.c.consumer_id
            )
        return super()._from_clause(spec)

    def values(self, connection: Connection, spec: TableSpec, rows: Sequence[Row]) -> list[dict[str, Any]]:
        if spec is not ALLOCATIONS:
            return super().values(connection, spec, rows)
        consumer_ids = _consumer_ids(connection, {row["consumer_uuid"] for row in rows})
        values = []
        for row in rows:
            value = {name: row[name] for name in spec.columns if name != "consumer_uuid"}
            consumer_id = consumer_ids.get(row["consumer_uuid"])
            if consumer_id is None:
                raise TransferError(
                    f"allocation {row['id']} names consumer {row['consumer_uuid']}, which has no "
                    "consumer record in the source; upstream's 'placement-manage db "
                    "online_data_migrations' creates the missing records"
                )
            value["consumer_id"] = consumer_id
            values.append(value)
        return values

    def is_own_catalog(self, spec: TableSpec, row: Row) -> bool:
        # Stowage counts on every standard trait being present (they cannot be
        # deleted); one the source lacks stays, and is left out of comparisons.
        return spec is TRAITS and row["name"] in STANDARD_TRAITS


class UpstreamLayout(Layout):
    """An openstack-placement 16.0.0 database: allocations name their consumer by uuid."""

    label = "upstream Placement"

    def __init__(self) -> None:
        self._tables = {table.name: table for table in upstream_schema.metadata.sorted_tables}

    def column(self, spec: TableSpec, name: str) -> ColumnElement[Any]:
        if spec is ALLOCATIONS and name == "consumer_uuid":
            return upstream_schema.allocations.c.consumer_id
        return super().column(spec, name)

    def values(self, connection: Connection, spec: TableSpec, rows: Sequence[Row]) -> list[dict[str, Any]]:
        if spec is not ALLOCATIONS:
            return super().values(connection, spec, rows)
        return [
            {
                **{name: row[name] for name in spec.columns if name != "consumer_uuid"},
                "consumer_id": row["consumer_uuid"],
            }
            for row in rows
        ]


def _consumer_ids(connection: Connection, uuids: set[str]) -> dict[str, int]:
    """``SELECT uuid, id FROM consumers WHERE uuid IN (:uuids)``"""
    if not uuids:
        return {}
    result = connection.execute(
        select(schema.consumers.c.uuid, schema.consumers.c.id).where(
            schema.consumers.c.uuid.in_(sorted(uuids))
        )
    )
    return {uuid: consumer_id for uuid, consumer_id in result}


def key_values(spec: TableSpec, key: Key) -> Any:
    """``key`` as a value to compare ``key_expression`` with."""
    return key[0] if len(spec.key) == 1 else tuple_(*key)


STOWAGE = StowageLayout()
UPSTREAM = UpstreamLayout()
