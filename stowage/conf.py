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
from oslo_config import cfg, types
from oslo_log import log as oslo_log
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
    cfg.FloatOpt(
        "slow_request_seconds",
        default=5.0,
        min=0,
        help="Requests taking longer than this many seconds are logged at WARNING as "
        "'slow request' instead of at INFO (0: never).",
    ),
]

# Health and metrics (GET /healthcheck, GET /metrics): stowage/api/handlers/health.py
# and metrics.py.
METRICS_ACCESS = ("admin", "anyone", "nobody")

_metrics_opts = [
    cfg.StrOpt(
        "metrics_access",
        default="admin",
        choices=METRICS_ACCESS,
        help="Who may read GET /metrics (Prometheus' text format): 'admin', callers "
        "whose token passes the admin_api policy rule; 'anyone', also callers without "
        "a token (for a scraper on a trusted network); 'nobody', the path answers 404.",
    ),
]


class ConfigurationError(cfg.Error):
    """A configured value Stowage cannot use; the message names the option and the value.

    A ``cfg.Error``, so that whoever reports oslo.config's own errors (a
    missing or malformed file) reports these the same way.
    """


def _option_groups() -> list[tuple[str, list[cfg.Opt]]]:
    """Every option Stowage registers, by group."""
    return [
        ("placement_database", _database_opts),
        ("api", _api_opts),
        ("placement", _placement_opts),
        ("workarounds", _workarounds_opts),
        ("stowage", _stowage_opts),
        ("stowage", _metrics_opts),
        ("cors", cors.CORS_OPTS),
        *policy_opts.list_opts(),
        # [keystone_authtoken]: registered up front so it can be read and
        # overridden before the middleware exists (it adds its plugin options later).
        *keystone_opts.list_auth_token_opts(),
    ]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option Stowage reads on ``conf``."""
    for group, options in _option_groups():
        conf.register_opts(options, group=group)
    policy_opts.set_defaults(conf)
    # [DEFAULT] debug, log_file, log_dir, use_json, log_config_append...: upstream's.
    oslo_log.register_options(conf)


def build_conf(
    argv: list[str] | None = None, config_files: list[str] | None = None
) -> cfg.ConfigOpts:
    """Return a fresh, parsed ``ConfigOpts`` whose every value is valid.

    ``config_files=None`` reads the default locations that exist;
    ``[]`` reads no file (tests). Raises ``ConfigurationError`` for the first
    value that is not valid for its option.
    """
    conf = cfg.ConfigOpts()
    register_opts(conf)
    if config_files is None:
        config_files = [path for path in DEFAULT_CONFIG_FILES if os.path.exists(path)]
    conf(argv or [], project="placement", default_config_files=config_files)
    check_values(conf)
    return conf


def check_values(conf: cfg.ConfigOpts) -> None:
    """Read every registered option once; raise ``ConfigurationError`` for the first bad value.

    oslo.config converts a value when it is first read, so without this a
    mistake in the file would surface as a traceback whenever some request
    first reads that option, long after the service started. Every option
    registered on ``conf`` is read, those of the libraries ([DEFAULT]...) too.
    """
    for key in list(conf):
        try:
            value = conf[key]
        except cfg.ConfigSourceValueError as error:
            raise _invalid("DEFAULT", key, conf, error) from None
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for name in list(value):
                try:
                    value[name]
                except cfg.ConfigSourceValueError as error:
                    raise _invalid(key, name, conf, error) from None


def _invalid(
    group: str, name: str, conf: cfg.ConfigOpts, error: cfg.ConfigSourceValueError
) -> ConfigurationError:
    """``[group] name = value: why``, for oslo.config's ``error`` reading that option."""
    known = {(section, option.dest): option for section, options in _option_groups() for option in options}
    option = known.get((group, name))
    raw = _raw_value(conf, group, option.name if option else name)
    # The converter's own words are the context of oslo.config's error.
    reason = str(error.__context__ or error)
    if option is not None:
        reason = _why_invalid(option, reason)
    shown = f" = {raw}" if raw is not None else ""
    return ConfigurationError(f"[{group}] {option.name if option else name}{shown}: {reason}")


def _raw_value(conf: cfg.ConfigOpts, group: str, name: str) -> str | None:
    """The text the config files give ``[group] name`` (the last file that sets it wins)."""
    paths = list(conf.config_file or [])
    if conf.config_dir:
        paths += sorted(
            os.path.join(conf.config_dir, entry)
            for entry in os.listdir(conf.config_dir)
            if entry.endswith(".conf")
        )
    value = None
    for path in paths:
        sections: dict[str, dict[str, list[str]]] = {}
        cfg.ConfigParser(path, sections).parse()
        values = sections.get(group, {}).get(name)
        if values:
            value = values[-1]
    return value


def _why_invalid(option: cfg.Opt, converter_says: str) -> str:
    """Why a value is not one of ``option``'s, in the words of its type."""
    kind = option.type
    choices = getattr(kind, "choices", None)
    if choices:
        return f"not one of {', '.join(str(choice) for choice in choices)}"
    if isinstance(kind, types.Boolean):
        return "not a boolean (true or false)"
    if isinstance(kind, types.Port):
        return f"not a TCP port ({kind.min} to {kind.max})"
    if isinstance(kind, types.Number):
        number = "an integer" if isinstance(kind, types.Integer) else "a number"
        if kind.min is not None and kind.max is not None:
            return f"not {number} from {kind.min} to {kind.max}"
        if kind.min is not None:
            return f"not {number} of at least {kind.min}"
        if kind.max is not None:
            return f"not {number} of at most {kind.max}"
        return f"not {number}"
    return converter_says


# URL schemes of existing placement.conf files → the driver Stowage uses for them.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mysql+mysqldb": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mariadb+mysqldb": "mariadb+pymysql",
}


def database_url(conf: cfg.ConfigOpts, create_state_dir: bool = True) -> str:
    """The configured database URL, or the embedded SQLite default.

    For the embedded default, ``[stowage] state_dir`` is created unless
    ``create_state_dir`` is false (readers that must leave nothing behind).
    Raises ``ConfigurationError`` when the state_dir cannot hold the database.
    """
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
    if create_state_dir:
        _make_state_dir(state_dir)
    elif os.path.exists(state_dir) and not os.path.isdir(state_dir):
        raise ConfigurationError(f"[stowage] state_dir = {state_dir}: not a directory")
    return "sqlite:///" + os.path.join(state_dir, "placement.sqlite")


def _make_state_dir(state_dir: str) -> None:
    """Create ``state_dir`` if need be; raise ``ConfigurationError`` unless it is a
    directory the database file (and SQLite's journal beside it) can be written in."""
    try:
        os.makedirs(state_dir, exist_ok=True)
    except FileExistsError:
        raise ConfigurationError(f"[stowage] state_dir = {state_dir}: not a directory") from None
    except OSError as error:
        raise ConfigurationError(
            f"[stowage] state_dir = {state_dir}: cannot be created ({error.strerror})"
        ) from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise ConfigurationError(f"[stowage] state_dir = {state_dir}: not writable")
