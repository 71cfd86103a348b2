"""``stowage db import``, ``db export`` and ``db copy``: move Placement data between databases.

    stowage db import --from UPSTREAM_URL [--config-file FILE]...   upstream → Stowage's database
    stowage db export --to UPSTREAM_URL [--config-file FILE]...     Stowage's database → upstream
    stowage db copy --from URL --to URL [--overwrite]               Stowage → Stowage, any backends

Stowage's database is the one ``[placement_database] connection`` names.
All three share ``storage.transfer``: batched, idempotent, resumable, and
verified at the end. Exit status: 0 when the target holds the source's
data; 1 when verification (or, with ``--dry-run``, the comparison) finds a
difference, or the database fails mid-way; 2 when the command refuses to
start (a bad URL, the wrong kind of database, a copy onto other data) or
meets source data it cannot move (the message names the row); 130 when
interrupted. Whatever the exit, running the same command again is safe.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from oslo_config import cfg

from stowage.cmd.database import prepare_database
from stowage.cmd.progress import ProgressDisplay
from stowage.conf import database_url
from stowage.storage.transfer import (
    Endpoint,
    ImportWouldDiscardWrites,
    Options,
    Report,
    StowageEndpoint,
    TargetHasOtherData,
    TransferError,
    describe,
    open_stowage,
    open_upstream,
    record_import_finished,
    record_import_started,
    same_database,
    transfer,
    writes_an_import_would_discard,
)

EXIT_VERIFIED = 0
EXIT_DIFFERENT = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


def options_from(args: argparse.Namespace, keep_other_data: bool = False) -> Options:
    return Options(
        batch_size=args.batch_size, pause=args.pause, dry_run=args.dry_run, keep_other_data=keep_other_data
    )


def import_command(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    """``stowage db import --from URL``: upstream's database into Stowage's.

    Refuses, unless ``--overwrite``, a Stowage database holding writes no
    import brought in (it has served since, or was never imported into),
    which mirroring upstream would discard. A verified import is recorded.
    """
    target_url = database_url(conf)

    def open_target() -> StowageEndpoint:
        target = _stowage_target(target_url, args.dry_run)
        if not args.overwrite:
            with target.database.read() as connection:
                risk = writes_an_import_would_discard(connection)
            if risk is not None:
                target.dispose()
                raise ImportWouldDiscardWrites(f"Stowage's database {target.label}: {risk}")
        if not args.dry_run:
            with target.database.write() as connection:
                record_import_started(connection, describe(args.source))
        return target

    status = _run("import", lambda: open_upstream(args.source, "source"), open_target,
                  args.source, target_url, options_from(args))
    if status == EXIT_VERIFIED and not args.dry_run:
        target = open_stowage(target_url, "target", must_be_current=True)
        try:
            with target.database.write() as connection:
                record_import_finished(connection)
        finally:
            target.dispose()
    return status


def export_command(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    """``stowage db export --to URL``: Stowage's database into upstream's."""
    source_url = database_url(conf)
    return _run(
        "export",
        lambda: open_stowage(source_url, "source", must_be_current=True),
        lambda: open_upstream(args.target, "target"),
        source_url,
        args.target,
        options_from(args),
    )


def copy_command(_conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    """``stowage db copy --from URL --to URL``: between two Stowage databases."""
    return _run(
        "copy",
        lambda: open_stowage(args.source, "source", must_be_current=True),
        lambda: _stowage_target(args.target, args.dry_run),
        args.source,
        args.target,
        options_from(args, keep_other_data=not args.overwrite),
    )


def _stowage_target(url: str, dry_run: bool) -> StowageEndpoint:
    """A Stowage target, migrated first (a dry run needs one migrated already)."""
    target = open_stowage(url, "target", must_be_current=dry_run)
    if not dry_run:
        prepare_database(target.database)
    return target


def _run(
    name: str,
    open_source: Callable[[], Endpoint],
    open_target: Callable[[], Endpoint],
    source_url: str,
    target_url: str,
    options: Options,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    progress = ProgressDisplay()
    opened: list[Endpoint] = []
    try:
        if same_database(source_url, target_url):
            raise TransferError("the source and the target are the same database")
        source = open_source()
        opened.append(source)
        target = open_target()
        opened.append(target)
        report = transfer(source, target, options, progress)
        progress.close()
    except TransferError as error:
        progress.interrupt()
        print(f"stowage db {name}: {error}", file=sys.stderr)
        if isinstance(error, ImportWouldDiscardWrites):
            print(
                "Nothing was written. Importing makes Stowage's database equal to upstream's, "
                "which would discard those writes; to go back to upstream keeping them, use "
                "'stowage db export'. To import anyway, run again with --overwrite.",
                file=sys.stderr,
            )
        if isinstance(error, TargetHasOtherData):
            print(
                "Nothing was written. To make the target a copy of the source anyway (its own rows "
                "are changed or deleted), run again with --overwrite.",
                file=sys.stderr,
            )
        return EXIT_REFUSED
    except KeyboardInterrupt:
        progress.interrupt()
        print(
            f"stowage db {name}: interrupted; every batch written so far is complete, "
            "and running the same command again finishes the job.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BaseException:
        progress.interrupt()
        raise
    finally:
        for endpoint in opened:
            endpoint.dispose()
    _print_report(report, source.label, target.label, options.dry_run, out)
    return EXIT_VERIFIED if report.verified else EXIT_DIFFERENT


def _print_report(report: Report, source: str, target: str, dry_run: bool, out: TextIO) -> None:
    def line(text: str = "") -> None:
        print(text, file=out)

    line(f"Source: {source}")
    line(f"Target: {target}")
    line()
    changed = [change for change in report.changes if change.any]
    if not changed:
        line("No changes: the target already held the source's data." if not dry_run else
             "Dry run: nothing would change.")
    else:
        line("Dry run, nothing written; these changes would be made:" if dry_run else "Changes written:")
        line(f"  {'table':<30}{'inserted':>10}{'updated':>10}{'deleted':>10}")
        for change in changed:
            line(f"  {change.table:<30}{change.inserted:>10,}{change.updated:>10,}{change.deleted:>10,}")
    line()
    line("Verification (rows and SHA-256 of each side):")
    line(f"  {'table':<30}{'source':>10}{'target':>10}  checksum")
    for check in report.checks:
        if check.matches:
            verdict = f"{check.source_digest[:12]}  equal"
        else:
            verdict = f"{check.source_digest[:12]} ≠ {check.target_digest[:12]}  DIFFERENT ({check.differing:,} rows)"
        own = f"  (+{check.target_own_rows:,} standard of the target's own)" if check.target_own_rows else ""
        line(f"  {check.table:<30}{check.source_rows:>10,}{check.target_rows:>10,}  {verdict}{own}")
    line()
    failed = [check.table for check in report.checks if not check.matches]
    if not failed:
        line("Verified: the target holds the source's data.")
    elif dry_run:
        line(f"The target differs from the source in {len(failed)} table(s): {', '.join(failed)}.")
    else:
        line(
            f"Verification FAILED in {len(failed)} table(s): {', '.join(failed)}. Was the target "
            "written to during the run? Stop what writes to it and run the command again."
        )
