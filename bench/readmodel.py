"""The fast engine's read model at size: start-up build, memory, refresh per write.

    bash bench/run readmodel                  # 105,000 roots (400,000 providers)
    bash bench/run readmodel --roots 10000

The scenario's providers are bulk-loaded into a PostgreSQL database; then a
fresh process (so that its memory is the model's, not the loader's) builds
the read model as a worker does at start-up, and times the refresh that
follows each kind of write: a claim, an inventory update, a trait change
(each one tree, patched in place), a custom class renamed (the trees using
it), a new tree, a child added to a tree and a tree deleted (each a model
sharing the indexes of the one before), and a worker further behind than
the change feed keeps (told the changed trees by ``stowage_tree_revisions``).
Writes are plain SQL in ``Database.write``, as any writer's: the triggers
note the trees and the revision follows. Results go into the read-model
section of docs/performance.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update

from bench import bulk, report, scenarios
from bench.services import PostgreSQL
from stowage.domain.candidates import ReadModelCache
from stowage.storage import schema
from stowage.storage.catalog import sync_standard_names
from stowage.storage.changes import current_revision, load_trees
from stowage.storage.common import CHANGES_KEPT, fold_pruned_changes, utcnow
from stowage.storage.database import Database

REPOSITORY = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- read-model results: bench/readmodel.py writes this part -->", "<!-- end of read-model results -->"
CUSTOM_CLASS = "CUSTOM_BENCH_RENAMED"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.readmodel", description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=105_000)
    parser.add_argument("--writes", type=int, default=30, help="writes of each kind timed")
    parser.add_argument("--lagging-trees", type=int, default=1000,
                        help="trees changed while the lagging worker was idle")
    parser.add_argument("--work-dir", type=Path, default=REPOSITORY / "bench/.work")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "docs/performance.md")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _status_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class Writer:
    """Plain-SQL writes of each kind, on a second ``Database`` (another worker)."""

    def __init__(self, url: str, seed: int = 0) -> None:
        self.database = Database.from_url(url)
        self.rng = random.Random(seed)
        with self.database.write() as connection:
            ids = connection.execute(
                select(schema.resource_providers.c.id).where(
                    schema.resource_providers.c.id == schema.resource_providers.c.root_provider_id,
                    schema.resource_providers.c.name.like("flat-%"),
                )
            ).scalars()
            self.hosts = list(ids)
            class_rows = connection.execute(select(schema.resource_classes.c.name, schema.resource_classes.c.id))
            classes = {name: class_id for name, class_id in class_rows}
            self.vcpu, self.disk = classes["VCPU"], classes["DISK_GB"]
            self.trait = connection.execute(
                select(schema.traits.c.id).where(schema.traits.c.name == "CUSTOM_BENCH_GOLD")
            ).scalar_one()
            now = utcnow()
            self.project = connection.execute(
                insert(schema.projects).values(external_id=f"bench-{uuid.uuid4()}", created_at=now)
                .returning(schema.projects.c.id)
            ).scalar_one()
            self.user = connection.execute(
                insert(schema.users).values(external_id=f"bench-{uuid.uuid4()}", created_at=now)
                .returning(schema.users.c.id)
            ).scalar_one()
            # A name of its own: ``--measure`` may run again on a database.
            self.class_name = f"{CUSTOM_CLASS}_{uuid.uuid4().hex[:8].upper()}"
            self.custom = connection.execute(
                insert(schema.resource_classes)
                .values(id=select(func.max(schema.resource_classes.c.id) + 1).scalar_subquery(),
                        name=self.class_name, created_at=now)
                .returning(schema.resource_classes.c.id)
            ).scalar_one()
            # The class renamed later: on ten trees.
            connection.execute(insert(schema.inventories), [
                {"resource_provider_id": host, "resource_class_id": self.custom, "total": 4, "reserved": 0,
                 "min_unit": 1, "max_unit": 4, "step_size": 1, "allocation_ratio": 1.0, "created_at": now}
                for host in self.hosts[:10]
            ])
        self.renames = 0
        self.new_roots: list[int] = []

    def host(self) -> int:
        return self.rng.choice(self.hosts)

    def claim(self, connection) -> None:
        host = self.host()
        consumer = connection.execute(
            insert(schema.consumers).values(uuid=str(uuid.uuid4()), project_id=self.project, user_id=self.user,
                                            generation=0, created_at=utcnow())
            .returning(schema.consumers.c.id)
        ).scalar_one()
        connection.execute(insert(schema.allocations).values(
            resource_provider_id=host, consumer_id=consumer, resource_class_id=self.vcpu, used=1,
            created_at=utcnow()))
        self._bump(connection, host)

    def inventory_update(self, connection) -> None:
        host = self.host()
        connection.execute(
            update(schema.inventories)
            .where(schema.inventories.c.resource_provider_id == host,
                   schema.inventories.c.resource_class_id == self.disk)
            .values(total=schema.inventories.c.total + self.rng.choice((-1, 1)))
        )
        self._bump(connection, host)

    def trait_change(self, connection) -> None:
        host = self.host()
        links = schema.provider_traits
        removed = connection.execute(
            delete(links).where(links.c.resource_provider_id == host, links.c.trait_id == self.trait)
        ).rowcount
        if not removed:
            connection.execute(insert(links).values(resource_provider_id=host, trait_id=self.trait,
                                                    created_at=utcnow()))
        self._bump(connection, host)

    def class_rename(self, connection) -> None:
        self.renames += 1
        connection.execute(
            update(schema.resource_classes).where(schema.resource_classes.c.id == self.custom)
            .values(name=f"{self.class_name}_{self.renames}" if self.renames % 2 else self.class_name)
        )

    def new_tree(self, connection) -> None:
        provider = connection.execute(
            insert(schema.resource_providers)
            .values(uuid=str(uuid.uuid4()), name=f"bench-new-{uuid.uuid4()}", generation=0, created_at=utcnow())
            .returning(schema.resource_providers.c.id)
        ).scalar_one()
        connection.execute(update(schema.resource_providers).where(schema.resource_providers.c.id == provider)
                           .values(root_provider_id=provider))
        self.new_roots.append(provider)

    def child_added(self, connection) -> None:
        host = self.host()
        connection.execute(
            insert(schema.resource_providers)
            .values(uuid=str(uuid.uuid4()), name=f"bench-child-{uuid.uuid4()}", generation=0,
                    parent_provider_id=host, root_provider_id=host, created_at=utcnow())
        )
        self._bump(connection, host)

    def tree_deleted(self, connection) -> None:
        """One of the trees ``new_tree`` made (a lone root: nothing else to delete)."""
        connection.execute(delete(schema.resource_providers)
                           .where(schema.resource_providers.c.id == self.new_roots.pop()))

    def _bump(self, connection, provider: int) -> None:
        connection.execute(update(schema.resource_providers).where(schema.resource_providers.c.id == provider)
                           .values(generation=schema.resource_providers.c.generation + 1))

    def write(self, kind: Callable) -> None:
        with self.database.write() as connection:
            kind(connection)


def _timed_refresh(database: Database, cache: ReadModelCache) -> tuple[float, float, bool, bool]:
    """Seconds the next request's ``cache.current`` takes (wall clock, with
    the database's answers, and this process's CPU); whether the model was
    patched in place (the same object), and whether the model after shares
    the indexes of the one before (patched in place or succeeded by a model
    sharing them: not copied, not rebuilt)."""
    with database.read(consistent=True) as connection:
        before = cache.latest
        started, cpu_started = time.perf_counter(), time.process_time()
        model = cache.current(connection)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    shared = before is not None and model.snapshot.by_uuid is before.snapshot.by_uuid
    return elapsed, cpu, model is before, shared


def measure(url: str, writes: int, lagging_trees: int) -> dict:
    """In this (fresh) process: build, memory, then refreshes per write kind."""
    database = Database.from_url(url)
    gc.collect()
    rss_before = _status_kib("VmRSS")
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        started = time.perf_counter()
        loaded = load_trees(connection, None)
        loaded_at = time.perf_counter()
        del loaded
    with database.read(consistent=True) as connection:
        built_started = time.perf_counter()
        model = cache.current(connection)
        built = time.perf_counter() - built_started
    gc.collect()
    results: dict = {
        "providers": model.provider_count,
        "load_seconds": loaded_at - started,
        "build_seconds": built,
        "model_mib": (_status_kib("VmRSS") - rss_before) / 1024,
        "peak_mib": _status_kib("VmHWM") / 1024,
        "refresh": {},
    }
    writer = Writer(url)
    _timed_refresh(database, cache)  # the writer's set-up
    kinds = {"claim": writer.claim, "inventory update": writer.inventory_update,
             "trait change": writer.trait_change, "class renamed (10 trees)": writer.class_rename,
             "new tree": writer.new_tree, "child added": writer.child_added, "tree deleted": writer.tree_deleted}
    for label, kind in kinds.items():
        samples, cpu_samples, patched, shared = [], [], 0, 0
        for _ in range(writes):
            writer.write(kind)
            elapsed, cpu, in_place, sharing = _timed_refresh(database, cache)
            samples.append(elapsed)
            cpu_samples.append(cpu)
            patched += in_place
            shared += sharing
        results["refresh"][label] = {"median_ms": 1000 * statistics.median(samples),
                                     "p95_ms": 1000 * sorted(samples)[int(0.95 * (len(samples) - 1))],
                                     "cpu_ms": 1000 * statistics.median(cpu_samples),
                                     "patched": patched, "shared": shared, "writes": writes}
        log(f"  {label}: {results['refresh'][label]['median_ms']:.2f} ms median")
    # A worker idle while other workers wrote, then more than the feed keeps.
    for _ in range(lagging_trees):
        writer.write(writer.claim)
    with writer.database.write() as connection:
        written = current_revision(connection)
        fold_pruned_changes(connection, written)
        connection.execute(delete(schema.changes))
        connection.execute(update(schema.revision).values(revision=written + CHANGES_KEPT))
    elapsed, cpu, in_place, sharing = _timed_refresh(database, cache)
    results["refresh"][f"lagging worker ({lagging_trees:,} claims, beyond the feed)"] = {
        "median_ms": 1000 * elapsed, "p95_ms": 1000 * elapsed, "cpu_ms": 1000 * cpu,
        "patched": int(in_place), "shared": int(sharing), "writes": 1}
    results["rss_after_mib"] = _status_kib("VmRSS") / 1024
    return results


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.measure:
        print(json.dumps(measure(arguments.measure, arguments.writes, arguments.lagging_trees)))
        return 0
    postgresql = PostgreSQL()
    name = f"bench_readmodel_n{arguments.roots}"
    url = postgresql.url(name).replace("+psycopg2", "+psycopg")
    providers = scenarios.build_inventory(arguments.roots)
    log(f"loading {len(providers):,} providers")
    postgresql.recreate(name)
    database = Database.from_url(url)
    database.upgrade()
    with database.write() as connection:
        sync_standard_names(connection)
    database.dispose()
    bulk.load(url, providers)
    postgresql.analyze(name)
    del providers
    log("measuring in a fresh process")
    answer = subprocess.run(
        [sys.executable, "-m", "bench.readmodel", "--measure", url, "--writes", str(arguments.writes),
         "--lagging-trees", str(arguments.lagging_trees)],
        check=True, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY,
    )
    results = json.loads(answer.stdout)
    results.update(roots=arguments.roots, facts=report.machine_facts(sys.executable, sys.executable,
                                                                     postgresql.version()))
    log(f"raw results in {report.save_raw(arguments.work_dir, f'readmodel_n{arguments.roots}', results)}")
    write_section(arguments.output, results)
    return 0


def render(results: dict) -> str:
    lines = [
        f"### Read model: {results['roots']:,} roots ({results['providers']:,} providers)",
        "",
        f"Start-up: a first set-based load, on a cold process, takes "
        f"{results['load_seconds']:.1f} s; the build a worker does (the load again, then the "
        f"indexes) {results['build_seconds']:.1f} s; the model takes "
        f"{results['model_mib']:.0f} MiB of the worker's memory (process peak "
        f"{results['peak_mib']:.0f} MiB, which includes one load thrown away before the build).",
        "",
        "*In place*: the same model patched; *indexes shared*: that, or a next model sharing the "
        "indexes of the one before (neither copied nor rebuilt).",
        "",
        "| write | refresh median | p95 | worker CPU (median) | in place | indexes shared |",
        "|---|---|---|---|---|---|",
    ]
    for label, figures in results["refresh"].items():
        lines.append(f"| {label} | {figures['median_ms']:.2f} ms | {figures['p95_ms']:.2f} ms "
                     f"| {figures['cpu_ms']:.2f} ms | {figures['patched']} of {figures['writes']} "
                     f"| {figures.get('shared', 0)} of {figures['writes']} |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, results: dict) -> None:
    """Replace this size's part of the read model section of ``path``."""
    report.write_sized_section(path, "Read model", BEGIN, END, results["roots"], render(results))


if __name__ == "__main__":
    sys.exit(main())
