"""Measure (not a test): what "why nothing fits" costs on the fast engine.

Builds the benchmark inventory (``scenarios.build_inventory``) as an
in-memory read model, then per query (the NFV and wide scenarios' own,
and variants of them that fit nothing or fit with a limit):

* **time**: the engine without the explanation's bookkeeping
  (``explain=False``) against the engine with it plus what
  ``GET /allocation_candidates`` adds when nothing fits (the summary line
  for the log), and with what ``GET /stowage/allocation_candidates/explain``
  adds (the whole answer); the runs alternate (without, with, answer,
  without, ...) for as many rounds as fit in a few seconds (7 at least),
  so that the machine's drift weighs on all three. Times are this
  process's CPU time (``time.process_time``): on a shared 2-core machine
  wall time mostly measures the neighbours. Reported: the medians, and the
  cost as the median of each round's ratio (with / without);
* **memory**: tracemalloc's peak over one run without and one with
  (explanation rendered), after a warm-up, and the difference: what the
  explanation allocates on top of the engine at its worst moment.

Prints a table per size and the summary lines; ``--markdown`` prints the
section of docs/performance.md instead::

    .venv/bin/python -m bench.explain [--markdown] [ROOTS ...]
"""
from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from bench import scenarios
from stowage.api import explanation
from stowage.api.http import Request
from stowage.api.schemas import allocation_candidates as schemas
from stowage.api.versions import MAX_VERSION
from stowage.candidates import fast
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import CandidateRequest, EngineOptions
from stowage.candidates.results import CandidateResult
from stowage.candidates.snapshot import Inventory, Provider, Snapshot

_SCENARIO = {query.name: query.query_string for query in scenarios.QUERIES}
_NFV_NET = (
    "resources=DISK_GB:20"
    "&resources_COMPUTE=PCPU:4,MEMORY_MB:8192"
    "&resources_NET=SRIOV_NET_VF:1,NET_BW_EGR_KILOBIT_PER_SEC:100000"
    "&same_subtree=_COMPUTE,_NET&group_policy=none"
)
_WIDE = "resources=VCPU:4,MEMORY_MB:8192&group_policy=isolate&"


def _gpus(count: int, amount: int = 1) -> str:
    return "&".join(f"resources_GPU{group}=VGPU:{amount}" for group in range(1, count + 1))


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    # [placement] max_allocation_candidates (-1: none), as stowage-tuned runs.
    max_candidates: int = -1


CASES = (
    # NFV: the scenario's own query (fits: two candidates per host), with
    # nova's limit, and two that fit nothing.
    Case("nfv-same-subtree", _SCENARIO["nfv-same-subtree"]),
    Case("nfv, limit=1000", _SCENARIO["nfv-same-subtree"] + "&limit=1000"),
    Case("nfv: a physnet nobody has", _NFV_NET + "&required_NET=CUSTOM_PHYSNET_C"),
    Case("nfv: more VFs than a PF has", (_NFV_NET + "&required_NET=CUSTOM_PHYSNET_B")
         .replace("SRIOV_NET_VF:1", "SRIOV_NET_VF:65")),
    Case("nfv: more PCPU than a NUMA node", _SCENARIO["nfv-same-subtree"]
         .replace("PCPU:4", "PCPU:20")),
    # Wide: the scenario's own, unlimited one as stowage-tuned answers it
    # (3.36 million candidates at 10,000 roots otherwise), limited, and
    # two that fit nothing.
    Case("wide (max 1000 candidates)", _SCENARIO["wide"], max_candidates=1000),
    Case("wide-limit", _SCENARIO["wide-limit"]),
    Case("wide: 9 GPUs (a host has 8)", _WIDE + _gpus(9)),
    Case("wide: VGPU:5 (a GPU has 4)", _WIDE + _gpus(4, 5)),
)


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


def parsed(query: str) -> CandidateRequest:
    request = Request({"REQUEST_METHOD": "GET", "QUERY_STRING": query}, "bench")
    request.version = MAX_VERSION
    return schemas.parse_request(request)


@dataclass(frozen=True)
class Measured:
    case: Case
    candidates: int
    rounds: int
    without_ms: float
    # The engine with its explanation, plus the summary line when nothing
    # fits (what /allocation_candidates logs); and with the whole answer of
    # the explain endpoint.
    with_ms: float
    answer_ms: float
    # The median of the rounds' ratios, with / without, less one.
    time_cost: float
    without_peak: int
    with_peak: int
    summary: str

    @property
    def memory_cost(self) -> int:
        return self.with_peak - self.without_peak


