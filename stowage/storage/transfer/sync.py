"""Make a target database hold what a source holds, in small transactions that any rerun completes.

One run, for every table of ``tables.TABLES``:

1. **Copy**, parents first. The source is read in key order, a batch at a
   time; for each batch one target transaction reads the target's rows of
   the same key range, inserts the missing ones and updates those that
   differ. A target row holding a unique value (a name, a uuid) that a
   source row with another key needs is vacated first. A provider whose
   root or parent comes later in id order is written detached and linked
   in a second sweep over the table, once every provider exists.
2. **Remove**, children first: target rows whose key the source lacks are
   deleted, batch by batch (providers detached first, so none is deleted
   while another still names it).
3. **Verify**: per table, row counts and a checksum of the canonical rows
   on each side (``verify``).

The whole run reads the source in one consistent snapshot. Nothing is kept
between runs: a rerun compares again, finds the batches already written
equal and writes only what is still missing, so a run killed at any point
is completed by the next one, and a second run changes nothing. A target
on Stowage's schema has its data marked changed in every batch that wrote,
so running workers reload what they serve.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from stowage import errors
from stowage.storage.backends import backend_for
from stowage.storage.catalog import sync_standard_names
from stowage.storage.transfer.endpoints import Endpoint, StowageEndpoint
from stowage.storage.transfer.errors import TargetHasOtherData
from stowage.storage.transfer.reading import count_rows, paired_batches, read_rows
from stowage.storage.transfer.tables import TABLES, Key, Row, TableSpec
from stowage.storage.transfer.verify import TableCheck, verify_table

DEFAULT_BATCH_SIZE = 1000
# A batch that lost a race with another writer on the target is run again.
_BATCH_ATTEMPTS = 5


class Progress(Protocol):
    """Where a run reports how far it got (the command line draws a bar)."""

    def begin(self, step: str, table: str, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    def begin(self, step: str, table: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class Options:
    """How a run goes.

    ``pause`` seconds are slept between write batches, to spare a busy
    database. ``dry_run`` compares and counts without writing.
    ``keep_other_data`` refuses a target holding rows that differ from the
    source's (``TargetHasOtherData``): a target that holds only rows equal
    to the source's, such as an interrupted copy of it, is continued.
    """

    batch_size: int = DEFAULT_BATCH_SIZE
    pause: float = 0.0
    dry_run: bool = False
    keep_other_data: bool = False


@dataclass
class TableChanges:
    """Rows a run wrote to (or, dry, would write to) one target table."""

    table: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def any(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


@dataclass(frozen=True)
class Report:
    changes: tuple[TableChanges, ...]
    checks: tuple[TableCheck, ...]

    @property
    def changed(self) -> bool:
        return any(change.any for change in self.changes)

    @property
    def verified(self) -> bool:
        return all(check.matches for check in self.checks)


def transfer(
    source: Endpoint, target: Endpoint, options: Options = Options(), progress: Progress | None = None
) -> Report:
    """Make ``target`` hold ``source``'s rows; see the module docstring.

    Raises ``TargetHasOtherData`` (before writing anything) when
    ``options.keep_other_data`` and the target holds rows of its own.
    """
    with source.snapshot() as source_connection:
        run = _Run(source, target, source_connection, options, progress or NoProgress())
        with run.dry_target():
            if options.keep_other_data:
                run.refuse_other_data()
            run.complete_catalog()
            for spec in TABLES:
                run.copy_table(spec)
            for spec in reversed(TABLES):
                run.remove_stale(spec)
            run.complete_catalog()
            checks = run.verify()
    return Report(tuple(run.changes[spec.name] for spec in TABLES), checks)


@dataclass
class _Run:
    source: Endpoint
    target: Endpoint
    source_connection: Connection
    options: Options
    progress: Progress
    changes: dict[str, TableChanges] = field(
        default_factory=lambda: {spec.name: TableChanges(spec.name) for spec in TABLES}
    )
    # Placeholders of this run differ from any a killed run left behind.
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    _dry_connection: Connection | None = None

    # --- target transactions -------------------------------------------------------

    @contextmanager
    def dry_target(self) -> Iterator[None]:
        """A dry run reads the target in one snapshot and writes nothing."""
        if not self.options.dry_run:
            yield
            return
        with self.target.snapshot() as connection:
            self._dry_connection = connection
            try:
                yield
            finally:
                self._dry_connection = None

    def _target_transaction(self) -> Any:
        if self._dry_connection is not None:
            return nullcontext(self._dry_connection)
        return self.target.write()

    def _in_batch(self, work, spec: TableSpec, *args) -> Any:
        """Run ``work(connection, spec, *args)`` in one target transaction, run
        again (counts restored) if it lost a race with another writer."""
        changes = self.changes[spec.name]
        for attempt in range(1, _BATCH_ATTEMPTS + 1):
            counts = (changes.inserted, changes.updated, changes.deleted)
            try:
                with self._target_transaction() as connection:
                    return work(connection, spec, *args)
            except errors.TransactionAborted:
                changes.inserted, changes.updated, changes.deleted = counts
                if attempt == _BATCH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _pause(self) -> None:
        if self.options.pause > 0:
            time.sleep(self.options.pause)

    def complete_catalog(self) -> None:
        """Stowage needs every standard class and trait, whatever the source had."""
        if isinstance(self.target, StowageEndpoint) and not self.options.dry_run:
            with self.target.write() as connection:
                sync_standard_names(connection)

    # --- refusing a target with data of its own --------------------------------------

    def refuse_other_data(self) -> None:
        """Raise ``TargetHasOtherData`` if a target row differs from, or is absent in, the source."""
        layout = self.target.layout
        with self._target_read() as target_connection:
            for spec in TABLES:
                for source_rows, target_rows in paired_batches(
                    self.source_connection, self.source.layout, target_connection, layout, spec,
                    self.options.batch_size,
                ):
                    source_by_key = {spec.key_of(row): row for row in source_rows}
                    for row in target_rows:
                        if layout.is_own_catalog(spec, row):
                            continue
                        theirs = source_by_key.get(spec.key_of(row))
                        if theirs is None or not _agrees(spec, theirs, row):
                            raise TargetHasOtherData(
                                f"the target holds data the source does not: {spec.name} "
                                f"{_describe_key(spec, row)} "
                                + ("is not in the source" if theirs is None else "differs from the source's")
                            )

    def _target_read(self) -> Any:
        if self._dry_connection is not None:
            return nullcontext(self._dry_connection)
        return self.target.snapshot()

    # --- step 1: copy ------------------------------------------------------------------

    def copy_table(self, spec: TableSpec) -> None:
        self.progress.begin("copying", spec.name, count_rows(self.source_connection, self.source.layout, spec))
        held_back = self._sweep_source(spec, link_ahead=False)
        self.progress.end()
        if held_back:
            total = count_rows(self.source_connection, self.source.layout, spec)
            self.progress.begin("copying", f"{spec.name} (tree links)", total)
            self._sweep_source(spec, link_ahead=True)
            self.progress.end()
        if not self.options.dry_run:
            with self.target.write() as connection:
                backend_for(connection).follow_written_ids(connection, self.target.layout.table(spec))

    def _sweep_source(self, spec: TableSpec, link_ahead: bool) -> bool:
        """Write every source row of ``spec`` the target lacks or holds otherwise.

        True if some rows were written detached (``link_ahead`` False) and
        need a second sweep.
        """
        held_back = False
        after: Key | None = None
        while True:
            rows = read_rows(self.source_connection, self.source.layout, spec, after, None, self.options.batch_size)
            if not rows:
                break
            upto = spec.key_of(rows[-1])
            held_back |= self._in_batch(self._write_batch, spec, rows, after, upto, link_ahead)
            self.progress.advance(len(rows))
            if len(rows) < self.options.batch_size:
                break
            after = upto
            self._pause()
        return held_back

    def _write_batch(
        self,
        connection: Connection,
        spec: TableSpec,
        rows: list[Row],
        after: Key | None,
        upto: Key,
        link_ahead: bool,
    ) -> bool:
        """Bring the target's key range (``after``, ``upto``] to the source ``rows``.

        True if some rows were written detached. In one transaction::

            SELECT <columns> FROM <table> WHERE key > :after AND key <= :upto
            -- then, for the rows missing or different: _vacate, and
            INSERT INTO <table> (<columns>) VALUES (...), ...
            UPDATE <table> SET <column> = :new, ... WHERE key = :key   -- executemany
        """
        layout = self.target.layout
        existing = _by_key(spec, read_rows(connection, layout, spec, after, upto, None))
        wanted = [row for row in rows if not _same(spec, existing.get(spec.key_of(row)), row)]
        if not wanted:
            return False
        changes = self.changes[spec.name]
        if self.options.dry_run:
            changes.inserted += sum(spec.key_of(row) not in existing for row in wanted)
            changes.updated += sum(spec.key_of(row) in existing for row in wanted)
            return False
        if self._vacate(connection, spec, wanted):
            existing = _by_key(spec, read_rows(connection, layout, spec, after, upto, None))
        held_back = False
        written: list[Row] = []
        for row in wanted:
            if spec.tree_columns and not link_ahead and spec.refers_ahead(row):
                # Inserted rows go in key order, so a tree column naming an
                # earlier row is safe; a later one is linked by a second sweep.
                row = spec.detached(row)
                held_back = True
            written.append(row)
        inserts = [row for row in written if spec.key_of(row) not in existing]
        updates = [
            row for row in written if spec.key_of(row) in existing and not _same(spec, existing[spec.key_of(row)], row)
        ]
        table = layout.table(spec)
        if inserts:
            connection.execute(insert(table), layout.values(connection, spec, inserts))
        if updates:
            values = layout.values(connection, spec, updates)
            columns = [name for name in values[0] if name not in spec.key]
            statement = (
                update(table)
                .where(*(table.c[name] == bindparam(f"key_{name}") for name in spec.key))
                .values({name: bindparam(f"new_{name}") for name in columns})
            )
            connection.execute(
                statement,
                [
                    {
                        **{f"key_{name}": value[name] for name in spec.key},
                        **{f"new_{name}": value[name] for name in columns},
                    }
                    for value in values
                ],
            )
        if not link_ahead:
            changes.inserted += len(inserts)
            changes.updated += len(updates)
        return held_back

    def _vacate(self, connection: Connection, spec: TableSpec, wanted: Sequence[Row]) -> bool:
        """Free the unique values ``wanted`` rows need from target rows with other keys.

        Such a row is stale or about to change (the source holds each value
        once): it is deleted (``vacate_by_delete``) or its strings become
        placeholders, ``~<run token>~<id>``, until its own turn comes::

            SELECT key, <unique columns> FROM <table> WHERE <unique columns> IN (:wanted)
            DELETE FROM <table> WHERE key IN (:holders)            -- vacate_by_delete
            UPDATE <table> SET <column> = :placeholder WHERE id = :id   -- otherwise
        """
        layout = self.target.layout
        table = layout.table(spec)
        holders: set[Key] = set()
        placeholders: dict[str, set[Key]] = {}
        for columns in spec.unique:
            wanted_by = {tuple(row[name] for name in columns): spec.key_of(row) for row in wanted}
            expression = layout.columns_expression(spec, columns)
            values = [value[0] if len(columns) == 1 else value for value in wanted_by]
            query = select(*(table.c[name] for name in spec.key), *(table.c[name] for name in columns)).where(
                expression.in_(values)
            )
            for found in connection.execute(query):
                key, value = tuple(found[: len(spec.key)]), tuple(found[len(spec.key) :])
                if wanted_by.get(value) != key:
                    holders.add(key)
                    for name in columns:
                        placeholders.setdefault(name, set()).add(key)
        if not holders:
            return False
        if spec.vacate_by_delete:
            deleted = connection.execute(
                delete(table).where(layout.key_expression(spec).in_([_in_list_value(spec, key) for key in holders]))
            )
            self.changes[spec.name].deleted += deleted.rowcount or 0
        else:
            for name, keys in placeholders.items():
                connection.execute(
                    update(table).where(table.c[spec.key[0]] == bindparam("key")).values({name: bindparam("value")}),
                    [{"key": key[0], "value": f"~{self.token}~{key[0]}"} for key in sorted(keys)],
                )
        return True

    # --- step 2: remove ----------------------------------------------------------------

    def remove_stale(self, spec: TableSpec) -> None:
        with self._target_read() as connection:
            total = count_rows(connection, self.target.layout, spec)
        if spec.tree_columns and not self.options.dry_run:
            self.progress.begin("removing", f"{spec.name} (tree links)", total)
            self._sweep_target(spec, detach=True)
            self.progress.end()
        self.progress.begin("removing", spec.name, total)
        self._sweep_target(spec, detach=False)
        self.progress.end()

    def _sweep_target(self, spec: TableSpec, detach: bool) -> None:
        after: Key | None = None
        while True:
            found = self._in_batch(self._remove_batch, spec, after, detach)
            if found is None:
                break
            count, upto = found
            self.progress.advance(count)
            if count < self.options.batch_size:
                break
            after = upto
            self._pause()

    def _remove_batch(
        self, connection: Connection, spec: TableSpec, after: Key | None, detach: bool
    ) -> tuple[int, Key] | None:
        """Delete (or, ``detach``, unlink) the next batch's target rows the source lacks.

        Returns how many target rows were looked at and the last key, None
        past the end::

            SELECT <columns> FROM <table> WHERE key > :after ORDER BY key LIMIT :batch
            -- the source's keys in the same range, from its snapshot; then
            UPDATE <table> SET root_provider_id = NULL, parent_provider_id = NULL
             WHERE key IN (:stale)                                   -- detach
            DELETE FROM <table> WHERE key IN (:stale)
        """
        layout = self.target.layout
        rows = read_rows(connection, layout, spec, after, None, self.options.batch_size)
        if not rows:
            return None
        upto = spec.key_of(rows[-1])
        theirs = read_rows(self.source_connection, self.source.layout, spec, after, upto, None)
        present = {spec.key_of(row) for row in theirs}
        stale = [
            row for row in rows if spec.key_of(row) not in present and not layout.is_own_catalog(spec, row)
        ]
        if detach:
            stale = [row for row in stale if not _same(spec, spec.detached(row), row)]
        if stale and not self.options.dry_run:
            table = layout.table(spec)
            where = layout.key_expression(spec).in_([_in_list_value(spec, spec.key_of(row)) for row in stale])
            if detach:
                connection.execute(update(table).where(where).values(dict.fromkeys(spec.tree_columns)))
            else:
                connection.execute(delete(table).where(where))
        if not detach:
            self.changes[spec.name].deleted += len(stale)
        return len(rows), upto

    # --- step 3: verify ----------------------------------------------------------------

    def verify(self) -> tuple[TableCheck, ...]:
        with self._target_read() as target_connection:
            checks = []
            for spec in TABLES:
                total = count_rows(self.source_connection, self.source.layout, spec)
                self.progress.begin("verifying", spec.name, total)
                checks.append(
                    verify_table(
                        self.source_connection,
                        self.source.layout,
                        target_connection,
                        self.target.layout,
                        spec,
                        self.options.batch_size,
                        self.progress.advance,
                    )
                )
                self.progress.end()
        return tuple(checks)


def _by_key(spec: TableSpec, rows: list[Row]) -> dict[Key, Row]:
    return {spec.key_of(row): row for row in rows}


def _same(spec: TableSpec, first: Row | None, second: Row) -> bool:
    return first is not None and spec.comparable(first) == spec.comparable(second)


def _agrees(spec: TableSpec, source_row: Row, target_row: Row) -> bool:
    """The target row is the source's, or the source's still detached (an interrupted copy)."""
    return _same(spec, source_row, target_row) or (
        bool(spec.tree_columns) and _same(spec, spec.detached(source_row), target_row)
    )


def _in_list_value(spec: TableSpec, key: Key) -> Any:
    """``key`` as one item of an ``IN`` list on ``key_expression``."""
    return key[0] if len(spec.key) == 1 else key


def _describe_key(spec: TableSpec, row: Row) -> str:
    named = next((row[name] for name in ("uuid", "name", "external_id") if name in row), None)
    key = ", ".join(f"{name} {row[name]}" for name in spec.key)
    return f"row ({key}{f', {named}' if named is not None else ''})"
