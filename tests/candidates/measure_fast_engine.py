"""Measure (not a test): the fast engine at 100,000 flat roots.

Loads N roots with VCPU 64 and MEMORY_MB 262144 directly via SQL, then times
GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:1024&limit=1000
in-process with each engine, and the read model's load time and size::

    /tmp/sv/bin/python -m tests.candidates.measure_fast_engine sqlite [N]
    /tmp/sv/bin/python -m tests.candidates.measure_fast_engine postgresql [N] URL
"""
from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
import uuid

from sqlalchemy import insert, select

from stowage.api.app import create_app
from stowage.storage import schema
from stowage.storage.changes import load_all_providers
from stowage.storage.common import utcnow
from tests.support import Client, open_test_database, reset_database, test_conf

QUERY = "/allocation_candidates?resources=VCPU:1,MEMORY_MB:1024&limit=1000"


def load_flat_roots(database, count: int) -> None:
    with database.write() as connection:
        classes = dict(connection.execute(select(schema.resource_classes.c.name, schema.resource_classes.c.id)).all())
        now = utcnow()
        for start in range(1, count + 1, 10_000):
            ids = range(start, min(start + 10_000, count + 1))
            connection.execute(
                insert(schema.resource_providers),
                [
                    {"id": i, "uuid": str(uuid.UUID(int=i)), "name": f"cn{i}", "generation": 1,
                     "root_provider_id": i, "parent_provider_id": None,
                     "created_at": now, "updated_at": now}
                    for i in ids
                ],
            )
            connection.execute(
                insert(schema.inventories),
                [
                    {"resource_provider_id": i, "resource_class_id": classes[name], "total": total,
                     "reserved": 0, "min_unit": 1, "max_unit": total, "step_size": 1,
                     "allocation_ratio": 1.0, "created_at": now, "updated_at": now}
                    for i in ids
                    for name, total in (("VCPU", 64), ("MEMORY_MB", 262144))
                ],
            )


def median_latency(client: Client, runs: int) -> tuple[float, int]:
    timings = []
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(QUERY)
        timings.append(time.perf_counter() - started)
        assert answer.status == 200, answer.body[:300]
        count = len(answer.json()["allocation_requests"])
    return statistics.median(timings), count


def main() -> None:
    backend = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    database = open_test_database(backend, sys.argv[3] if len(sys.argv) > 3 else None)
    reset_database(database)
    load_flat_roots(database, count)
    print(f"{backend}: {count} flat roots loaded")

    with database.read(consistent=True) as connection:
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()
        snapshot = load_all_providers(connection)
        elapsed = time.perf_counter() - started
        size, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"read model full load: {elapsed:.2f} s, {size / 2**20:.0f} MiB ({len(snapshot.providers)} providers)")
    del snapshot

    for engine, runs in (("fast", 21), ("reference", 3)):
        client = Client(create_app(test_conf(stowage={"candidate_engine": engine}), database))
        started = time.perf_counter()
        client.get(QUERY)  # the fast engine loads its read model here
        first = time.perf_counter() - started
        median, found = median_latency(client, runs)
        print(f"{engine}: first request {first * 1000:.0f} ms, median {median * 1000:.1f} ms "
              f"over {runs} runs, {found} candidates")
        if engine == "fast":
            after_write = []
            for index in range(5):
                answer = client.put(
                    f"/allocations/{uuid.uuid4()}",
                    {"allocations": {str(uuid.UUID(int=index + 1)): {"resources": {"VCPU": 1}}},
                     "project_id": str(uuid.UUID(int=7)), "user_id": str(uuid.UUID(int=8)),
                     "consumer_generation": None, "consumer_type": "INSTANCE"},
                )
                assert answer.status == 204, answer.body
                started = time.perf_counter()
                client.get(QUERY)
                after_write.append(time.perf_counter() - started)
            print(f"fast: first request after an allocation write (incremental refresh): "
                  f"median {statistics.median(after_write) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