def measure(model: ReadModel, case: Case, budget: float) -> Measured:
    request = parsed(case.query)
    options = EngineOptions(max_candidates=case.max_candidates)

    def bare() -> CandidateResult:
        return fast.find_candidates(model, request, options, explain=False)

    def explained() -> CandidateResult:
        result = fast.find_candidates(model, request, options)
        if not result.candidates:
            explanation.summary(result, request)
        return result

    def answered() -> None:
        explanation.explanation_body(fast.find_candidates(model, request, options), request)

    for run in (bare, explained, answered):  # warm the model's per-tree memos
        run()
    # What the warm-up kept (the memos) lives as long as the model: out of
    # the collector's way, as the model is, so that each run's collection
    # below sees only that run's garbage.
    gc.collect()
    gc.freeze()
    times: dict[Callable, list[float]] = {bare: [], explained: [], answered: []}
    ends = time.perf_counter() + budget
    while len(times[bare]) < _MIN_ROUNDS or (
        time.perf_counter() < ends and len(times[bare]) < _MAX_ROUNDS
    ):
        for run in (bare, explained, answered):
            gc.collect()
            started = time.process_time()
            run()
            times[run].append(time.process_time() - started)
    result = explained()
    ratios = [with_ / alone for with_, alone in zip(times[explained], times[bare], strict=True)]
    return Measured(
        case,
        len(result.candidates),
        len(times[bare]),
        statistics.median(times[bare]) * 1000,
        statistics.median(times[explained]) * 1000,
        statistics.median(times[answered]) * 1000,
        statistics.median(ratios) - 1,
        _peak(bare),
        _peak(answered),
        explanation.summary(result, request),
    )


_MIN_ROUNDS = 7
_MAX_ROUNDS = 501


def _peak(run: Callable) -> int:
    """tracemalloc's peak over one run (bytes), the result dropped after."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def _budget(roots: int) -> float:
    """Seconds of rounds per query."""
    return 8.0 if roots <= 10_000 else 15.0


def run(roots: int) -> tuple[Snapshot, list[Measured]]:
    snapshot = snapshot_of(scenarios.build_inventory(roots))
    model = ReadModel.build(1, snapshot)
    # The model lives as long as a worker: keep the collector off it, as
    # the service does (stowage.domain.candidates).
    gc.freeze()
    return snapshot, [measure(model, case, _budget(roots)) for case in CASES]


def _mib(size: int) -> str:
    return f"{size / 2**20:+.2f}"


def table(snapshot: Snapshot, results: list[Measured]) -> str:
    lines = [
        f"### Explanation cost: {len(snapshot.roots):,} roots "
        f"({len(snapshot.providers):,} providers)",
        "",
        "| query | candidates | rounds | engine alone (ms) | with explanation (ms) | cost | "
        "explain answer (ms) | peak alone (MiB) | explanation's extra peak (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for found in results:
        lines.append(
            f"| {found.case.name} | {found.candidates:,} | {found.rounds} | "
            f"{found.without_ms:.2f} | {found.with_ms:.2f} | {found.time_cost:+.1%} | "
            f"{found.answer_ms:.2f} | {found.without_peak / 2**20:.1f} | "
            f"{_mib(found.memory_cost)} |"
        )
    lines += ["", "Summary lines (`GET /stowage/allocation_candidates/explain`, `stowage explain`):", ""]
    lines += [f"- {found.case.name}: `{found.summary}`" for found in results]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    markdown = "--markdown" in argv
    sizes = [int(arg.replace(",", "").replace("_", "")) for arg in argv if arg != "--markdown"]
    for roots in sizes or [10_000]:
        snapshot, results = run(roots)
        if markdown:
            print(table(snapshot, results) + "\n")
            continue
        print(f"{len(snapshot.providers):,} providers, {len(snapshot.roots):,} roots")
        for found in results:
            print(f"{found.case.name:32} {found.candidates:7,} cand., {found.rounds} rounds | alone "
                  f"{found.without_ms:7.1f} ms, explained {found.with_ms:7.1f} ms "
                  f"({found.time_cost:+6.1%}), answer {found.answer_ms:7.1f} ms | peak "
                  f"{found.without_peak / 2**20:6.1f} MiB, explained "
                  f"{_mib(found.memory_cost)} MiB")
            print(f"    {found.summary}")


if __name__ == "__main__":
    main(sys.argv[1:])
