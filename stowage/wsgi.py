"""WSGI entry point for operators who run their own server.

``stowage serve`` is the usual way to run Stowage; this module is for
deployments that already have a WSGI server (uWSGI, mod_wsgi, gunicorn's own
command line)::

    gunicorn --workers 4 --threads 4 -k gthread 'stowage.wsgi:application'
    uwsgi --http-socket 127.0.0.1:8778 --module stowage.wsgi:application

``application`` builds the real app the first time it is called, in the
process that serves the request: importing this module opens nothing, and
each worker gets its own database engine even when the server imports the
module before forking. From then on the worker builds the candidate
engine's read model in the background, ahead of its first candidates
request. ``make_application()`` is the factory behind it, for
servers that call one (``gunicorn 'stowage.wsgi:make_application()'``; do not
combine the factory with ``--preload``, which would share one engine across
forks).

Configuration, as upstream's WSGI script: ``placement.conf`` in the directory
named by ``OS_PLACEMENT_CONFIG_DIR`` if that is set, otherwise the usual
locations (``/etc/placement/placement.conf``, ``/etc/stowage/stowage.conf``).
``[api] auth_strategy`` defaults to keystone here: the zero-config noauth2
default of ``stowage serve`` does not apply, because this module cannot know
which address the server listens on. With ``[placement_database]
sync_on_startup`` (on by default) each process migrates the schema before its
first request; standard resource classes and traits are always synced.

A keystone configuration that cannot validate tokens (``[keystone_authtoken]``
without an auth plugin and its credentials) is logged as critical, once per
process, and every request is answered 503: this module cannot stop the
operator's server, and a 500 per request would hide the cause.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping

from stowage.api import auth
from stowage.api.app import create_app, create_unavailable_app
from stowage.cmd.database import RACING_PROCESS_ATTEMPTS, prepare_database
from stowage.cmd.serve import setup_logging
from stowage.conf import build_conf
from stowage.storage.database import Database

CONFIG_DIR_VARIABLE = "OS_PLACEMENT_CONFIG_DIR"
CONFIG_FILE_NAME = "placement.conf"
NOT_SERVING = "This service's configuration cannot validate tokens; see its log."

LOG = logging.getLogger(__name__)


def config_files_from_environment(
    environ: Mapping[str, str] | None = None,
) -> list[str] | None:
    """``[$OS_PLACEMENT_CONFIG_DIR/placement.conf]``, or None for the usual locations."""
    source = os.environ if environ is None else environ
    directory = source.get(CONFIG_DIR_VARIABLE, "").strip()
    if directory:
        return [os.path.join(directory, CONFIG_FILE_NAME)]
    return None


def make_application(config_files: list[str] | None = None, configure_logging: bool = True):
    """Read the configuration, prepare the database and return the WSGI app.

    ``config_files=None`` follows ``OS_PLACEMENT_CONFIG_DIR`` or the usual
    locations; a list names the files to read (``[]``: none). Logging is set
    up from the configuration's oslo.log options, as ``stowage serve`` does,
    unless ``configure_logging`` is off (a caller that has its own). A
    keystone configuration that cannot validate tokens gives an app
    answering 503, before any database is opened.
    """
    if config_files is None:
        config_files = config_files_from_environment()
    conf = build_conf(config_files=config_files)
    if configure_logging:
        setup_logging(conf)
    try:
        auth.check_auth_config(conf)
    except auth.KeystoneConfigError as refused:
        LOG.critical("Not serving: %s", refused)
        return create_unavailable_app(NOT_SERVING)
    database = Database.from_conf(conf)
    # Every worker of the operator's server runs this, possibly at once.
    prepare_database(
        database,
        migrate=conf.placement_database.sync_on_startup,
        attempts=RACING_PROCESS_ATTEMPTS,
    )
    return create_app(conf, database, prepare_engine=True)


class LazyApplication:
    """A WSGI callable that builds the real app on its first request."""

    def __init__(self, factory: Callable[[], Callable]) -> None:
        self._factory = factory
        self._application: Callable | None = None
        # Threaded servers may deliver several first requests at once.
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        application = self._application
        if application is None:
            with self._lock:
                if self._application is None:
                    self._application = self._factory()
                application = self._application
        return application(environ, start_response)


application = LazyApplication(make_application)
