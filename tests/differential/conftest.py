"""Fixtures of the differential test: upstream services, seeds and steps."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import server_urls
from tests.differential.runner import parse_seeds
from tests.differential.services import UpstreamService


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = parse_seeds(metafunc.config.getoption("differential_seeds"))
        metafunc.parametrize("seed", seeds, ids=[f"seed{seed}" for seed in seeds])


@pytest.fixture(scope="session")
def steps(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("differential_steps"))


@pytest.fixture(scope="session")
def upstream_services() -> Iterator[dict[str, UpstreamService]]:
    """Upstream Placement per backend, started on first use, stopped at the end."""
    services: dict[str, UpstreamService] = {}
    yield services
    for service in services.values():
        service.stop()


@pytest.fixture
def upstream(request: pytest.FixtureRequest, upstream_services: dict[str, UpstreamService]) -> UpstreamService:
    """Upstream on the backend the test's ``database`` fixture is on."""
    backend = request.node.callspec.params["database"]
    if backend not in upstream_services:
        upstream_services[backend] = UpstreamService(backend, server_urls(request.config).get(backend))
    return upstream_services[backend]
