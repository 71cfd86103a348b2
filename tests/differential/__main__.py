"""Long differential runs from the command line, with a report of every class.

    python -m tests.differential --backend sqlite --seeds 20 --steps 500
    python -m tests.differential --backend postgresql --postgresql-url URL --seeds 1-20
    python -m tests.differential --backend mysql --mysql-url URL --seeds 1-20
    python -m tests.differential --against upstream --hash-seed 1 --seeds 5

Classes are merged across seeds (first reproduction kept) and written, with
their reproductions, to ``--out`` (text) and ``--json``. ``--against
upstream`` compares upstream with itself under another ``PYTHONHASHSEED``:
what differs there is not a deterministic property of upstream (set
iteration order), which is how order normalisations are justified.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from tests.differential.allowlist import allow_list, allowance_for
from tests.differential.runner import (
    Finding,
    Session,
    parse_seeds,
    run_seed,
    show_finding,
    shrink,
)
from tests.differential.services import Service, StowageService, UpstreamService
from tests.support import BACKENDS, open_test_database


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential")
    parser.add_argument("--backend", choices=list(BACKENDS), default="sqlite")
    parser.add_argument("--postgresql-url", default=os.environ.get("STOWAGE_TEST_POSTGRESQL_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("STOWAGE_TEST_MYSQL_URL"))
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--shrink-seconds", type=float, default=60.0,
                        help="time to shrink each new class (0: no shrinking)")
    parser.add_argument("--against", choices=["stowage", "upstream"], default="stowage")
    parser.add_argument("--hash-seed", default="1", help="PYTHONHASHSEED of the second upstream")
    parser.add_argument("--no-allow-list", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", default=None)
    options = parser.parse_args(argv)
    server_url = {"postgresql": options.postgresql_url, "mysql": options.mysql_url}.get(options.backend)

    reference = UpstreamService(options.backend, server_url)
    candidate: Service
    if options.against == "upstream":
        candidate = UpstreamService(options.backend, server_url, options.hash_seed)
        candidate.label = f"upstream(PYTHONHASHSEED={options.hash_seed})"
    else:
        candidate = StowageService(open_test_database(options.backend, server_url))
    session = Session(reference, candidate)
    rows = [] if options.no_allow_list else allow_list()
    classes: dict[tuple[Any, ...], Finding] = {}
    seen: dict[tuple[Any, ...], list[str]] = {}
    started = time.monotonic()
    try:
        for seed in parse_seeds(options.seeds):
            run = run_seed(session, options.backend, seed, options.steps,
                           explained=lambda exchange: allowance_for(exchange, rows) is not None)
            new = [finding for finding in run.findings if finding.signature not in classes]
            print(f"seed {seed}: {run.seconds:.1f} s, {len(run.findings)} classes "
                  f"({len(new)} new), {run.allowed} allowed", file=sys.stderr, flush=True)
            for finding in run.findings:
                seen.setdefault(finding.signature, []).append(f"seed {seed}")
            for finding in new:
                if options.shrink_seconds > 0:
                    shrink(session, run, finding, options.shrink_seconds)
                classes[finding.signature] = finding
    finally:
        reference.stop()
        if isinstance(candidate, UpstreamService):
            candidate.stop()
    elapsed = time.monotonic() - started
    summary = (f"{len(classes)} classes of difference on {options.backend}, seeds "
               f"{options.seeds}, {options.steps} steps, {elapsed:.0f} s")
    text = [summary, ""]
    for signature, finding in classes.items():
        text.append(show_finding(finding, session.labels))
        text.append("  seen in: " + ", ".join(seen[signature]) + "\n")
    report = "\n".join(text)
    if options.out:
        with open(options.out, "w", encoding="utf-8") as handle:
            handle.write(report)
    else:
        print(report)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump([_as_json(finding, seen[signature]) for signature, finding in classes.items()],
                      handle, indent=1, ensure_ascii=False)
    return 1 if classes else 0


def _as_json(finding: Finding, seen: list[str]) -> dict[str, Any]:
    exchanges = finding.reproduction or [finding.first]
    return {
        "signature": [list(part) if isinstance(part, tuple) else part
                      for part in finding.signature],
        "backend": finding.backend, "seed": finding.seed, "step": finding.first.index,
        "shrunk": finding.shrunk, "seen": seen,
        "steps": [{
            "method": exchange.step.method, "target": exchange.requests[0].target,
            "headers": exchange.step.headers,
            "body": exchange.requests[0].body.decode("utf-8", "backslashreplace"),
            "answers": [answer.to_dict() for answer in exchange.answers],
            "differences": [[aspect.where, aspect.reference, aspect.candidate]
                            for aspect in exchange.aspects],
        } for exchange in exchanges],
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
