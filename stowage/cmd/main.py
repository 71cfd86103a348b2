"""The ``stowage`` console command: parse arguments, read config, run a subcommand.

    stowage serve [--config-file FILE]... [--host H] [--port P] [--workers N] [--threads N]
    stowage db upgrade [--config-file FILE]...
    stowage db version [--config-file FILE]...

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
from sqlalchemy.exc import SQLAlchemyError

from stowage.cmd import database, serve
from stowage.conf import DEFAULT_CONFIG_FILES, build_conf


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


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
    return parser


def _run_serve(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    options = conf.stowage
    listen = serve.Listen(
        host=args.host if args.host is not None else options.bind_host,
        port=args.port if args.port is not None else options.bind_port,
        workers=args.workers if args.workers is not None else options.workers,
        threads=args.threads,
    )
    return serve.serve(conf, listen)


def _version() -> str:
    try:
        return metadata.version("stowage")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stowage`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        # An explicit --config-file replaces the default locations, as with
        # upstream's commands; None lets build_conf look in the usual places.
        conf = build_conf(config_files=args.config_file)
    except (cfg.Error, OSError) as error:
        print(f"stowage: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        return args.run(conf, args)
    except SQLAlchemyError as error:
        # An unreachable or misconfigured database is an operator's problem,
        # not a bug: one line, no traceback.
        print(f"stowage: database error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
