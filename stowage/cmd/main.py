"""The ``stowage`` console command: parse arguments, read config, run a subcommand.

    stowage serve [--config-file FILE]... [--host H] [--port P] [--workers N] [--threads N]
    stowage db upgrade [--config-file FILE]...
    stowage db version [--config-file FILE]...
    stowage db import --from UPSTREAM_URL [--config-file FILE]... [TRANSFER OPTIONS]
    stowage db export --to UPSTREAM_URL [--config-file FILE]... [TRANSFER OPTIONS]
    stowage db copy --from URL --to URL [--overwrite] [TRANSFER OPTIONS]
    stowage openapi [--microversion X.Y]
    stowage explain QUERY [--microversion X.Y] [--config-file FILE]...

Without ``--config-file``, the usual files are read if they exist
(``/etc/placement/placement.conf``, ``/etc/stowage/stowage.conf``); with no
file at all every option keeps its default.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from oslo_config import cfg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from stowage import errors
from stowage.api.versions import MAX_VERSION, MIN_VERSION, Version
from stowage.cmd import database, serve, transfer
from stowage.conf import DEFAULT_CONFIG_FILES, build_conf
from stowage.storage.database import DatabaseCannotStore

# argparse names a type in its error by the function's __name__ ("invalid
# _port value"); each of these raises ArgumentTypeError, whose message argparse
# prints as it is, after the option's name.


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0 to 65535): {text!r}")
    return value


def _microversion(text: str) -> Version:
    try:
        version = Version.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a microversion (X.Y): {text!r}") from None
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise argparse.ArgumentTypeError(
            f"{version} is not served (this is {MIN_VERSION} to {MAX_VERSION})"
        )
    return version


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per subcommand."""
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config-file",
        action="append",
        metavar="FILE",
        help="placement.conf-style file to read; repeat for several, later files win "
        f"(default: whichever of {', '.join(DEFAULT_CONFIG_FILES)} exist)",
    )

    parser = argparse.ArgumentParser(
        prog="stowage", description="A drop-in replacement for the OpenStack Placement API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_parser = commands.add_parser(
        "serve",
        parents=[config],
        help="upgrade the database, then serve the API",
        description="Upgrade the database and sync standard names once, then serve the "
        "API with gunicorn worker processes. Options given here override [stowage].",
    )
    serve_parser.add_argument("--host", help="address to listen on ([stowage] bind_host)")
    serve_parser.add_argument("--port", type=_port, help="port to listen on ([stowage] bind_port)")
    serve_parser.add_argument(
        "--workers", type=_positive, help="worker processes ([stowage] workers)"
    )
    serve_parser.add_argument(
        "--threads",
        type=_positive,
        default=serve.DEFAULT_THREADS,
        help="request threads per worker (default: %(default)s)",
    )
    serve_parser.set_defaults(run=_run_serve)

    db_parser = commands.add_parser("db", help="database schema commands")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade_parser = db_commands.add_parser(
        "upgrade",
        parents=[config],
        help="migrate to the newest schema and sync standard resource classes and traits",
    )
    upgrade_parser.set_defaults(run=lambda conf, _args: database.upgrade_command(conf))
    version_parser = db_commands.add_parser(
        "version",
        parents=[config],
        help="print the schema revision; exit status 1 when an upgrade is due",
    )
    version_parser.set_defaults(run=lambda conf, _args: database.version_command(conf))
    _add_transfer_commands(db_commands, config)

    openapi_parser = commands.add_parser(
        "openapi",
        help="print the API's OpenAPI 3.1 description",
        description="Print the OpenAPI 3.1 description of the API at one microversion, as "
        "GET /stowage/openapi.json serves it.",
    )
    openapi_parser.add_argument(
        "--microversion",
        type=_microversion,
        default=MAX_VERSION,
        metavar="X.Y",
        help=f"the microversion to describe, {MIN_VERSION} to {MAX_VERSION} "
        "(default: %(default)s)",
    )
    openapi_parser.set_defaults(run=_run_openapi, config_file=[])

    explain_parser = commands.add_parser(
        "explain",
        parents=[config],
        help="say why an allocation-candidates query finds nothing",
        description="Run a GET /allocation_candidates query string against the configured "
        "database and print how many trees fit and, when none does, why, with the nearest "
        "misses. Exit status 0 when something fits, 1 when nothing does, 2 for a query "
        "the API would refuse.",
    )
    explain_parser.add_argument(
        "query", metavar="QUERY", help="the query string, e.g. 'resources=VCPU:4&required=...'"
    )
    explain_parser.add_argument(
        "--microversion",
        type=_microversion,
        default=MAX_VERSION,
        metavar="X.Y",
        help="the microversion to read the query at (default: %(default)s)",
    )
    explain_parser.set_defaults(run=_run_explain)
    return parser


