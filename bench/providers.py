"""GET /resource_providers with filters, Stowage and upstream side by side in one run.

    bash bench/run providers                  # 1,000 roots
    bash bench/run providers --roots 10000

Both databases get the same scenario straight from bench/bulk.py (upstream
after it started once, so that its standard names are in; both then
ANALYZEd). Each query is timed on both services interleaved, as the
candidate queries are (bench.measure.time_query); the two answers are
compared first (as sets: neither service promises an order), and a ratio is
only reported for the same answer. Results
go into the provider-listing section of docs/performance.md.

``GET /`` on each service is timed the same way: the HTTP floor (routing,
microversion, policy-free answer) no listing can go below, which bounds
the ratio a small answer can reach (upstream's median over Stowage's floor).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import bulk, measure, report, scenarios
from bench.client import Client
from bench.scenarios import ListQuery, ProviderSpec, Query
from bench.services import STOWAGE_APPLICATION, UPSTREAM_APPLICATION, PostgreSQL, Service

REPOSITORY = Path(__file__).resolve().parent.parent
BEGIN = "<!-- provider listing results: bench/providers.py writes this part -->"
END = "<!-- end of provider listing results -->"


def queries(providers: list[ProviderSpec]) -> list[ListQuery]:
    """What nova, the CLI and operators ask, over the scenario's families."""
    nfv_root = next(p for p in providers if p.family == "nfv" and p.parent_name is None)
    flat_aggregates = sorted({a for p in providers if p.family == "flat" for a in p.aggregates})
    return [
        ListQuery("all", "every provider, no filter", ""),
        ListQuery("resources", "room for VCPU and memory (flat, wide and sharing hosts)",
                  "resources=VCPU:2,MEMORY_MB:4096"),
        ListQuery("nfv", "NUMA cells with room for pinned CPUs and memory",
                  "resources=PCPU:4,MEMORY_MB:4096&required=HW_NUMA_ROOT"),
        ListQuery("sharing", "a disk only the shared pools can hold", "resources=DISK_GB:2000"),
        ListQuery("wide", "GPUs with a free VGPU", "resources=VGPU:1"),
        ListQuery("required", "a custom trait one flat host in ten has",
                  "required=CUSTOM_BENCH_GOLD"),
        ListQuery("required-any", "any of two traits, and a forbidden one",
                  "required=in:CUSTOM_BENCH_GOLD,CUSTOM_PHYSNET_A&required=!HW_NIC_SRIOV"),
        ListQuery("member_of", "one host aggregate", f"member_of={flat_aggregates[0]}"),
        ListQuery("member_of-any", "any of three aggregates, resources",
                  f"member_of=in:{','.join(flat_aggregates[:3])}&resources=VCPU:2"),
        ListQuery("in_tree", "one NFV host's tree", f"in_tree={nfv_root.uuid}"),
    ]


class RootQuery(Query):
    """``GET /``: the version document, the cheapest answer of a service."""

    @property
    def path(self) -> str:
        return "/"


