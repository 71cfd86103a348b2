"""``stowage serve``: prepare the database, then serve the API with gunicorn.

The master process migrates the schema and syncs standard names once; the
workers fork afterwards and each builds its own app and database engine
(``preload_app`` stays off, so no connection is shared across a fork).

Why gunicorn's gthread workers: see docs/decisions.md.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass

from gunicorn.app.base import BaseApplication
from oslo_config import cfg
from oslo_log import log as oslo_log

from stowage.api import auth
from stowage.api.app import create_app
from stowage.cmd.database import prepare_database, schema_version
from stowage.storage.database import Database

WORKER_CLASS = "stowage.cmd.worker.PlacementThreadWorker"
DEFAULT_THREADS = 4

NOAUTH2_WARNING = """\
WARNING: authentication is OFF ([api] auth_strategy = noauth2).
WARNING: any x-auth-token is trusted; 'x-auth-token: admin' has the admin role.
WARNING: listening on loopback only ({address}). Set [api] auth_strategy = keystone
WARNING: and [keystone_authtoken] in a config file before serving anyone else.
"""


class ServeRefused(Exception):
    """The configuration would serve an unsafe or unusable API; the message says why."""


@dataclass(frozen=True)
class Listen:
    """Where and how ``stowage serve`` listens: the config after CLI overrides."""

    host: str
    port: int
    workers: int
    threads: int = DEFAULT_THREADS

    @property
    def address(self) -> str:
        """``host:port`` as gunicorn's ``bind`` wants it (IPv6 in brackets)."""
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address.

    A name is resolved; one that resolves to nothing, or to any
    non-loopback address, is not loopback. The empty host (all interfaces)
    is not loopback.
    """
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    # IPv6 answers may carry a scope ("fe80::1%eth0").
    addresses = {str(info[4][0]).split("%")[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def uses_embedded_default(conf: cfg.ConfigOpts) -> bool:
    """True when no config file was read and nothing set ``[api] auth_strategy``.

    Only then does ``stowage serve`` pick noauth2 on its own. A placement.conf
    that says nothing about auth_strategy means keystone, as it did upstream:
    such a file may well sit behind a proxy on loopback, where switching
    authentication off silently would open the API to everyone.
    """
    if conf.config_file or conf.config_dir:
        return False
    location = conf.get_location("auth_strategy", group="api")
    return location is not None and location.location == cfg.Locations.opt_default


def check_auth_for_bind(auth_strategy: str, host: str) -> None:
    """Raise ``ServeRefused`` if ``auth_strategy`` must not listen on ``host``.

    noauth2 trusts any token, so it is served on loopback addresses only.
    """
    if auth_strategy == "noauth2" and not is_loopback(host):
        raise ServeRefused(
            f"refusing to serve [api] auth_strategy = noauth2 on {host!r}: noauth2 trusts "
            "any x-auth-token, so it listens on loopback addresses only (127.0.0.1, ::1, "
            "localhost). Use auth_strategy = keystone to serve other hosts."
        )


def check_auth_settings(conf: cfg.ConfigOpts) -> None:
    """Raise ``ServeRefused`` if the auth strategy's settings cannot work:
    keystone with a ``[keystone_authtoken]`` that cannot validate tokens
    would answer every request with an error."""
    try:
        auth.check_auth_config(conf)
    except auth.KeystoneConfigError as error:
        raise ServeRefused(f"refusing to start: {error}") from None


def resolve_auth(conf: cfg.ConfigOpts, host: str) -> str:
    """Settle the auth strategy for listening on ``host``; return it.

    Applies the zero-config default (noauth2 on loopback), then refuses
    unsafe combinations.
    """
    if uses_embedded_default(conf) and is_loopback(host):
        conf.set_default("auth_strategy", "noauth2", group="api")
    strategy = conf.api.auth_strategy
    check_auth_for_bind(strategy, host)
    return strategy


class GunicornServer(BaseApplication):
    """gunicorn driven as a library: our settings only, no gunicorn CLI or config file."""

    def __init__(self, conf: cfg.ConfigOpts, settings: dict) -> None:
        self._conf = conf
        self._settings = settings
        # Read by the worker (stowage.cmd.worker) for each request's head.
        self.client_timeout: float = conf.stowage.client_timeout
        super().__init__(prog="stowage serve")

    def load_config(self) -> None:
        for name, value in self._settings.items():
            self.cfg.set(name, value)
        # gunicorn 25.1+ opens a control socket at one fixed path per user, so
        # two services on one host would fight over it; stowage does not use it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self):
        # Called in each worker after the fork: every worker gets its own
        # engine, connection pool and read model.
        return create_app(self._conf, prepare_engine=True)


def gunicorn_settings(listen: Listen, worker_class: str = WORKER_CLASS) -> dict:
    """gunicorn's settings for ``listen``; ``worker_class`` is a parameter for bench/."""
    return {
        "bind": [listen.address],
        "workers": listen.workers,
        "worker_class": worker_class,
        "threads": listen.threads,
        "proc_name": "stowage",
        # Each worker opens its own database engine in load().
        "preload_app": False,
        "errorlog": "-",
        # The longest request line gunicorn reads (its maximum; 4094 by
        # default): room for about 200 aggregate uuids in one query.
        "limit_request_line": 8190,
        "limit_request_field_size": 8190,
    }


