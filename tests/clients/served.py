"""A real ``stowage serve`` process on a loopback port, for the client suites.

The clients under test (osc-placement, python-openstackclient, openstacksdk)
talk HTTP through keystoneauth and requests, so they get a served Stowage, not
an in-process app: gunicorn, one worker, noauth2, on an empty database of its
own (a fresh SQLite file, or a private PostgreSQL schema).

Booting one takes about 2.5 s, mostly imports. ``ServedStowages`` therefore
keeps one spare per backend booting in the background, and hands it out
when the next test module asks, so the clients' own run time hides the wait
(the last spares are booted for nothing, a few seconds of a spare core).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# The same private, dropped-at-exit schema the in-process PostgreSQL specs use.
from tests.support import _private_postgresql_schema as private_postgresql_schema

BACKENDS = ("sqlite", "postgresql")
BOOT_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0
ADMIN_TOKEN = "admin"  # noauth2's administrator
NOAUTH2_SETTINGS = "[api]\nauth_strategy = noauth2\n"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_section(backend: str, state_dir: Path, postgresql_url: str | None) -> str:
    """The placement.conf lines that give one served Stowage an empty database."""
    if backend == "sqlite":
        return f"[stowage]\nstate_dir = {state_dir}\n"
    if not postgresql_url:
        raise RuntimeError(
            "PostgreSQL client tests need --postgresql-url or STOWAGE_TEST_POSTGRESQL_URL"
        )
    schema_name = private_postgresql_schema(postgresql_url)
    # libpq's "options" puts every connection of the service in the schema.
    separator = "&" if "?" in postgresql_url else "?"
    search_path = quote(f"-csearch_path={schema_name}", safe="")
    return f"[placement_database]\nconnection = {postgresql_url}{separator}options={search_path}\n"


@dataclass
class ServedStowage:
    """One ``stowage serve`` child process; ``endpoint`` is where clients point."""

    backend: str
    port: int
    directory: Path
    process: subprocess.Popen
    log_path: Path
    ready: bool = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return ADMIN_TOKEN

    @classmethod
    def boot(
        cls,
        backend: str,
        postgresql_url: str | None,
        settings: str = NOAUTH2_SETTINGS,
        database: str | None = None,
        workers: int = 1,
    ) -> ServedStowage:
        """Start the process and return at once; ``wait_until_serving`` waits for it.

        ``settings`` are the placement.conf lines besides the database's
        (tests/keystone passes keystone's). ``database``, a connection URL,
        is served as it is instead of a fresh database of ``backend``
        (tests/galera points one service at each node).
        """
        directory = Path(tempfile.mkdtemp(prefix=f"stowage-client-{backend}-"))
        config = directory / "placement.conf"
        if database is None:
            section = database_section(backend, directory / "state", postgresql_url)
        else:
            section = f"[placement_database]\nconnection = {database}\n"
        config.write_text(settings + section)
        port = free_loopback_port()
        log_path = directory / "serve.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stowage.cmd.main",
                    "serve",
                    "--config-file",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group, so stop() can end the workers too.
                process_group=0,
            )
        return cls(backend, port, directory, process, log_path)

    def wait_until_serving(self) -> None:
        """Block until ``GET /`` answers; raise with the service log if it never does."""
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while not self.ready:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"stowage serve exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"stowage serve did not answer in time:\n{self.log()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    connection.request("GET", "/")
                    self.ready = connection.getresponse().status == 200
                finally:
                    connection.close()
            except OSError:
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGINT, then SIGKILL to the process group; then remove its files.

        SIGINT is gunicorn's quick shutdown: a test service has no request
        worth draining, and SIGTERM's graceful stop waits out keep-alive
        connections (about a second per service). A spare still preparing
        its database, before gunicorn takes over the signals, stops on
        Python's KeyboardInterrupt just as well. A worker that does not exit
        on the master's SIGQUIT (seen once) keeps the master waiting for its
        30 s graceful timeout; the group's SIGKILL ends both, where killing
        the master alone would leave the worker running.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.discard()

    def discard(self) -> None:
        """SIGKILL the process group at once and remove the files: for a spare nobody used."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class ServedStowages:
    """Hands out fresh served Stowages, with one booting ahead per backend."""

    def __init__(self, postgresql_url: str | None) -> None:
        self._postgresql_url = postgresql_url
        # Without a URL a PostgreSQL service cannot boot: its tests fail when
        # they ask for one, and the SQLite ones go on without a spare for it.
        self._spare_backends = [b for b in BACKENDS if b == "sqlite" or postgresql_url]
        self._spares: dict[str, ServedStowage] = {}

    def take(self, backend: str) -> ServedStowage:
        """A serving Stowage on an empty ``backend`` database; the caller stops it.

        The next module's service boots while this one's tests run, on
        either backend, since which comes next is pytest's choice.
        """
        served = self._spares.pop(backend, None) or ServedStowage.boot(
            backend, self._postgresql_url
        )
        for spare_backend in self._spare_backends:
            if spare_backend not in self._spares:
                self._spares[spare_backend] = ServedStowage.boot(
                    spare_backend, self._postgresql_url
                )
        served.wait_until_serving()
        return served

    def close(self) -> None:
        for spare in self._spares.values():
            spare.discard()
        self._spares.clear()
