"""Machine facts and the Markdown results written into docs/performance.md."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

from bench.scenarios import CLAIM_QUERY, QUERIES

MARKER = "<!-- Everything below is written by `bash bench/run`; edit the text above it. -->"
STOWAGE = "stowage"
STOWAGE_TUNED = "stowage-tuned"
UPSTREAM_LABELS = ("upstream", "upstream-tuned")


def _first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_facts(stowage_python: str, upstream_python: str, postgresql_version: str) -> dict:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    version_of = "import importlib.metadata as m, sys; print(sys.version.split()[0], m.version({!r}))"
    commit = _first_line(["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "stowage": f"commit {commit}",
        "stowage_python_gunicorn": _first_line(
            [stowage_python, "-c", version_of.format("gunicorn")]),
        "upstream_python_placement": _first_line(
            [upstream_python, "-c", version_of.format("openstack-placement")]),
        "postgresql": postgresql_version,
    }


def machine_line(facts: dict) -> str:
    """When, which commit, and on what machine and PostgreSQL, in one sentence."""
    return (f"{facts['date']}, {facts['stowage']}: {facts['cpu_model']}, {facts['cpus']} CPUs, "
            f"{facts['memory_gib']} GiB, {facts['kernel']}; PostgreSQL {facts['postgresql']}")


def milliseconds(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def _ratio(ours: float, theirs: float, against: str) -> str:
    """Stowage's median over upstream's, and the speed-up it means."""
    ratio = ours / theirs
    if ratio < 1:
        return f"{ratio:.2g} ({1 / ratio:.0f}× faster than {against})"
    return f"{ratio:.2f} ({ratio:.1f}× slower than {against})"


def _best_upstream(results: dict, query: str) -> tuple[str, dict] | None:
    """The faster upstream configuration (by median) that answered the query."""
    answered = [(label, results["queries"][query][label]) for label in UPSTREAM_LABELS
                if results["queries"].get(query, {}).get(label, {}).get("median") is not None]
    return min(answered, key=lambda item: item[1]["median"]) if answered else None


def render(results: dict) -> str:
    facts = results["facts"]
    sizes = results["family_sizes"]
    lines = [
        f"## Results: {results['roots']:,} roots",
        "",
        f"Run {facts['date']} on {facts['cpus']} CPUs ({facts['cpu_model']}), "
        f"{facts['memory_gib']} GiB, {facts['kernel']}; PostgreSQL {facts['postgresql']}.",
        f"Stowage {facts['stowage']} (Python, gunicorn: {facts['stowage_python_gunicorn']}); "
        f"upstream (Python, openstack-placement: {facts['upstream_python_placement']}).",
        f"Both: gunicorn, {results['workers']} workers × {results['threads']} threads (gthread), "
        f"keep-alive {results.get('keep_alive', 2)} s, noauth2 on loopback, one PostgreSQL database each; "
        "microversion 1.39; "
        f"per-request timeout {results['timeout']:g} s. Client, servers and PostgreSQL share "
        "the machine.",
        "",
        f"Providers: {results['providers']:,} ({sizes['flat']:,} flat compute nodes, "
        f"{sizes['nfv']:,} NFV hosts × 7 providers, {sizes['wide']:,} wide GPU hosts × 9, "
        f"{sizes['shared']:,} compute nodes on {sizes['storage_pools']:,} shared storage pools).",
        "",
        "### Loading (POST providers, PUT inventories, traits, aggregates; "
        f"{results['load_clients']} concurrent clients)",
        "",
        *([f"Databases loaded by the run of {results['load_reused_from']} and reused "
           "(`--reuse-data`); its load figures.", ""] if results.get("load_reused_from") else []),
        "| service | requests | seconds | requests/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, service in results["services"].items():
        load = service.get("load")
        if load and results.get("bulk_load"):
            lines.append(f"| {label} | bulk SQL insert (`--bulk-load`) | {load['seconds']:.1f} | – |")
        elif load:
            lines.append(f"| {label} | {load['requests']:,} | {load['seconds']:.1f} | "
                         f"{load['requests'] / load['seconds']:.0f} |")
    lines += [
        "",
        "upstream-tuned serves upstream's database with `[placement] max_allocation_candidates "
        "= 1000`, `allocation_candidates_generation_strategy = breadth-first` and "
        "`[workarounds] optimize_for_wide_provider_trees = true`; stowage-tuned serves "
        "Stowage's database with the same `max_allocation_candidates = 1000` (Stowage has "
        "no use for the other two).",
        "",
        "### GET /allocation_candidates latency",
        "",
        *(["Upstream was not run at this size: the providers were inserted straight into "
           "Stowage's database, and loading upstream over HTTP would take hours.", ""]
          if results.get("bulk_load") else []),
        "Milliseconds over the timed runs (after one warm-up each; the services take "
        "turns, one run each per round). *ratio* is Stowage's median divided by the "
        "faster upstream configuration's median (stowage-tuned's by upstream-tuned's): "
        "below 1 Stowage is faster. Where that upstream's answer is not the same size "
        "as Stowage's (upstream-tuned caps it at 1,000 candidates), the ratio says so; "
        "stowage-tuned and upstream-tuned return the same number. "
        "*candidates* is the number of allocation requests returned.",
        "",
        "| query | service | median ms | p95 ms | runs | candidates | ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for query in QUERIES:
        per_service = results["queries"].get(query.name, {})
        best = _best_upstream(results, query.name)
        stowage = per_service.get(STOWAGE, {})
        tuned = per_service.get("upstream-tuned", {})
        for label in (STOWAGE, STOWAGE_TUNED, *UPSTREAM_LABELS):
            latency = per_service.get(label)
            if latency is None:
                if label not in results["services"]:
                    continue  # not part of this run (see above)
                skipped = f"{query.name} on {label} (skipped: --skip)" in results["missing"]
                why = "skipped (`--skip`)" if skipped else "not run (time budget)"
                lines.append(f"| {query.name} | {label} | {why} | | | | |")
                continue
            ratio = ""
            if label == STOWAGE and best and stowage.get("median") is not None:
                against = best[0]
                if best[1]["candidates"] != stowage["candidates"]:
                    against += f", whose answer has {best[1]['candidates']:,} candidates"
                ratio = _ratio(stowage["median"], best[1]["median"], against)
            elif label == STOWAGE and stowage.get("median") is not None:
                ratio = "upstream not run" if results.get("bulk_load") else "upstream did not answer"
            elif label == STOWAGE_TUNED and latency.get("median") and tuned.get("median"):
                ratio = _ratio(latency["median"], tuned["median"], "upstream-tuned")
            if latency["outcome"] != "ok":
                median = p95 = latency["outcome"]
            else:
                median, p95 = milliseconds(latency["median"]), milliseconds(latency["p95"])
            candidates = "" if latency["candidates"] is None else f"{latency['candidates']:,}"
            lines.append(f"| {query.name} | {label} | {median} | {p95} | "
                         f"{len(latency['samples'])} | {candidates} | {ratio} |")
    lines += ["", "Queries (all at microversion 1.39):", ""]
    lines += [f"- **{query.name}** — {query.description}: `{query.query_string}`"
              for query in QUERIES]
    lines += [
        "",
        "### Resident memory per worker (MiB)",
        "",
        "VmRSS of each gunicorn worker after loading and after the queries (for "
        "Stowage, with its read model loaded), and the highest VmHWM seen after any "
        "query. A worker restarted after a timeout starts again from zero.",
        "",
        "| service | after load | after queries | peak |",
        "| --- | --- | --- | --- |",
    ]

    def rss(workers: list[dict] | None) -> str:
        return ", ".join(_mib(worker["rss_kib"]) for worker in workers or []) or "–"

    for label, service in results["services"].items():
        peak = _mib(service["peak_hwm_kib"]) if service.get("peak_hwm_kib") else "–"
        lines.append(f"| {label} | {rss(service['memory_after_load'])} | "
                     f"{rss(service.get('memory_after_queries'))} | {peak} |")
    lines += [
        "",
        f"### Claims ({results['claim_clients']} concurrent clients)",
        "",
        f"Each client repeats: `GET /allocation_candidates?{CLAIM_QUERY.query_string}`, "
        "then `PUT /allocations/{new consumer}` with one of the candidates, again after "
        "a 409. Afterwards every provider that received an allocation is checked over HTTP: "
        "usage ≤ (total − reserved) × allocation_ratio. Then the claims are deleted, so "
        "each run (and the next benchmark) starts from the loaded state.",
        "",
        "| service | claims | 409 retries | seconds | claims/s | providers checked | over capacity | outcome |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, service in results["services"].items():
        claims = service.get("claims")
        if not claims:
            lines.append(f"| {label} | not run (time budget) | | | | | | |")
            continue
        lines.append(
            f"| {label} | {claims['claims']} | {claims['conflicts']} | {claims['seconds']:.1f} | "
            f"{claims['per_second']:.1f} | {claims['providers_checked']} | "
            f"{len(claims['over_capacity'])} | {claims['outcome']} |")
    if results.get("missing"):
        lines += ["", "Not measured: " + "; ".join(results["missing"]) + "."]
    return "\n".join(lines) + "\n"


DEFAULT_HEADER = """# Performance