def setup_logging(conf: cfg.ConfigOpts) -> None:
    """Logging as placement.conf's oslo.log options say (``[DEFAULT] debug``,
    ``log_file``, ``log_dir``, ``use_json``, ``log_config_append``...), as
    upstream's service reads them: without a file, to standard output.
    Set up before gunicorn forks, so every worker inherits it."""
    oslo_log.setup(conf, "stowage", fix_eventlet=False)


def share_metrics_between_workers() -> str:
    """Set up prometheus_client's multiprocess mode for gunicorn's workers:
    a private, empty directory in ``PROMETHEUS_MULTIPROC_DIR`` (which the
    workers inherit; prometheus_client reads nothing else), where each
    worker keeps its counters and ``GET /metrics`` sums them. Returns it;
    the caller removes it when gunicorn stops."""
    # A fresh directory each start: counts of an earlier run never add in.
    directory = tempfile.mkdtemp(prefix="stowage-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    # prometheus_client picks how to keep values when it is first imported,
    # which Stowage's imports may have done before this directory existed.
    values.ValueClass = values.get_value_class()
    return directory


def worker_exited(server, worker) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges go with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def serve(conf: cfg.ConfigOpts, listen: Listen) -> int:
    """Check, prepare the database, then run gunicorn until it is stopped."""
    try:
        strategy = resolve_auth(conf, listen.host)
        # Before the database and the bind: a refused start leaves nothing behind.
        check_auth_settings(conf)
    except ServeRefused as refused:
        print(f"stowage serve: {refused}", file=sys.stderr)
        return 2
    # Before the banner: a state_dir that cannot hold the database is a
    # configuration error (ConfigurationError), reported alone.
    database = Database.from_conf(conf)
    if strategy == "noauth2":
        sys.stderr.write(NOAUTH2_WARNING.format(address=listen.address))
    else:
        print(
            "stowage serve: [api] auth_strategy = keystone; tokens are validated "
            "as configured in [keystone_authtoken]",
            file=sys.stderr,
        )
    sys.stderr.flush()

    setup_logging(conf)
    try:
        migrate = conf.placement_database.sync_on_startup
        if not migrate and not schema_version(database).is_current:
            print(
                "stowage serve: the database schema is not current and "
                "[placement_database] sync_on_startup is off; run 'stowage db upgrade'",
                file=sys.stderr,
            )
            return 1
        prepare_database(database, migrate=migrate)
    finally:
        # Nothing opened here may be inherited by the workers.
        database.dispose()

    metrics_dir = share_metrics_between_workers()
    try:
        settings = {**gunicorn_settings(listen), "child_exit": worker_exited}
        GunicornServer(conf, settings).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
