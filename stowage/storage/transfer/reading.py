"""Reading canonical rows in key order, a batch at a time."""
from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, func, select

from stowage.storage.transfer.layouts import Layout, key_values
from stowage.storage.transfer.tables import Key, Row, TableSpec, canonical_value


def read_rows(
    connection: Connection,
    layout: Layout,
    spec: TableSpec,
    after: Key | None,
    upto: Key | None,
    limit: int | None,
) -> list[Row]:
    """Canonical rows with keys in (``after``, ``upto``], in key order, at most ``limit``.

    ``SELECT <columns> FROM <table> WHERE key > :after AND key <= :upto
    ORDER BY key LIMIT :limit`` (a composite key compared as a row value).
    """
    query = layout.select(spec)
    key = layout.key_expression(spec)
    if after is not None:
        query = query.where(key > key_values(spec, after))
    if upto is not None:
        query = query.where(key <= key_values(spec, upto))
    query = query.order_by(*(layout.column(spec, name) for name in spec.key))
    if limit is not None:
        query = query.limit(limit)
    return [
        {name: canonical_value(value) for name, value in row._mapping.items()}
        for row in connection.execute(query)
    ]


def count_rows(connection: Connection, layout: Layout, spec: TableSpec) -> int:
    """``SELECT count(*) FROM (<canonical select>)``"""
    return int(connection.scalar(select(func.count()).select_from(layout.select(spec).subquery())) or 0)


def paired_batches(
    source: Connection,
    source_layout: Layout,
    target: Connection,
    target_layout: Layout,
    spec: TableSpec,
    batch_size: int,
) -> Iterator[tuple[list[Row], list[Row]]]:
    """Both sides' rows of ``spec`` in matching key ranges, in key order.

    Each step reads up to ``batch_size`` rows after the last range from
    each side and keeps those up to the smaller of the two last keys (all,
    once both sides are exhausted), so memory stays bounded however much
    the two sides differ.
    """
    after: Key | None = None
    while True:
        ours = read_rows(source, source_layout, spec, after, None, batch_size)
        theirs = read_rows(target, target_layout, spec, after, None, batch_size)
        limits = [spec.key_of(rows[-1]) for rows in (ours, theirs) if len(rows) == batch_size]
        if not limits:
            if ours or theirs:
                yield ours, theirs
            return
        upto = min(limits)
        yield (
            [row for row in ours if spec.key_of(row) <= upto],
            [row for row in theirs if spec.key_of(row) <= upto],
        )
        after = upto
