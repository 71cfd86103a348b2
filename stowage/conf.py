"""Configuration: the option groups of upstream's ``placement.conf``.

Operators keep their existing file: ``[placement_database]``, ``[api]``,
``[placement]``, ``[workarounds]``, ``[oslo_policy]``, ``[cors]`` and
``[keystone_authtoken]`` mean what they meant upstream. Stowage's own
settings (how ``stowage serve`` listens) live in ``[stowage]``. Every option
has a default, so no file is needed at all.
"""
from __future__ import annotations

import os
from pathlib import Path

from keystonemiddleware import opts as keystone_opts
from oslo_config import cfg
from oslo_middleware import cors
from oslo_policy import opts as policy_opts

INCOMPLETE_CONSUMER_ID = "00000000-0000-0000-0000-000000000000"

DEFAULT_CONFIG_FILES = ["/etc/placement/placement.conf", "/etc/stowage/stowage.conf"]

_database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of the database. Empty means the embedded SQLite "
        "file under [stowage] state_dir.",
    ),
    cfg.BoolOpt(
        "sync_on_startup",
        default=True,
        help="Run schema migrations and sync standard resource classes and "
        "traits when the service starts.",
    ),
    cfg.IntOpt("max_pool_size", default=10, help="Connections kept per worker."),
    cfg.IntOpt("max_overflow", default=20, help="Extra connections per worker."),
    cfg.IntOpt("pool_timeout", default=30, help="Seconds to wait for a connection."),
    cfg.IntOpt(
        "connection_recycle_time", default=3600, help="Seconds before a connection is replaced."
    ),
]

_api_opts = [
    cfg.StrOpt(
        "auth_strategy",
        default="keystone",
        choices=("keystone", "noauth2"),
        help="keystone validates tokens with keystonemiddleware; noauth2 trusts "
        "the x-auth-token header (tests and loopback-only use).",
    ),
]

_placement_opts = [
    cfg.BoolOpt(
        "randomize_allocation_candidates",
        default=False,
        help="Shuffle allocation candidates before applying limit.",
    ),
    cfg.StrOpt(
        "incomplete_consumer_project_id",
        default=INCOMPLETE_CONSUMER_ID,
        help="Project given to consumers created before microversion 1.8.",
    ),
    cfg.StrOpt(
        "incomplete_consumer_user_id",
        default=INCOMPLETE_CONSUMER_ID,
        help="User given to consumers created before microversion 1.8.",
    ),
    cfg.IntOpt(
        "allocation_conflict_retry_count",
        default=10,
        help="Server-side retries of an allocation write that lost a generation race.",
    ),
    cfg.IntOpt(
        "max_allocation_candidates",
        default=-1,
        help="Most candidates generated per request before limit is applied; "
        "-1 means no bound (as upstream).",
    ),
    cfg.StrOpt(
        "allocation_candidates_generation_strategy",
        default="depth-first",
        choices=("depth-first", "breadth-first"),
        help="With max_allocation_candidates: exhaust each root in turn "
        "(depth-first) or take candidates from every root in turn (breadth-first).",
    ),
]

_workarounds_opts = [
    cfg.BoolOpt(
        "optimize_for_wide_provider_trees",
        default=False,
        help="Accepted for compatibility; Stowage handles wide trees by design.",
    ),
]

_stowage_opts = [
    cfg.StrOpt("bind_host", default="127.0.0.1", help="Address stowage serve listens on."),
    cfg.PortOpt("bind_port", default=8778, help="Port stowage serve listens on."),
    cfg.IntOpt("workers", default=2, min=1, help="Worker processes of stowage serve."),
    cfg.StrOpt(
        "state_dir",
        default=os.path.join(
            os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share"),
            "stowage",
        ),
        help="Directory of the embedded SQLite database.",
    ),
    cfg.StrOpt(
        "candidate_engine",
        default="fast",
        choices=["reference", "fast"],
        help="Allocation candidate engine: 'reference' loads the trees in play per "
        "request; 'fast' keeps an in-memory read model of every provider per worker, "
        "reloaded when the data changes.",
    ),
    cfg.BoolOpt(
        "spread_limited_candidates",
        default=False,
        help="With the fast engine, answer a request with a limit (and without "
        "[placement] randomize_allocation_candidates) from a different part of the "
        "cloud each time: each worker resumes its scan of the compute trees where its "
        "last limited answer ended, starting from a random tree. Schedulers asking the "
        "same question at once are then handed different candidates instead of racing "
        "for the first ones (fewer 409s on claims), at no extra cost. Every answer is "
        "still a valid set of candidates, but not upstream's first ones; off by "
        "default, so that answers stay exactly upstream's.",
    ),
    cfg.IntOpt(
        "max_request_body_size",
        default=1048576,
        min=0,
        help="Largest request body accepted, in bytes (0: no limit); larger ones are "
        "answered 413 before they are read. The largest bodies Placement's clients "
        "send (reshapes, POST /allocations for many consumers) are tens of KiB.",
    ),
    cfg.FloatOpt(
        "client_timeout",
        default=10.0,
        min=0,
        help="Seconds a client may pause while sending a request (its line and headers, "
        "or its body) before it is answered 408 and disconnected (0: wait for ever). A "
        "stalled client holds one of a worker's request threads while it waits.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option Stowage reads on ``conf``."""
    conf.register_opts(_database_opts, group="placement_database")
    conf.register_opts(_api_opts, group="api")
    conf.register_opts(_placement_opts, group="placement")
    conf.register_opts(_workarounds_opts, group="workarounds")
    conf.register_opts(_stowage_opts, group="stowage")
    conf.register_opts(cors.CORS_OPTS, group="cors")
    policy_opts.set_defaults(conf)
    # [keystone_authtoken]: registered up front so it can be read and
    # overridden before the middleware exists (it adds its plugin options later).
    for group, options in keystone_opts.list_auth_token_opts():
        conf.register_opts(options, group=group)


def build_conf(
    argv: list[str] | None = None, config_files: list[str] | None = None
) -> cfg.ConfigOpts:
    """Return a fresh, parsed ``ConfigOpts``.

    ``config_files=None`` reads the default locations that exist;
    ``[]`` reads no file (tests).
    """
    conf = cfg.ConfigOpts()
    register_opts(conf)
    if config_files is None:
        config_files = [path for path in DEFAULT_CONFIG_FILES if os.path.exists(path)]
    conf(argv or [], project="placement", default_config_files=config_files)
    return conf


# URL schemes of existing placement.conf files → the driver Stowage uses for them.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mysql+mysqldb": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mariadb+mysqldb": "mariadb+pymysql",
}


def database_url(conf: cfg.ConfigOpts) -> str:
    """The configured database URL, or the embedded SQLite default."""
    url = conf.placement_database.connection
    if url:
        # Operators' files say postgresql:// or postgresql+psycopg2://;
        # Stowage speaks psycopg 3. mysql:// and mysql+mysqldb:// name
        # mysqlclient, which needs a C library; Stowage speaks PyMySQL
        # (docs/decisions.md).
        scheme, separator, rest = url.partition("://")
        driver = _DRIVERS.get(scheme)
        if driver and separator:
            url = f"{driver}://{rest}"
        return url
    state_dir = conf.stowage.state_dir
    os.makedirs(state_dir, exist_ok=True)
    return "sqlite:///" + os.path.join(state_dir, "placement.sqlite")
