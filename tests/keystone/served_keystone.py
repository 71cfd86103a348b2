"""A real Keystone on a loopback port: the ``keystone`` package, SQLite, fernet tokens.

``ServedKeystone.start`` writes a keystone.conf in a directory of its own,
runs ``keystone-manage`` (``db_sync``, ``fernet_setup`` and
``credential_setup`` at once, then ``bootstrap``) and serves Keystone's WSGI
app with gunicorn through ``tests.keystone.keystone_wsgi``. Every Keystone
process is a child process: Keystone emits warnings of its own (eventlet's
deprecation, pycadf's identifiers), which would be errors inside pytest,
and it reads ``sys.argv`` and global config when imported.

``IdentityApi`` is the little of Keystone's v3 API the suite needs, over
plain HTTP: tokens, projects, users, role assignments, the catalog. Every
wait is bounded by a ``Deadline`` and every request by a timeout, so a
Keystone that hangs fails the suite in bounded time.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from gunicorn.config import Config as GunicornConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "RegionOne"
DOMAIN = "Default"
REQUEST_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0

KEYSTONE_CONF = """\
[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///{directory}/keystone.sqlite

[token]
provider = fernet

[fernet_tokens]
key_repository = {directory}/fernet-keys

[fernet_receipts]
key_repository = {directory}/receipt-keys

[credential]
key_repository = {directory}/credential-keys

[identity]
# bcrypt's fewest rounds: a test cloud's passwords need no slow hash, and
# every password login (each CLI command makes one) pays for it.
password_hash_rounds = 4
"""


class Deadline:
    """A point in time that the suite's setup must finish by."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def remaining(self, what: str) -> float:
        """Seconds left; raises ``TimeoutError`` naming ``what`` if none are."""
        left = self._at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"out of time while {what}")
        return left


