"""Stowage on a three-node Galera cluster, every node taking writes.

Claims race across the nodes (each node's own Stowage answers both the
candidates and the claim): Galera's certification failures are retried, no
provider is over-committed, no successful claim is lost, and every node's
Stowage sees every other node's writes on its very next request.
"""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from bench.client import Client
from bench.measure import claim, expect, providers_over_capacity
from bench.scenarios import Query
from stowage.storage.backends import backend_for
from tests.galera.cluster import Cluster

COMPUTES = 12
VCPUS_PER_COMPUTE = 8
CAPACITY = COMPUTES * VCPUS_PER_COMPUTE
CLAIMERS = 9  # three per node
ONE_VCPU = Query("one vcpu", "a claim of one VCPU", "resources=VCPU:1&limit=5")


def create_computes(client: Client, prefix: str, count: int, vcpus: int) -> list[str]:
    providers = []
    for number in range(count):
        provider = str(uuid.uuid4())
        expect(client.post("/resource_providers", {"uuid": provider, "name": f"{prefix}-{number}"}),
               "create a compute node", 200)
        expect(client.put(f"/resource_providers/{provider}/inventories", {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": vcpus}},
        }), "set its VCPU", 200)
        providers.append(provider)
    return providers


def certification_conflicts(cluster: Cluster) -> int:
    """Local certification failures and brute-force aborts, summed over nodes."""
    total = 0
    for node in cluster.nodes:
        status = cluster.sql(node, "SHOW STATUS WHERE Variable_name IN "
                                   "('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')")
        total += sum(int(line.split("\t")[1]) for line in status.splitlines())
    return total


def test_claims_racing_across_nodes_fill_capacity_exactly_and_lose_nothing(cluster, clients):
    computes = create_computes(clients[0], "race", COMPUTES, VCPUS_PER_COMPUTE)
    conflicts_before = certification_conflicts(cluster)

    result = claim(clients, ONE_VCPU, target=CAPACITY * 2, seed=11, claimers=CLAIMERS)

    assert result.outcome == "candidates ran out"
    assert result.claims == CAPACITY
    for client in clients:
        assert providers_over_capacity(client, set(computes)) == []
        usages = [expect(client.get(f"/resource_providers/{provider}/usages"), "usages", 200)
                  .body["usages"]["VCPU"] for provider in computes]
        assert usages == [VCPUS_PER_COMPUTE] * COMPUTES
    for number, consumer in enumerate(result.consumers):
        allocations = expect(clients[number % 3].get(f"/allocations/{consumer}"), "a claim", 200)
        assert sum(entry["resources"]["VCPU"]
                   for entry in allocations.body["allocations"].values()) == 1
    # Not asserted (it depends on timing): how often Galera refused a commit.
    print(f"\n{result.claims} claims in {result.seconds:.1f} s ({result.per_second:.1f}/s) "
          f"across 3 nodes; {result.conflicts} HTTP 409s; "
          f"{certification_conflicts(cluster) - conflicts_before} certification conflicts")


def test_a_write_on_one_node_is_seen_by_the_next_request_on_every_other(clients):
    (provider,) = create_computes(clients[0], "seen", 1, 64)
    for step in range(24):
        writer, reader = clients[step % 3], clients[(step + 1) % 3]
        consumer = str(uuid.uuid4())
        expect(writer.put(f"/allocations/{consumer}", {
            "allocations": {provider: {"resources": {"VCPU": 1}}},
            "project_id": str(uuid.UUID(int=1)), "user_id": str(uuid.UUID(int=1)),
            "consumer_generation": None, "consumer_type": "INSTANCE",
        }), "claim on one node", 204)
        expected = step + 1
        usages = expect(reader.get(f"/resource_providers/{provider}/usages"), "usages", 200).body
        assert usages["usages"]["VCPU"] == expected
        candidates = expect(reader.get(
            f"/allocation_candidates?resources=VCPU:1&in_tree={provider}"), "candidates", 200).body
        assert candidates["provider_summaries"][provider]["resources"]["VCPU"]["used"] == expected


def test_a_commit_galera_refuses_is_a_transient_error_stowage_retries(cluster):
    """Two nodes update one row at once: the commit certified second fails
    with a deadlock (1213), the error Stowage's MySQL backend retries."""
    engines = [create_engine(node.url, poolclass=NullPool) for node in cluster.nodes[:2]]
    with engines[0].begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS galera_race (id INT PRIMARY KEY, n INT)"))
        connection.execute(text("REPLACE INTO galera_race VALUES (1, 0)"))
    first, second = (engine.connect() for engine in engines)
    try:
        first.execute(text("UPDATE galera_race SET n = n + 1 WHERE id = 1"))
        second.execute(text("UPDATE galera_race SET n = n + 10 WHERE id = 1"))
        first.commit()
        with pytest.raises(DBAPIError) as refused:
            second.commit()
        assert refused.value.orig.args[0] == 1213
        assert backend_for(engines[1]).is_transient(refused.value)
    finally:
        first.close()
        second.close()
        for engine in engines:
            engine.dispose()


def test_a_node_that_has_not_applied_a_write_yet_waits_for_it_before_answering(cluster, clients):
    """Node 3 is kept from applying replicated writes (a global read lock
    stops its applier); a write through node 1 commits, and reads through
    node 3 (usages, and the candidates its read model answers) must not
    answer until node 3 has applied it (causal reads)."""
    (provider,) = create_computes(clients[0], "lagging", 1, 8)
    lagging = create_engine(cluster.nodes[2].url, poolclass=NullPool)
    answers: list[int] = []
    with lagging.connect() as holder:
        holder.execute(text("FLUSH TABLES WITH READ LOCK"))
        expect(clients[0].put(f"/allocations/{uuid.uuid4()}", {
            "allocations": {provider: {"resources": {"VCPU": 3}}},
            "project_id": str(uuid.UUID(int=1)), "user_id": str(uuid.UUID(int=1)),
            "consumer_generation": None, "consumer_type": "INSTANCE",
        }), "claim through node 1", 204)
        def read_through_node_3() -> None:
            usages = expect(clients[2].get(f"/resource_providers/{provider}/usages"), "usages", 200)
            candidates = expect(clients[2].get(
                f"/allocation_candidates?resources=VCPU:1&in_tree={provider}"), "candidates", 200)
            answers.append(usages.body["usages"]["VCPU"])
            answers.append(
                candidates.body["provider_summaries"][provider]["resources"]["VCPU"]["used"])

        reader = threading.Thread(target=read_through_node_3)
        reader.start()
        reader.join(timeout=1.0)
        holder.execute(text("UNLOCK TABLES"))
    reader.join(timeout=30)
    lagging.dispose()
    assert answers == [3, 3]
