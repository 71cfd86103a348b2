"""Served Stowages and the warning policy for the client suites.

Warnings are errors in these tests, except the few below that the clients
raise about their own internals: each is filtered by its exact message, with
the reason it is not ours to fix.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from tests.clients.served import BACKENDS, ServedStowages

HERE = Path(__file__).parent

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
    import openstackclient.shell  # noqa: F401

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


def pytest_collection_modifyitems(items):
    """Make warnings errors for the client suites, less the filtered ones above."""
    # Later filters take precedence, so "error" comes first.
    policy = pytest.mark.filterwarnings("error", *THIRD_PARTY_WARNINGS)
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(policy)


@pytest.fixture(autouse=True)
def logging_restored():
    """Undo what an in-process ``openstack`` command does to logging.

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
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    for logger, level in levels.items():
        if logger.level != level:  # setLevel clears every logger's cache
            logger.setLevel(level)


@pytest.fixture(scope="session")
def served_stowages(postgresql_url):
    """Boots the services; discards the unused spares when the session ends."""
    stowages = ServedStowages(postgresql_url)
    yield stowages
    stowages.close()


@pytest.fixture(scope="module", params=BACKENDS)
def served_stowage(request, served_stowages):
    """A fresh service per module and backend, on an empty database."""
    served = served_stowages.take(request.param)
    yield served
    served.stop()
