"""Start and stop Stowage and upstream Placement the same way.

Both run under gunicorn with the same flags (WORKERS processes of THREADS
threads, gthread), read ``$OS_PLACEMENT_CONFIG_DIR/placement.conf`` with
``[api] auth_strategy = noauth2``, listen on loopback only and keep their data
in their own PostgreSQL database on the local server. Only the WSGI
application, the virtualenv and the ``[placement]``/``[workarounds]`` tuning
differ.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Client, RequestTimedOut

WORKERS = 2
THREADS = 4
KEEP_ALIVE_SECONDS = 120
STOWAGE_APPLICATION = "stowage.wsgi:application"
UPSTREAM_APPLICATION = "placement.wsgi.api:application"

# Upstream's own advice for wide provider trees (placement.conf [placement]
# and [workarounds] help texts).
UPSTREAM_WIDE_TREE_TUNING = {
    "placement": {
        "max_allocation_candidates": "1000",
        "allocation_candidates_generation_strategy": "breadth-first",
    },
    "workarounds": {"optimize_for_wide_provider_trees": "true"},
}

# Stowage's defaults are upstream's; this caps the answer as upstream-tuned does.
STOWAGE_CAPPED = {"placement": {"max_allocation_candidates": "1000"}}


@dataclass(frozen=True)
class PostgreSQL:
    """The local server: ``user`` must have CREATEDB (``bench/run`` grants it)."""

    user: str = "stowage"
    password: str = "stowage"
    host: str = "127.0.0.1"
    port: int = 5432

    def url(self, database: str) -> str:
        # Upstream's usual driver name; Stowage serves the same URL with psycopg 3.
        return (f"postgresql+psycopg2://{self.user}:{self.password}"
                f"@{self.host}:{self.port}/{database}")

    def _admin(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, dbname="postgres", autocommit=True)

    def recreate(self, database: str) -> None:
        """Drop ``database`` if it exists and create it empty."""
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{database}"')

    def analyze(self, database: str) -> None:
        """``VACUUM ANALYZE`` ``database``: after a bulk load, so that the
        runs measured next neither plan without statistics nor share the
        machine with autovacuum catching up."""
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                             dbname=database, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")

    def version(self) -> str:
        with self._admin() as connection:
            return connection.execute("SHOW server_version").fetchone()[0]


@dataclass
class Service:
    """One gunicorn-served Placement implementation."""

    label: str
    virtualenv: Path
    application: str
    database: str
    port: int
    work_dir: Path
    tuning: dict[str, dict[str, str]] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def config_dir(self) -> Path:
        return self.work_dir / "conf" / self.label

    @property
    def is_upstream(self) -> bool:
        return self.application == UPSTREAM_APPLICATION

    def write_config(self, postgresql: PostgreSQL) -> None:
        sections = {
            "DEFAULT": {"debug": "false"},
            "api": {"auth_strategy": "noauth2"},
            "placement_database": {"connection": postgresql.url(self.database)},
            **self.tuning,
        }
        self.config_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for section, options in sections.items():
            lines.append(f"[{section}]")
            lines.extend(f"{name} = {value}" for name, value in options.items())
            lines.append("")
        (self.config_dir / "placement.conf").write_text("\n".join(lines))

    def migrate(self) -> None:
        """Create the schema with each implementation's own command."""
        config_file = str(self.config_dir / "placement.conf")
        if self.is_upstream:
            command = [str(self.virtualenv / "bin" / "placement-manage"),
                       "--config-file", config_file, "db", "sync"]
        else:
            command = [str(self.virtualenv / "bin" / "stowage"), "db", "upgrade",
                       "--config-file", config_file]
        with self._log() as log:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=log)

    @property
    def log_path(self) -> Path:
        return self.work_dir / "logs" / f"{self.label}.log"

    def _log(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "a")

    def start(self, request_timeout: float) -> None:
        """Start gunicorn and wait until every worker answers ``GET /``."""
        command = [
            str(self.virtualenv / "bin" / "python"), "-m", "gunicorn",
            "--workers", str(WORKERS), "--threads", str(THREADS),
            "--worker-class", "gthread",
            # Idle connections stay open while the other services take their
            # turn (gunicorn closes them after 2 s by default), so a query's
            # timed runs reach the worker its warm-up reached.
            "--keep-alive", str(KEEP_ALIVE_SECONDS),
            "--bind", f"127.0.0.1:{self.port}",
            # Only reached when a worker stops heartbeating; runaway requests
            # are ended by restart() instead.
            "--timeout", str(int(request_timeout) + 30),
            "--log-level", "warning",
            self.application,
        ]
        environment = {**os.environ, "OS_PLACEMENT_CONFIG_DIR": str(self.config_dir)}
        with self._log() as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True,
            )
        self._wait_until_serving()

    def _wait_until_serving(self, seconds: float = 90) -> None:
        client = Client(self.port, timeout=30)
        deadline = time.monotonic() + seconds
        answered = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {self.log_path}")
            try:
                # Several answers in a row: both workers have built their app.
                if client.get("/").status == 200:
                    answered += 1
                    if answered >= 4 * WORKERS:
                        return
                    continue
            except (OSError, RequestTimedOut):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not start in {seconds} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Workers may outlive their master for a moment; a new server must
        # not start while an old worker still answers on the port.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    break
            time.sleep(0.2)
        self.process = None

    def restart(self, request_timeout: float) -> None:
        """Stop and start again: ends a request still running after a client timeout."""
        self.stop()
        self.start(request_timeout)

    def worker_memory(self) -> list[dict[str, int]]:
        """VmRSS and VmHWM in KiB of each gunicorn worker (children of the master)."""
        if self.process is None:
            return []
        workers = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                              if ":\t" in line)
            except OSError:
                continue
            if int(fields.get("PPid", "0")) == self.process.pid:
                workers.append({
                    "rss_kib": int(fields["VmRSS"].split()[0]),
                    "hwm_kib": int(fields["VmHWM"].split()[0]),
                })
        return workers