FLOOR = RootQuery("floor", "GET / (the HTTP floor)", "")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.providers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--seconds-per-query", type=float, default=20)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--upstream-venv", type=Path, default=REPOSITORY / "bench/.work/upstream")
    parser.add_argument("--stowage-venv", type=Path, default=Path(sys.prefix))
    parser.add_argument("--work-dir", type=Path, default=REPOSITORY / "bench/.work")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "docs/performance.md")
    parser.add_argument("--first-port", type=int, default=18980)
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def listed(client: Client, path: str) -> list[tuple]:
    """What a listing says of each provider, in its order."""
    reply = client.get(path)
    if reply.status != 200:
        return [("HTTP", reply.status)]
    return [(p["uuid"], p["name"], p["generation"], p["parent_provider_uuid"],
             p["root_provider_uuid"]) for p in reply.body["resource_providers"]]


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    postgresql = PostgreSQL()
    suffix = f"providers_n{arguments.roots}"
    services = {
        "stowage": Service("stowage-providers", arguments.stowage_venv, STOWAGE_APPLICATION,
                           f"bench_stowage_{suffix}", arguments.first_port, arguments.work_dir),
        "upstream": Service("upstream-providers", arguments.upstream_venv, UPSTREAM_APPLICATION,
                            f"bench_upstream_{suffix}", arguments.first_port + 1,
                            arguments.work_dir),
    }
    providers = scenarios.build_inventory(arguments.roots)
    results: dict = {
        "roots": arguments.roots, "providers": len(providers), "queries": {},
        "repeat": arguments.repeat,
        "facts": report.machine_facts(str(arguments.stowage_venv / "bin/python"),
                                      str(arguments.upstream_venv / "bin/python"),
                                      postgresql.version()),
    }
    clients = {label: Client(service.port, arguments.timeout) for label, service in services.items()}
    try:
        for label, service in services.items():
            postgresql.recreate(service.database)
            service.write_config(postgresql)
            service.migrate()
            # Started once before the load: upstream syncs its standard
            # traits and classes as its app loads.
            service.start(arguments.timeout)
            service.stop()
            log(f"loading {len(providers):,} providers into {label}")
            bulk.load(postgresql.url(service.database), providers, upstream=service.is_upstream)
            postgresql.analyze(service.database)
            service.start(arguments.timeout)

        def restart_after_timeout(label: str) -> None:
            services[label].restart(arguments.timeout)

        for query in queries(providers):
            answers = {label: listed(client, query.path) for label, client in clients.items()}
            # Neither promises an order (upstream's is the plan's).
            same = sorted(answers["stowage"]) == sorted(answers["upstream"])
            latencies = measure.time_query(clients, query, arguments.repeat,
                                           arguments.seconds_per_query, restart_after_timeout)
            results["queries"][query.name] = {
                "description": query.description, "query": query.query_string,
                "same_answer": same, "listed": len(answers["stowage"]),
                **{label: {"median": latency.median, "p95": latency.p95,
                           "runs": len(latency.samples), "outcome": latency.outcome}
                   for label, latency in latencies.items()},
            }
            log(f"{query.name:14} {len(answers['stowage']):7,} listed, same answer: {same}, "
                + ", ".join(f"{label} {report.milliseconds(latency.median)} ms"
                            for label, latency in latencies.items()))
        # Last: by now every worker has built its read model (a GET / timed
        # while one builds waits for the interpreter).
        floor = measure.time_query(clients, FLOOR, arguments.repeat,
                                   arguments.seconds_per_query, restart_after_timeout)
        results["floor"] = {label: latency.median for label, latency in floor.items()}
        log("floor (GET /): " + ", ".join(f"{label} {report.milliseconds(latency.median)} ms"
                                          for label, latency in floor.items()))
    finally:
        for service in services.values():
            service.stop()
        log(f"raw results in {report.save_raw(arguments.work_dir, suffix, results)}")
    write_section(arguments.output, results)
    return 0


def render(results: dict) -> str:
    lines = [
        f"### Provider listing: {results['roots']:,} roots ({results['providers']:,} providers)",
        "",
        "| query | listed | Stowage median | upstream median | ratio | ratio bound | same answer |",
        "|---|---|---|---|---|---|---|",
    ]
    floor = results.get("floor", {})
    for name, figures in results["queries"].items():
        ours, theirs = figures["stowage"]["median"], figures["upstream"]["median"]
        ratio = f"{theirs / ours:.1f}×" if ours and theirs and figures["same_answer"] else "—"
        # The most any Stowage answer could beat upstream's by: its HTTP floor.
        bound = f"{theirs / floor['stowage']:.0f}×" if theirs and floor.get("stowage") else "—"
        lines.append(
            f"| {name}: {figures['description']} (`{figures['query'] or '—'}`) "
            f"| {figures['listed']:,} | {report.milliseconds(ours)} ms "
            f"| {report.milliseconds(theirs)} ms | {ratio} | {bound} "
            f"| {'yes' if figures['same_answer'] else '**no**'} |"
        )
    if floor:
        lines += ["", f"HTTP floor (`GET /`, the version document): Stowage "
                  f"{report.milliseconds(floor.get('stowage'))} ms, upstream "
                  f"{report.milliseconds(floor.get('upstream'))} ms; \"ratio bound\" is "
                  "upstream's median over Stowage's floor, the most any answer could reach."]
    lines += ["", f"{report.machine_line(results['facts'])}; 2 workers × 4 threads each, side by "
              "side on one PostgreSQL server, microversion 1.39; medians of up to "
              f"{results['repeat']} runs, interleaved."]
    return "\n".join(lines) + "\n"


def write_section(path: Path, results: dict) -> None:
    """Replace this size's part of the provider listing section of ``path``."""
    report.write_sized_section(path, "Provider listing", BEGIN, END, results["roots"],
                               render(results))


if __name__ == "__main__":
    sys.exit(main())
