"""Measure (not a test): what "why nothing fits" costs on the fast engine.

Builds the benchmark inventory (``scenarios.build_inventory``) as an
in-memory read model, then times, per query, the engine run alone and the
run plus the explanation's rendering (summary line and JSON answer)::

    .venv/bin/python -m bench.explain [ROOTS]
"""
from __future__ import annotations

import statistics
import sys
import time

from bench import scenarios
from stowage.api import explanation
from stowage.api.http import Request
from stowage.api.schemas import allocation_candidates as schemas
from stowage.api.versions import MAX_VERSION
from stowage.candidates import fast
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.snapshot import Inventory, Provider, Snapshot

QUERIES = {
    "fits, limit 1000": "resources=VCPU:1,MEMORY_MB:1024&limit=1000",
    "nothing fits (capacity)": "resources=VCPU:100000",
    "nothing fits (trait)": "resources=VCPU:1&required=CUSTOM_NO_HOST_HAS_IT",
    "nothing fits (groups)": "resources=VCPU:1&resources1=VGPU:1&required1=CUSTOM_NOPE"
    "&group_policy=isolate",
}


def snapshot_of(specs: list[scenarios.ProviderSpec]) -> Snapshot:
    parents = {spec.name: spec.parent_name for spec in specs}

    def root_of(name: str) -> str:
        while parents[name] is not None:
            name = parents[name]  # type: ignore[assignment]
        return name

    return Snapshot(tuple(
        Provider(
            uuid=spec.uuid,
            root_uuid=scenarios.stable_uuid(root_of(spec.name)),
            parent_uuid=spec.parent_uuid,
            inventories={
                name: Inventory(name, inventory.total, inventory.reserved,
                                allocation_ratio=inventory.allocation_ratio)
                for name, inventory in spec.inventories.items()
            },
            traits=frozenset(spec.traits),
            aggregates=frozenset(spec.aggregates),
        )
        for spec in specs
    ))


def parsed(query: str):
    request = Request({"REQUEST_METHOD": "GET", "QUERY_STRING": query}, "bench")
    request.version = MAX_VERSION
    return schemas.parse_request(request)


def median_ms(run, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    roots = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    snapshot = snapshot_of(scenarios.build_inventory(roots))
    model = ReadModel.build(1, snapshot)
    print(f"{len(snapshot.providers):,} providers, {len(snapshot.roots):,} roots")
    for name, query in QUERIES.items():
        request = parsed(query)
        fast.find_candidates(model, request)  # warm the model's per-tree memos
        alone = median_ms(lambda request=request: fast.find_candidates(model, request))

        def rendered(request=request) -> None:
            result = fast.find_candidates(model, request)
            explanation.explanation_body(result, request)

        both = median_ms(rendered)
        result = fast.find_candidates(model, request)
        rendering = median_ms(
            lambda result=result, request=request: explanation.explanation_body(result, request),
            101,
        )
        print(f"{name:26} engine {alone:6.1f} ms, with explanation {both:6.1f} ms, "
              f"rendering alone {rendering * 1000:5.0f} µs"
              f"  | {explanation.summary(result, request)}")


if __name__ == "__main__":
    main()