def _add_transfer_commands(db_commands, config: argparse.ArgumentParser) -> None:
    """``db import``, ``db export`` and ``db copy`` (see ``stowage.cmd.transfer``)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--batch-size",
        type=_positive,
        default=transfer.Options().batch_size,
        metavar="ROWS",
        help="rows per transaction (default: %(default)s)",
    )
    options.add_argument(
        "--pause",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait between batches, to spare a busy database (default: 0)",
    )
    options.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and report what would change, write nothing (exit status 1 if anything would)",
    )
    epilog = (
        "Safe to interrupt and run again: every batch is its own transaction, and a rerun writes "
        "only what is still missing. Ends with a verification of every table (row counts and "
        "checksums); exit status 0 when the target holds the source's data, 1 when it does not, "
        "2 when the command refuses to start."
    )
    import_parser = db_commands.add_parser(
        "import",
        parents=[config, options],
        help="bring an upstream Placement database into Stowage's",
        description="Make Stowage's database ([placement_database] connection) hold what an "
        "openstack-placement 16.0.0 database holds: rows the upstream database no longer has are "
        "deleted, so importing again after more upstream writes brings Stowage up to date.",
        epilog=epilog,
    )
    import_parser.add_argument(
        "--from", dest="source", required=True, metavar="UPSTREAM_URL",
        help="SQLAlchemy URL of the upstream database (as in upstream's placement.conf)",
    )
    import_parser.add_argument(
        "--overwrite",
        action="store_true",
        help="import even though Stowage's database holds writes no import brought in (they "
        "are discarded)",
    )
    import_parser.set_defaults(run=transfer.import_command)
    export_parser = db_commands.add_parser(
        "export",
        parents=[config, options],
        help="write Stowage's data back into an upstream Placement database",
        description="Make an openstack-placement 16.0.0 database (created by its 'placement-manage "
        "db sync') hold what Stowage's database holds, deletions included, so that upstream can "
        "serve it again.",
        epilog=epilog,
    )
    export_parser.add_argument(
        "--to", dest="target", required=True, metavar="UPSTREAM_URL",
        help="SQLAlchemy URL of the upstream database",
    )
    export_parser.set_defaults(run=transfer.export_command)
    copy_parser = db_commands.add_parser(
        "copy",
        parents=[options],
        help="copy a Stowage database to another one, on any backend",
        description="Copy a Stowage database to another (for example the embedded SQLite file "
        "to PostgreSQL or MySQL). The target's schema is created or upgraded as needed. A target holding "
        "data that differs from the source's is refused unless --overwrite; one that holds only "
        "part of the source (an interrupted copy) is completed.",
        epilog=epilog,
    )
    copy_parser.add_argument("--from", dest="source", required=True, metavar="URL",
                             help="SQLAlchemy URL of the Stowage database to copy")
    copy_parser.add_argument("--to", dest="target", required=True, metavar="URL",
                             help="SQLAlchemy URL of the database to copy into")
    copy_parser.add_argument(
        "--overwrite",
        action="store_true",
        help="make a target holding other data a copy of the source anyway (its own rows are "
        "changed or deleted)",
    )
    copy_parser.set_defaults(run=transfer.copy_command, config_file=[])


def _run_serve(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    options = conf.stowage
    listen = serve.Listen(
        host=args.host if args.host is not None else options.bind_host,
        port=args.port if args.port is not None else options.bind_port,
        workers=args.workers if args.workers is not None else options.workers,
        threads=args.threads,
    )
    return serve.serve(conf, listen)


def _run_openapi(_conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    from stowage.api import openapi

    sys.stdout.buffer.write(openapi.document_text(args.microversion))
    return 0


def _run_explain(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    from stowage.cmd import explain

    return explain.explain_command(conf, args.query, args.microversion)


def _version() -> str:
    try:
        return metadata.version("stowage")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stowage`` console script; returns the exit status.

    An operator's mistake ends in one line on stderr, never a traceback: a
    configuration error exits with status 2, a database error with 1.
    """
    args = build_parser().parse_args(argv)
    try:
        # An explicit --config-file replaces the default locations, as with
        # upstream's commands; None lets build_conf look in the usual places.
        conf = build_conf(config_files=args.config_file)
    except (cfg.Error, OSError) as error:
        return _configuration_error(error)
    try:
        return args.run(conf, args)
    except cfg.Error as error:
        # [stowage] state_dir is checked when the database is first opened,
        # so that commands that never open it never fail on it.
        return _configuration_error(error)
    except (SQLAlchemyError, errors.DatabaseUnavailable) as error:
        # An unreachable or misconfigured database is an operator's problem,
        # not a bug: one line, no traceback.
        print(f"stowage: database error: {_database_problem(error)}", file=sys.stderr)
        return 1


def _configuration_error(error: Exception) -> int:
    print(f"stowage: configuration error: {error}", file=sys.stderr)
    return 2


def _database_problem(error: SQLAlchemyError | errors.DatabaseUnavailable) -> str:
    """What went wrong, for the operator: which database, and its own words (first line)."""
    if isinstance(error, DatabaseCannotStore):
        return error.operator_message
    text = str(error)
    cause = error.__cause__
    if isinstance(error, errors.DatabaseUnavailable) and isinstance(cause, DBAPIError):
        text = f"{text} ({cause.orig})"
    return text.strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
