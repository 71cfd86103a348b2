"""What ``stowage db import`` remembers between runs: where the data was left.

An import makes Stowage's database mirror upstream's. Run again after
Stowage has served writes, it would discard them, so each finished import
records the revision it left the data at (``stowage_imports``), and the next
one checks whether the revision has moved since::

    SELECT source, revision, finished_at FROM stowage_imports ORDER BY id DESC LIMIT 1
    SELECT revision FROM stowage_revision WHERE id = 1
    SELECT 1 FROM resource_providers LIMIT 1   -- and consumers: data never imported

An import writes its row as it starts and completes it when verified, so an
interrupted import (row without ``finished_at``) may simply be run again.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import Connection, exists, func, insert, select, update

from stowage.storage.changes import current_revision
from stowage.storage.common import utcnow
from stowage.storage.schema import consumers, imports, resource_providers


@dataclass(frozen=True)
class ImportRecord:
    source: str
    revision: int
    finished_at: datetime.datetime | None  # None: interrupted, or still running


def last_import(connection: Connection) -> ImportRecord | None:
    row = connection.execute(
        select(imports.c.source, imports.c.revision, imports.c.finished_at)
        .order_by(imports.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else ImportRecord(row.source, row.revision, row.finished_at)


def writes_an_import_would_discard(connection: Connection) -> str | None:
    """Why importing now could discard data Stowage holds, or None.

    Data is at risk when the revision moved since the last finished import
    (Stowage served writes), or when no import ever ran but providers or
    consumers exist (a database Stowage filled itself). The data an
    interrupted import left is not: running the import again completes it.
    """
    record = last_import(connection)
    if record is not None and record.finished_at is None:
        return None
    if record is None:
        has_data = connection.execute(
            select(exists(select(resource_providers.c.id)) | exists(select(consumers.c.id)))
        ).scalar()
        return "it holds providers or consumers that no import brought in" if has_data else None
    revision = current_revision(connection)
    if revision > record.revision:
        return (
            f"it has taken {revision - record.revision} write(s) since the import from "
            f"{record.source} finished at {record.finished_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


def record_import_started(connection: Connection, source: str) -> None:
    """Note that an import from ``source`` is about to write."""
    connection.execute(
        insert(imports).values(source=source[:255], revision=current_revision(connection))
    )


def record_import_finished(connection: Connection) -> None:
    """Complete the latest import's row with the revision it left the data at."""
    latest = select(func.max(imports.c.id)).scalar_subquery()
    connection.execute(
        update(imports)
        .where(imports.c.id == latest)
        .values(revision=current_revision(connection), finished_at=utcnow())
    )
