"""``openstack`` commands run in process, and the client warnings tests tolerate.

Shared by the client suites here (noauth2's admin token) and by
tests/keystone (passwords through Keystone's catalog). Commands run the way
osc-placement's own functional suite runs them: a fresh ``OpenStackShell``
per command, about 50 ms, where a new ``openstack`` process costs 2 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# Two warnings come while python-openstackclient is first imported, during
# collection, before any per-test filter applies; importing it here, under
# these filters, takes them once:
# - osc_lib.shell imports osc_lib.version, a module osc-lib 4.x deprecates;
# - openstackclient.common.clientmanager registers every plugin's client
#   (placement's included) through osc-lib's ClientCache, also deprecated.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"The osc_lib\.version module is deprecated", category=DeprecationWarning
    )
    warnings.filterwarnings(
        "ignore",
        message=r"The ClientCache class is deprecated for removal",
        category=DeprecationWarning,
    )
    from openstackclient import shell

LATEST = "1.39"

THIRD_PARTY_WARNINGS = [
    # openstacksdk 4.x warns about its own internals on every call: Resource
    # calls its deprecated _compute_attributes hook, Proxy passes the
    # deprecated service_type argument to itself, and the config loader
    # fills an all-None InfluxDB section that CloudRegion takes as a request
    # for InfluxDB.
    r"ignore:The _compute_attributes method is deprecated:openstack.warnings.RemovedInSDK50Warning",
    r"ignore:The 'service_type' parameter is unnecesary:openstack.warnings.RemovedInSDK50Warning",
    r"ignore:Support for InfluxDB requires the influxdb library:openstack.warnings.RemovedInSDK60Warning",
]
# Warnings are errors, less the filtered ones above (later filters take
# precedence, so "error" comes first).
WARNING_POLICY = pytest.mark.filterwarnings("error", *THIRD_PARTY_WARNINGS)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


class OpenStackCli:
    """Runs ``openstack`` commands in process with the given auth arguments."""

    def __init__(self, auth_arguments: list[str]) -> None:
        self.auth_arguments = auth_arguments

    def arguments(self, command: str, version: str) -> list[str]:
        return [
            *self.auth_arguments,
            "--os-placement-api-version",
            version,
            *command.split(),
        ]

    def run(self, command: str, version: str = LATEST) -> Outcome:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                exit_code = shell.OpenStackShell().run(self.arguments(command, version))
            except SystemExit as exit_:  # argparse exits on bad arguments
                exit_code = exit_.code
        return Outcome(exit_code, stdout.getvalue(), stderr.getvalue())

    def ok(self, command: str, version: str = LATEST) -> str:
        """Run a command that must succeed quietly; return its output."""
        outcome = self.run(command, version)
        assert (outcome.exit_code, outcome.stderr) == (0, ""), f"openstack {command}"
        return outcome.stdout

    def json(self, command: str, version: str = LATEST) -> Any:
        return json.loads(self.ok(command + " -f json", version))


def fresh_client_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every in-process command build its own placement client.

    python-openstackclient registers the placement client once per process
    in a caching descriptor, so a second in-process command would reuse the
    first one's client and microversion. As osc-placement's own suite does,
    the descriptor builds a fresh client on every access instead.
    """
    monkeypatch.setattr(
        "osc_lib.clientmanager.ClientCache.__get__",
        lambda cache, instance, owner: cache.factory(instance),
    )


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what in-process ``openstack`` commands do to logging.

    Every ``OpenStackShell().run`` adds a console handler to the root logger
    and sets loggers to DEBUG. Left alone, a few thousand commands leave
    thousands of handlers behind, each writing every later record of the
    whole test session, and DEBUG on every logger.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    # loggerDict also holds placeholders for dotted names never asked for.
    loggers = [root, *logging.Logger.manager.loggerDict.values()]
    levels = {logger: logger.level for logger in loggers if isinstance(logger, logging.Logger)}
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for logger, level in levels.items():
            if logger.level != level:  # setLevel clears every logger's cache
                logger.setLevel(level)
