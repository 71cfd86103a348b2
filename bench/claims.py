"""Claims at scheduler speed, Stowage and upstream side by side in one run.

    bash bench/run claims                   # 1,000 roots, both services
    bash bench/run claims --roots 10000     # Stowage bulk-loaded, alone

Each service: a warm-up, then uncontended claims (one client: GET
candidates, PUT the first; PUT latency), then 8 and 32 concurrent claimers
(claims/s, 409s per claim, PUT latency), then a mixed run: 8 claimers while
inventory updates (20/s, DISK_GB totals of the claimed hosts, as a cinder
pool reports them) and candidate queries run alongside. After every run:
no inventory over capacity, every acknowledged claim read back as written,
every acknowledged inventory update read back; then the claims are
released. Results go into the claims section of docs/performance.md.

Stowage runs with ``[stowage] spread_limited_candidates``; upstream with
its defaults. (Upstream's own spreading, ``[placement]
randomize_allocation_candidates``, makes it generate every candidate to
sample five: 5.8 claims/s at 1,000 roots with 8 claimers, against 10-20
with its defaults.)
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import threading
import time
import uuid
from pathlib import Path

from bench import bulk, measure, report, scenarios
from bench.client import Client
from bench.services import STOWAGE_APPLICATION, UPSTREAM_APPLICATION, PostgreSQL, Service

REPOSITORY = Path(__file__).resolve().parent.parent
QUERY = scenarios.CLAIM_QUERY
# What runs beside the mixed run's claims.
INVENTORY_UPDATES_PER_SECOND = 20
CANDIDATE_QUERIES_PER_SECOND = 5
SIDE_QUERY = scenarios.Query("side", "beside the claims", "resources=VCPU:2,MEMORY_MB:4096&limit=50")
BEGIN, END = "<!-- claims results: bench/claims.py writes this part -->", "<!-- end of claims results -->"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.claims", description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=1000)
    parser.add_argument("--claims", type=int, default=300, help="successful claims per run")
    parser.add_argument("--claimers", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per configuration; claims/s is the median run's")
    parser.add_argument("--upstream", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure upstream (default: only at up to 1,000 roots, "
                             "where loading it over HTTP takes a minute, not hours)")
    parser.add_argument("--upstream-venv", type=Path, default=REPOSITORY / "bench/.work/upstream")
    parser.add_argument("--stowage-venv", type=Path, default=Path(sys.prefix))
    parser.add_argument("--work-dir", type=Path, default=REPOSITORY / "bench/.work")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "docs/performance.md")
    parser.add_argument("--first-port", type=int, default=18880)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--leak-requests", type=int, default=10_000,
                        help="candidate queries of Stowage's memory-growth check (0: skip it)")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _milliseconds(samples: list[float], quantile: float = 0.5) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, round(quantile * (len(ordered) - 1)))]


@dataclasses.dataclass
class InventoryUpdates:
    """Acknowledged DISK_GB totals per provider, in the order written."""

    written: dict[str, int] = dataclasses.field(default_factory=dict)
    count: int = 0
    conflicts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


def update_inventories(client: Client, hosts: list[str], stop: threading.Event,
                       updates: InventoryUpdates, seed: int) -> None:
    """Set DISK_GB totals of ``hosts`` (1000 to 1200, never below what the
    scenario loaded, so claims already made always fit) at the mixed run's
    rate; a 409 (a claim moved the generation) is re-read and retried."""
    chooser = random.Random(seed)
    interval = 1 / INVENTORY_UPDATES_PER_SECOND
    due = time.monotonic()
    while not stop.is_set():
        host = chooser.choice(hosts)
        total = chooser.randrange(1000, 1201)
        path = f"/resource_providers/{host}/inventories/DISK_GB"
        for _attempt in range(10):
            current = client.get(path)
            if current.status != 200:
                updates.errors.append(f"GET {path}: {current.status}")
                return
            body = {**current.body, "total": total}
            reply = client.put(path, body)
            if reply.status == 200:
                updates.written[host] = total
                updates.count += 1
                break
            if reply.status != 409:
                updates.errors.append(f"PUT {path}: {reply.status} {reply.body}"[:200])
                return
            updates.conflicts += 1
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))


def query_candidates(client: Client, stop: threading.Event, answered: list[float]) -> None:
    interval = 1 / CANDIDATE_QUERIES_PER_SECOND
    due = time.monotonic()
    while not stop.is_set():
        reply = client.get(SIDE_QUERY.path)
        if reply.status == 200:
            answered.append(reply.seconds)
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))


def lost_updates(client: Client, updates: InventoryUpdates) -> list[str]:
    lost = []
    for host, total in updates.written.items():
        found = client.get(f"/resource_providers/{host}/inventories/DISK_GB").body["total"]
        if found != total:
            lost.append(f"{host} DISK_GB {found} != {total}")
    return lost


def repeated_runs(client: Client, claimers: int, target: int, repeats: int, seed: int,
                  mixed_hosts: list[str] | None = None) -> dict:
    """``claim_run`` ``repeats`` times: claims/s as the median run's, 409s
    per claim and PUT latency over every run, the checks of every run."""
    runs = [claim_run(client, claimers, target, seed + index, mixed_hosts)
            for index in range(repeats)]
    rates = [run["per_second"] for run in runs]
    median = sorted(runs, key=lambda run: run["per_second"])[len(runs) // 2]
    claims = sum(run["claims"] for run in runs)
    puts = [seconds for run in runs for seconds in run["put_seconds"]]
    return {
        **median,
        "per_second_runs": rates,
        "conflicts_per_claim": sum(run["conflicts"] for run in runs) / claims if claims else None,
        "put_median_ms": _milliseconds(puts), "put_p95_ms": _milliseconds(puts, 0.95),
        "over_capacity": [item for run in runs for item in run["over_capacity"]],
        "not_read_back": [item for run in runs for item in run["not_read_back"]],
        "lost_updates": [item for run in runs for item in run["lost_updates"]],
        "inventory_updates": sum(run["inventory_updates"] for run in runs),
        "put_seconds": [],
    }


def claim_run(client: Client, claimers: int, target: int, seed: int,
              mixed_hosts: list[str] | None = None) -> dict:
    """One run of ``claimers`` claimers, checked and released afterwards."""
    stop = threading.Event()
    updates, side = InventoryUpdates(), []
    helpers = []
    if mixed_hosts:
        halves = [mixed_hosts[0::2], mixed_hosts[1::2]]
        helpers = [threading.Thread(target=update_inventories, args=(client, half, stop, updates,
                                                                     seed + index))
                   for index, half in enumerate(halves)]
        helpers.append(threading.Thread(target=query_candidates, args=(client, stop, side)))
        for helper in helpers:
            helper.start()
    try:
        claimed = measure.claim(client, QUERY, target, seed=seed, claimers=claimers)
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
    over = measure.providers_over_capacity(client, claimed.touched | set(updates.written))
    unread = measure.claims_not_read_back(client, claimed.held)
    lost = lost_updates(client, updates) if mixed_hosts else []
    measure.release(client, claimed.consumers)
    return {
        "claimers": claimers, "claims": claimed.claims, "conflicts": claimed.conflicts,
        "seconds": claimed.seconds, "per_second": claimed.per_second, "outcome": claimed.outcome,
        "conflicts_per_claim": claimed.conflicts / claimed.claims if claimed.claims else None,
        "put_seconds": claimed.put_seconds,
        "over_capacity": over, "not_read_back": unread,
        "inventory_updates": updates.count, "inventory_update_conflicts": updates.conflicts,
        "inventory_update_errors": updates.errors, "lost_updates": lost,
        "side_queries": len(side), "side_query_median_ms": _milliseconds(side),
    }


def uncontended(client: Client, count: int) -> dict:
    """``count`` claims one after the other: GET (limit=5), PUT the first."""
    gets, puts, consumers = [], [], []
    for _ in range(count):
        found = measure.expect(client.get(QUERY.path), "candidates", 200)
        gets.append(found.seconds)
        chosen = found.body["allocation_requests"][0]
        consumer = str(uuid.uuid4())
        reply = measure.expect(client.put(f"/allocations/{consumer}", {
            "allocations": chosen["allocations"], "project_id": str(uuid.UUID(int=1)),
            "user_id": str(uuid.UUID(int=1)), "consumer_generation": None,
            "consumer_type": "INSTANCE",
        }), "uncontended claim", 204)
        puts.append(reply.seconds)
        consumers.append(consumer)
    measure.release(client, consumers)
    return {"claims": count, "get_median_ms": _milliseconds(gets),
            "put_median_ms": _milliseconds(puts), "put_p95_ms": _milliseconds(puts, 0.95)}


def memory_growth(client: Client, service: Service, requests: int) -> dict:
    """Worker memory after a tenth of ``requests`` candidate queries and
    after all of them (a leak grows with requests; a cache does not)."""
    def rss() -> int:
        return sum(worker["rss_kib"] for worker in service.worker_memory())

    def query(count: int) -> None:
        for _ in range(count):
            measure.expect(client.get(SIDE_QUERY.path), "candidates", 200)

    query(requests // 10)
    first = rss()
    query(requests - requests // 10)
    return {"requests": requests, "after_tenth_kib": first, "after_all_kib": rss()}


def settle(service: Service, seconds: float = 600) -> None:
    """Wait until every worker's memory stops growing: Stowage's workers
    build their read models in the background after start (15 s or more
    at 100,000 roots), and a run measured meanwhile counts the build."""
    deadline = time.monotonic() + seconds
    before = [worker["rss_kib"] for worker in service.worker_memory()]
    while time.monotonic() < deadline:
        time.sleep(3)
        now = [worker["rss_kib"] for worker in service.worker_memory()]
        if len(now) == len(before) and all(abs(a - b) < 2048 for a, b in zip(now, before, strict=True)):
            return
        before = now


def measure_service(client: Client, arguments: argparse.Namespace, hosts: list[str]) -> dict:
    log("  warm-up")
    uncontended(client, 30)
    log("  uncontended claims")
    results: dict = {"uncontended": uncontended(client, 100), "runs": []}
    for claimers in arguments.claimers:
        log(f"  {claimers} claimers")
        results["runs"].append(
            repeated_runs(client, claimers, arguments.claims, arguments.repeat, seed=claimers))
        log(f"    {_summary(results['runs'][-1])}")
    log("  mixed run: 8 claimers, inventory updates, candidate queries")
    results["mixed"] = repeated_runs(client, 8, arguments.claims, arguments.repeat, seed=99,
                                     mixed_hosts=hosts)
    log(f"    {_summary(results['mixed'])}")
    return results


def _summary(run: dict) -> str:
    rates = ", ".join(f"{rate:.1f}" for rate in run["per_second_runs"])
    return (f"claims/s {rates} (median {run['per_second']:.1f}), "
            f"{run['conflicts_per_claim'] or 0:.2f} 409s per claim, "
            f"PUT median {run['put_median_ms'] or 0:.1f} ms, {len(run['over_capacity'])} over "
            f"capacity, {len(run['not_read_back'])} not read back, {run['outcome']}")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    with_upstream = arguments.upstream if arguments.upstream is not None else arguments.roots <= 1000
    postgresql = PostgreSQL()
    suffix = f"claims_n{arguments.roots}"
    services = {"stowage": Service(
        "stowage-claims", arguments.stowage_venv, STOWAGE_APPLICATION, f"bench_stowage_{suffix}",
        arguments.first_port, arguments.work_dir,
        tuning={"stowage": {"spread_limited_candidates": "true"}})}
    if with_upstream:
        services["upstream"] = Service(
            "upstream-claims", arguments.upstream_venv, UPSTREAM_APPLICATION,
            f"bench_upstream_{suffix}", arguments.first_port + 1, arguments.work_dir)
    providers = scenarios.build_inventory(arguments.roots)
    flat_hosts = [provider.uuid for provider in providers
                  if provider.parent_uuid is None and provider.name.startswith("flat")]
    results: dict = {
        "roots": arguments.roots, "providers": len(providers), "services": {},
        "facts": report.machine_facts(str(arguments.stowage_venv / "bin/python"),
                                      str(arguments.upstream_venv / "bin/python"),
                                      postgresql.version()),
        "claims": arguments.claims, "repeat": arguments.repeat,
    }
    try:
        for label, service in services.items():
            postgresql.recreate(service.database)
            service.write_config(postgresql)
            service.migrate()
            log(f"loading {len(providers):,} providers into {label}")
            if label == "stowage" and not with_upstream:
                bulk.load(postgresql.url(service.database), providers)
                postgresql.analyze(service.database)
            else:
                service.start(arguments.timeout)
                measure.load(Client(service.port, arguments.timeout), providers)
                service.stop()
        for label, service in services.items():
            log(f"claims on {label}")
            service.start(arguments.timeout)
            settle(service)
            client = Client(service.port, arguments.timeout)
            results["services"][label] = measure_service(client, arguments, flat_hosts[:200])
            results["services"][label]["memory"] = service.worker_memory()
            if arguments.leak_requests and not service.is_upstream:
                log(f"  memory over {arguments.leak_requests:,} candidate queries")
                results["services"][label]["growth"] = memory_growth(
                    client, service, arguments.leak_requests)
            service.stop()
    finally:
        for service in services.values():
            service.stop()
        log(f"raw results in {report.save_raw(arguments.work_dir, suffix, results)}")
    write_section(arguments.output, results)
    return 0


def render(results: dict) -> str:
    """The markdown for one size."""
    roots = results["roots"]
    labels = list(results["services"])
    lines = [f"### Claims: {roots:,} roots ({results['providers']:,} providers)", ""]
    facts = results["facts"]
    lines.append(f"{report.machine_line(facts)}; 2 workers × 4 threads each; query `{QUERY.query_string}`; "
                 f"{results['claims']} claims per run, claims/s the median of "
                 f"{results['repeat']} runs.")
    lines += ["", "| run | " + " | ".join(labels) + (" | ratio |" if len(labels) == 2 else " |"),
              "|---|" + "---|" * (len(labels) + (1 if len(labels) == 2 else 0))]

    def row(name: str, values: list[float | None], unit: str = "",
            higher_is_better: bool | None = True):
        cells = [f"{value:.1f}{unit}" if value is not None else "–" for value in values]
        ratio = ""
        if len(values) == 2 and higher_is_better is None:
            ratio = " |"
        elif len(values) == 2:
            first, second = values
            if first and second:
                ratio = f" {first / second if higher_is_better else second / first:.1f}× |"
            else:
                ratio = " – |"
        lines.append(f"| {name} | " + " | ".join(cells) + " |" + ratio)

    services = [results["services"][label] for label in labels]
    row("uncontended PUT median", [s["uncontended"]["put_median_ms"] for s in services], " ms", False)
    row("uncontended GET median", [s["uncontended"]["get_median_ms"] for s in services], " ms", False)
    for index, run in enumerate(services[0]["runs"]):
        runs = [s["runs"][index] for s in services]
        claimers = run["claimers"]
        row(f"{claimers} claimers: claims/s", [r["per_second"] for r in runs])
        row(f"{claimers} claimers: 409s per claim", [r["conflicts_per_claim"] for r in runs], "", False)
        row(f"{claimers} claimers: PUT median", [r["put_median_ms"] for r in runs], " ms", False)
        row(f"{claimers} claimers: PUT p95", [r["put_p95_ms"] for r in runs], " ms", False)
    mixed = [s["mixed"] for s in services]
    row("mixed: claims/s", [r["per_second"] for r in mixed])
    row("mixed: inventory updates made", [r["inventory_updates"] for r in mixed], "", None)
    row("mixed: candidate queries, median", [r["side_query_median_ms"] for r in mixed], " ms", False)
    plain = [s["runs"][0]["per_second"] for s in services]
    row("mixed: claims/s drop vs plain 8 claimers",
        [100 * (1 - m["per_second"] / p) if p else None for m, p in zip(mixed, plain, strict=True)],
        " %", None)
    checks = []
    for label, service in zip(labels, services, strict=True):
        every = service["runs"] + [service["mixed"]]
        checks.append(
            f"{label}: {sum(len(r['over_capacity']) for r in every)} inventories over capacity, "
            f"{sum(len(r['not_read_back']) for r in every)} claims not read back, "
            f"{sum(len(r['lost_updates']) for r in mixed if r is service['mixed'])} lost "
            f"inventory updates, outcomes {sorted({r['outcome'] for r in every})}"
        )
    lines += ["", "After every run: " + "; ".join(checks) + ".", ""]
    memory = []
    for label, service in zip(labels, services, strict=True):
        workers = service.get("memory", [])
        rss = ", ".join(f"{worker['rss_kib'] / 1024:.0f}" for worker in workers)
        peak = ", ".join(f"{worker['hwm_kib'] / 1024:.0f}" for worker in workers)
        line = f"{label}: workers' RSS {rss} MiB (peak {peak} MiB)"
        growth = service.get("growth")
        if growth:
            line += (f"; over {growth['requests']:,} candidate queries the workers' RSS went from "
                     f"{growth['after_tenth_kib'] / 1024:.1f} MiB (after {growth['requests'] // 10:,}) "
                     f"to {growth['after_all_kib'] / 1024:.1f} MiB")
        memory.append(line)
    lines += ["Memory: " + "; ".join(memory) + ".", ""]
    return "\n".join(lines)


def write_section(path: Path, results: dict) -> None:
    """Replace this size's part of the claims section of ``path``."""
    report.write_sized_section(path, "Claims", BEGIN, END, results["roots"], render(results))


if __name__ == "__main__":
    sys.exit(main())
