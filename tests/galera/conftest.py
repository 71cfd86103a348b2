"""A Galera cluster and one served Stowage per node, for the whole module.

Drawing::

    Stowage A (2 workers) ─┐
    Stowage B (2 workers) ─┼─ Galera: node1 ═ node2 ═ node3   (127.0.0.1:3407/3417/3427)
    Stowage C (2 workers) ─┘   A→node1, B→node2, C→node3; every node takes writes

The cluster needs Debian's mariadb-server and galera-4 and runs as root
(its datadirs belong to ``mysql``); ``.ci/test`` installs both. Without
them these tests fail: a missing cluster is never taken for a pass.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.client import Client
from tests.clients.served import ServedStowage
from tests.galera.cluster import Cluster

WORKERS_PER_NODE = 2
REQUEST_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="stowage-galera-"))
    galera = Cluster(root)
    try:
        galera.start()
        yield galera
    finally:
        galera.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def services(cluster: Cluster) -> Iterator[list[ServedStowage]]:
    """One ``stowage serve`` per node. The first migrates the schema (DDL
    replicates to every node); the others start once it answers."""
    served: list[ServedStowage] = []
    try:
        for url in cluster.urls:
            service = ServedStowage.boot("mysql", None, database=url, workers=WORKERS_PER_NODE)
            served.append(service)
            service.wait_until_serving()
        yield served
    finally:
        for service in served:
            service.stop()


@pytest.fixture(scope="module")
def clients(services: list[ServedStowage]) -> Iterator[list[Client]]:
    connected = [Client(service.port, REQUEST_TIMEOUT_SECONDS) for service in services]
    yield connected
    for client in connected:
        client.close()
