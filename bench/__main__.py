"""Run the side-by-side benchmark; ``bash bench/run`` prepares what this needs.

    python -m bench --upstream-venv bench/.work/upstream [--roots 10000] ...

Order: fresh databases, both services migrated and started, identical
scenarios loaded into each, every query timed on every service, then the
claims, then the report. Work that would start after the time budget is
reported as not run instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from bench import bulk, measure, report, scenarios
from bench.client import Client
from bench.services import (
    KEEP_ALIVE_SECONDS,
    STOWAGE_APPLICATION,
    STOWAGE_CAPPED,
    THREADS,
    UPSTREAM_APPLICATION,
    UPSTREAM_WIDE_TREE_TUNING,
    WORKERS,
    PostgreSQL,
    Service,
)

REPOSITORY = Path(__file__).resolve().parent.parent


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=1000,
                        help="compute hosts to load (1000, 10000, 100000; default 1000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--seconds-per-query", type=float, default=20,
                        help="stop the interleaved rounds of a query after this long per "
                             "service (min 3 runs each)")
    parser.add_argument("--timeout", type=float, default=60, help="per-request timeout, seconds")
    parser.add_argument("--claims", type=int, default=200, help="successful claims per service")
    parser.add_argument("--budget-minutes", type=float, default=45,
                        help="start no new measurement after this long")
    parser.add_argument("--upstream-venv", type=Path, default=REPOSITORY / "bench/.work/upstream")
    parser.add_argument("--stowage-venv", type=Path, default=Path(sys.prefix))
    parser.add_argument("--work-dir", type=Path, default=REPOSITORY / "bench/.work")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "docs/performance.md")
    parser.add_argument("--first-port", type=int, default=18780)
    parser.add_argument("--bulk-load", action="store_true",
                        help="insert the providers straight into Stowage's database instead of "
                             "over HTTP, and measure Stowage alone (for 100000 roots, where "
                             "loading either service over HTTP takes hours)")
    parser.add_argument("--skip", action="append", default=[], metavar="QUERY[:SERVICE]",
                        help="do not time QUERY (on SERVICE only, if given), e.g. wide:stowage "
                             "where the answer would not fit in memory; 'claims' for the "
                             "claims; repeatable")
    parser.add_argument("--reuse-data", action="store_true",
                        help="keep the databases a finished earlier run loaded with the same "
                             "--roots (and report that run's load figures) instead of loading again")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    deadline = time.monotonic() + arguments.budget_minutes * 60
    postgresql = PostgreSQL()
    suffix = f"n{arguments.roots}"
    services = {
        "stowage": Service("stowage", arguments.stowage_venv, STOWAGE_APPLICATION,
                           f"bench_stowage_{suffix}", arguments.first_port, arguments.work_dir),
        "upstream": Service("upstream", arguments.upstream_venv, UPSTREAM_APPLICATION,
                            f"bench_upstream_{suffix}", arguments.first_port + 1, arguments.work_dir),
        "upstream-tuned": Service("upstream-tuned", arguments.upstream_venv, UPSTREAM_APPLICATION,
                                  f"bench_upstream_{suffix}", arguments.first_port + 2,
                                  arguments.work_dir, tuning=UPSTREAM_WIDE_TREE_TUNING),
        # The same cap on the answer as upstream-tuned, for a like-for-like
        # comparison of unlimited queries on wide trees.
        "stowage-tuned": Service("stowage-tuned", arguments.stowage_venv, STOWAGE_APPLICATION,
                                 f"bench_stowage_{suffix}", arguments.first_port + 3,
                                 arguments.work_dir, tuning=STOWAGE_CAPPED),
    }
    if arguments.bulk_load:
        services = {label: service for label, service in services.items()
                    if not service.is_upstream}
    loaded_labels = [label for label in ("stowage", "upstream") if label in services]
    providers = scenarios.build_inventory(arguments.roots)
    results: dict = {
        "facts": report.machine_facts(str(arguments.stowage_venv / "bin/python"),
                                      str(arguments.upstream_venv / "bin/python"),
                                      postgresql.version()),
        "roots": arguments.roots,
        "family_sizes": {**dataclasses.asdict(scenarios.family_sizes(arguments.roots)),
                         "storage_pools": scenarios.family_sizes(arguments.roots).storage_pools},
        "providers": len(providers),
        "workers": WORKERS, "threads": THREADS, "keep_alive": KEEP_ALIVE_SECONDS,
        "timeout": arguments.timeout,
        "load_clients": measure.LOAD_CLIENTS, "claim_clients": measure.CLAIM_CLIENTS,
        "services": {label: {} for label in services},
        "queries": {},
        "missing": [],
        "bulk_load": arguments.bulk_load,
    }
    clients = {label: Client(service.port, arguments.timeout) for label, service in services.items()}

    def remember_peak(label: str) -> None:
        workers = services[label].worker_memory()
        peak = max([worker["hwm_kib"] for worker in workers], default=0)
        record = results["services"][label]
        record["peak_hwm_kib"] = max(record.get("peak_hwm_kib", 0), peak)

    # Written once both services hold the scenario; --reuse-data trusts it.
    loaded_marker = arguments.work_dir / f"loaded-{suffix}.json"
    earlier_load = None
    if arguments.reuse_data and loaded_marker.exists():
        earlier_load = json.loads(loaded_marker.read_text())
        if (earlier_load.get("providers"), earlier_load.get("bulk_load", False)) != (
                len(providers), arguments.bulk_load):
            earlier_load = None
    try:
        if earlier_load is None:
            loaded_marker.unlink(missing_ok=True)
            for label in loaded_labels:
                postgresql.recreate(services[label].database)
        for label, service in services.items():
            service.write_config(postgresql)
            if not label.endswith("-tuned"):  # the tuned ones share a database
                log(f"migrating {label}")
                service.migrate()
            log(f"starting {label} on port {service.port}")
            service.start(arguments.timeout)

        for label in loaded_labels:
            if earlier_load is not None:
                log(f"reusing the {len(providers):,} providers loaded into {label} "
                    f"at {earlier_load['when']}")
                results["services"][label]["load"] = earlier_load["load"][label]
                continue
            log(f"loading {len(providers):,} providers into {label}")
            if arguments.bulk_load:
                loaded = bulk.load(postgresql.url(services[label].database), providers)
            else:
                loaded = measure.load(clients[label], providers)
            results["services"][label]["load"] = dataclasses.asdict(loaded)
            log(f"  {loaded.requests:,} requests in {loaded.seconds:.1f} s")
        if earlier_load is None:
            loaded_marker.write_text(json.dumps({
                "providers": len(providers),
                "bulk_load": arguments.bulk_load,
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "load": {label: results["services"][label]["load"] for label in loaded_labels},
            }))
        results["load_reused_from"] = earlier_load and earlier_load["when"]
        for label in services:
            results["services"][label]["memory_after_load"] = services[label].worker_memory()
            remember_peak(label)

        def restart_after_timeout(label: str) -> None:
            log(f"  {query.name} timed out on {label}; restarting it to end the request "
                "it is still computing")
            services[label].restart(arguments.timeout)

        for query in scenarios.QUERIES:
            results["queries"][query.name] = {}
            timed = {}
            for label in services:
                if query.name in arguments.skip or f"{query.name}:{label}" in arguments.skip:
                    results["missing"].append(f"{query.name} on {label} (skipped: --skip)")
                elif time.monotonic() > deadline:
                    results["missing"].append(f"{query.name} on {label}")
                else:
                    timed[label] = clients[label]
            if not timed:
                continue
            latencies = measure.time_query(timed, query, arguments.repeat,
                                           arguments.seconds_per_query, restart_after_timeout)
            for label, latency in latencies.items():
                remember_peak(label)
                log(f"{query.name:18} {label:15} {latency.outcome:8} "
                    f"median {report.milliseconds(latency.median)} ms, "
                    f"{len(latency.samples)} runs, candidates {latency.candidates}")
                results["queries"][query.name][label] = {
                    **dataclasses.asdict(latency), "median": latency.median, "p95": latency.p95}

        for label in services:
            results["services"][label]["memory_after_queries"] = services[label].worker_memory()
        for label in services:
            if "claims" in arguments.skip or f"claims:{label}" in arguments.skip:
                results["missing"].append(f"claims on {label} (skipped: --skip)")
                continue
            if time.monotonic() > deadline:
                results["missing"].append(f"claims on {label}")
                continue
            log(f"claims on {label}")
            claimed = measure.claim(clients[label], scenarios.CLAIM_QUERY, arguments.claims)
            over = measure.providers_over_capacity(clients[label], claimed.touched)
            measure.release(clients[label], claimed.consumers)
            remember_peak(label)
            results["services"][label]["claims"] = {
                "claims": claimed.claims, "conflicts": claimed.conflicts,
                "seconds": claimed.seconds, "per_second": claimed.per_second,
                "outcome": claimed.outcome, "providers_checked": len(claimed.touched),
                "over_capacity": over,
            }
            log(f"  {claimed.claims} claims, {claimed.conflicts} conflicts, "
                f"{claimed.per_second:.1f}/s, {len(over)} over capacity, {claimed.outcome}")
    finally:
        for service in services.values():
            service.stop()
        log(f"raw results in {report.save_raw(arguments.work_dir, suffix, results)}")
    report.write(arguments.output, results)
    log(f"report in {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