Stowage against upstream Placement, side by side: `bash bench/run` (see README).

"""


RESULTS_HEADING = "## Results: "


def save_raw(work_dir: Path, suffix: str, results: dict) -> Path:
    """``results`` as JSON in ``work_dir/results-<suffix>.json``; returns the path."""
    work_dir.mkdir(parents=True, exist_ok=True)
    raw = work_dir / f"results-{suffix}.json"
    raw.write_text(json.dumps(results, indent=2, default=str))
    return raw


def write(path: Path, results: dict) -> None:
    """Replace this run's ``## Results: N roots`` section of ``path``, keeping
    the hand-written text above MARKER and other sizes' sections."""
    header, sections = DEFAULT_HEADER, {}
    if path.exists():
        text = path.read_text()
        if MARKER in text:
            header, generated = text.split(MARKER, 1)
            for section in generated.split("\n" + RESULTS_HEADING)[1:]:
                roots = int(section.split(" ", 1)[0].replace(",", ""))
                sections[roots] = RESULTS_HEADING + section.strip("\n") + "\n"
    sections[results["roots"]] = render(results)
    body = "\n".join(sections[roots] for roots in sorted(sections))
    path.write_text(header + MARKER + "\n\n" + body)


def write_sized_section(path: Path, title: str, begin: str, end: str, roots: int,
                        rendered: str) -> None:
    """Put ``rendered`` (which starts with ``### {title}: {roots:,} roots``) into
    the ``## {title}`` section of ``path`` between the ``begin`` and ``end``
    markers, replacing that size's earlier part and keeping the other sizes',
    in order of size. A new section goes above the part ``bash bench/run``
    rewrites, which would drop it."""
    text = path.read_text() if path.exists() else "# Performance\n"
    if begin not in text:
        section = f"## {title}\n\n{begin}\n{end}\n\n"
        text = text.replace(MARKER, section + MARKER, 1) if MARKER in text \
            else text + "\n" + section
    head, rest = text.split(begin, 1)
    body, tail = rest.split(end, 1)
    heading = f"### {title}: "
    parts = {}
    for part in body.split("\n" + heading)[1:]:
        parts[int(part.split(" ", 1)[0].replace(",", ""))] = heading + part.strip("\n") + "\n"
    parts[roots] = rendered
    joined = "\n".join(parts[size] for size in sorted(parts))
    path.write_text(f"{head}{begin}\n\n{joined}\n{end}{tail}")