@dataclass
class ServedKeystone:
    """Keystone's files and its gunicorn process; ``url`` is the v3 endpoint."""

    directory: Path
    port: int
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.directory / "keystone.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def config_path(self) -> Path:
        return self.directory / "keystone.conf"

    def start(self, admin_password: str, deadline: Deadline) -> None:
        """Create Keystone's database and keys, bootstrap its admin, then serve it."""
        self.config_path.write_text(KEYSTONE_CONF.format(directory=self.directory))
        # The key repositories belong to whoever runs the tests (Keystone 30
        # wants both flags).
        owner = [
            "--keystone-user",
            pwd.getpwuid(os.getuid()).pw_name,
            "--keystone-group",
            grp.getgrgid(os.getgid()).gr_name,
        ]
        # Three independent steps: the database, and two key repositories.
        self._manage_all([["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner]], deadline)
        self._manage_all(
            [
                [
                    "bootstrap",
                    f"--bootstrap-password={admin_password}",
                    "--bootstrap-region-id",
                    REGION,
                    "--bootstrap-admin-url",
                    self.url,
                    "--bootstrap-internal-url",
                    self.url,
                    "--bootstrap-public-url",
                    self.url,
                ]
            ],
            deadline,
        )
        self._serve()
        self._wait_until_serving(deadline)

    def _manage_all(self, commands: list[list[str]], deadline: Deadline) -> None:
        """Run ``keystone-manage`` commands side by side; raise with the log if one fails."""
        running = []
        with open(self.log_path, "ab") as log:
            for command in commands:
                running.append(
                    (
                        command[0],
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                "from keystone.cmd.manage import main; main()",
                                "--config-file",
                                str(self.config_path),
                                *command,
                            ],
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        ),
                    )
                )
        failed = []
        for name, process in running:
            try:
                status = process.wait(timeout=deadline.remaining(f"keystone-manage {name}"))
            except (subprocess.TimeoutExpired, TimeoutError):
                process.kill()
                process.wait()
                status = "timed out"
            if status != 0:
                failed.append(f"{name}: {status}")
        if failed:
            raise RuntimeError(f"keystone-manage failed ({', '.join(failed)}):\n{self.log()}")

    def _serve(self) -> None:
        arguments = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--chdir",
            str(REPO_ROOT),
            "tests.keystone.keystone_wsgi:application",
        ]
        # gunicorn 25.1+ opens a control socket at one fixed path per user,
        # which a second service on the machine (any Stowage) would fight over.
        if "control_socket_disable" in GunicornConfig().settings:
            arguments.insert(3, "--no-control-socket")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                arguments,
                env={**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.config_path)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group, so stop() ends the worker too.
                process_group=0,
            )

    def _wait_until_serving(self, deadline: Deadline) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Keystone exited with {self.process.returncode}:\n{self.log()}")
            try:
                deadline.remaining("waiting for Keystone to serve")
            except TimeoutError as error:
                raise RuntimeError(f"{error}:\n{self.log()}") from None
            try:
                if requests.get(self.url, timeout=REQUEST_TIMEOUT_SECONDS).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGINT (gunicorn's quick shutdown), then SIGKILL to the group; remove the files."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class Account:
    """A Keystone user who logs in with a password, scoped to ``project`` (or the system)."""

    name: str
    password: str
    project: str | None

    def password_identity(self) -> dict[str, Any]:
        return {
            "methods": ["password"],
            "password": {
                "user": {"name": self.name, "domain": {"name": DOMAIN}, "password": self.password}
            },
        }


@dataclass(frozen=True)
class Token:
    """A token Keystone issued, with the body that says whose it is."""

    id: str
    body: dict[str, Any]

    @property
    def roles(self) -> list[str]:
        return sorted(role["name"] for role in self.body["roles"])

    @property
    def project_id(self) -> str | None:
        project = self.body.get("project")
        return project["id"] if project else None

    @property
    def user_id(self) -> str:
        return self.body["user"]["id"]

    @property
    def system_scoped(self) -> bool:
        return "system" in self.body


class IdentityApi:
    """The parts of Keystone's v3 API the suite needs, over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def issue_token(self, account: Account, system_scope: bool = False) -> Token:
        """``POST /auth/tokens`` with ``account``'s password (201, token in X-Subject-Token)."""
        scope: dict[str, Any] = (
            {"system": {"all": True}}
            if system_scope
            else {"project": {"name": account.project, "domain": {"name": DOMAIN}}}
        )
        answer = self._http.post(
            f"{self.url}/auth/tokens",
            json={"auth": {"identity": account.password_identity(), "scope": scope}},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        assert answer.status_code == 201, answer.text
        return Token(answer.headers["x-subject-token"], answer.json()["token"])

    def revoke(self, by: Token, token: Token) -> None:
        """``DELETE /auth/tokens``: ``token`` is no good from now on."""
        answer = self._http.delete(
            f"{self.url}/auth/tokens",
            headers={"x-auth-token": by.id, "x-subject-token": token.id},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        assert answer.status_code == 204, answer.text

    def call(self, by: Token, method: str, path: str, body: dict | None = None) -> dict:
        answer = self._http.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"x-auth-token": by.id},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        assert answer.status_code in (200, 201, 204), f"{method} {path}: {answer.text}"
        return answer.json() if answer.content else {}

    def create_project(self, by: Token, name: str) -> str:
        created = self.call(by, "POST", "/projects", {"project": {"name": name, "domain_id": "default"}})
        return created["project"]["id"]

    def create_user(self, by: Token, account: Account, role: str) -> str:
        """Create ``account`` with ``role`` on its project; return the user's id."""
        created = self.call(
            by,
            "POST",
            "/users",
            {"user": {"name": account.name, "password": account.password, "domain_id": "default"}},
        )
        user_id = created["user"]["id"]
        project_id = self.call(by, "GET", f"/projects?name={account.project}")["projects"][0]["id"]
        role_id = self.call(by, "GET", f"/roles?name={role}")["roles"][0]["id"]
        self.call(by, "PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")
        return user_id

    def register_service(self, by: Token, service_type: str, url: str) -> None:
        """Put a service in the catalog, with public and internal endpoints at ``url``."""
        service = self.call(
            by, "POST", "/services", {"service": {"type": service_type, "name": service_type}}
        )
        for interface in ("public", "internal"):
            self.call(
                by,
                "POST",
                "/endpoints",
                {
                    "endpoint": {
                        "service_id": service["service"]["id"],
                        "interface": interface,
                        "url": url,
                        "region_id": REGION,
                    }
                },
            )
