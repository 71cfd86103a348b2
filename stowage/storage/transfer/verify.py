"""Verification: do source and target hold the same rows? Counts and a checksum per table.

Each side's canonical rows are hashed in key order (SHA-256 over one JSON
line per row, floats and timestamps as ``tables.comparable_value`` gives
them), so equal digests mean equal content whatever the schemas and
backends. Rows the target keeps as its own catalog (standard traits the
source lacks, on Stowage's schema) are counted apart and left out.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from stowage.storage.transfer.layouts import Layout
from stowage.storage.transfer.reading import paired_batches
from stowage.storage.transfer.tables import Row, TableSpec


@dataclass(frozen=True)
class TableCheck:
    """One table compared: rows and digest on each side, and how many keys differ."""

    table: str
    source_rows: int
    target_rows: int
    source_digest: str
    target_digest: str
    differing: int
    target_own_rows: int = 0

    @property
    def matches(self) -> bool:
        return self.differing == 0 and self.source_digest == self.target_digest


def verify_table(
    source: Connection,
    source_layout: Layout,
    target: Connection,
    target_layout: Layout,
    spec: TableSpec,
    batch_size: int,
    advance: Callable[[int], None] = lambda _rows: None,
) -> TableCheck:
    source_hash, target_hash = hashlib.sha256(), hashlib.sha256()
    source_rows = target_rows = differing = own = 0
    for ours, theirs in paired_batches(source, source_layout, target, target_layout, spec, batch_size):
        source_by_key = {spec.key_of(row): row for row in ours}
        target_by_key = {spec.key_of(row): row for row in theirs}
        for row in ours:
            source_hash.update(_line(spec, row))
        source_rows += len(ours)
        for row in theirs:
            if spec.key_of(row) not in source_by_key and target_layout.is_own_catalog(spec, row):
                own += 1
                continue
            target_hash.update(_line(spec, row))
            target_rows += 1
        for key in source_by_key.keys() | target_by_key.keys():
            mine, other = source_by_key.get(key), target_by_key.get(key)
            if other is not None and mine is None and target_layout.is_own_catalog(spec, other):
                continue
            if mine is None or other is None or spec.comparable(mine) != spec.comparable(other):
                differing += 1
        advance(len(ours))
    return TableCheck(
        spec.name,
        source_rows,
        target_rows,
        source_hash.hexdigest(),
        target_hash.hexdigest(),
        differing,
        own,
    )


def _line(spec: TableSpec, row: Row) -> bytes:
    return json.dumps(spec.comparable(row), default=str).encode() + b"\n"
