"""Spec: switching from upstream Placement 16.0.0 to Stowage and back, data and answers intact.

Upstream builds its database with its own code (``placement-manage db sync``,
then its API); ``stowage db import`` brings it into Stowage, which answers
every read as upstream does; writes made on Stowage reach upstream through
``stowage db export``, and upstream, restarted on its database, serves them
and keeps counting generations from where Stowage left them.
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tests.transfer.conftest import scratch_url, stowage_subprocess_args, write_config
from tests.transfer.placement import (
    AGG1,
    CN1,
    CN2,
    CONSUMERS,
    EMPTY_CONSUMER,
    INSTANCE,
    LONELY,
    MIGRATION,
    NUMA1,
    PROVIDERS,
    SHARED_DISK,
    Api,
    build_fleet,
    differing_reads,
    reads,
)

NEW_HOST = "c0000000-0000-4000-8000-0000000000a1"
NEW_CONSUMER = "d0000000-0000-4000-8000-0000000000a1"
BACK_HOST = "c0000000-0000-4000-8000-0000000000b1"


def upstream_api(upstream) -> Api:
    return Api(upstream.send)


def changes_of(output: str) -> dict[str, tuple[int, int, int]]:
    """The "Changes written" table of a transfer's report: table → (inserted, updated, deleted)."""
    found = {}
    lines = output.splitlines()
    if "Changes written:" not in lines:
        return found
    for line in lines[lines.index("Changes written:") + 2 :]:
        if not line.strip():
            break
        table, inserted, updated, deleted = line.split()
        found[table] = (int(inserted.replace(",", "")), int(updated.replace(",", "")), int(deleted.replace(",", "")))
    return found


def test_stowage_serves_an_imported_upstream_database_as_upstream_did_and_upstream_gets_its_writes_back(
    upstream, upstream_backend, tmp_path, request, stowage_command, open_stowage_app
):
    upstream_side = upstream_api(upstream)
    build_fleet(upstream_side)
    target_url = scratch_url(upstream_backend, tmp_path, request.config)
    config = write_config(tmp_path, target_url)
    assert stowage_command("db", "upgrade", "--config-file", config).status == 0
    # A Stowage already serving the (empty) target: its workers' read model
    # must notice the imported data.
    stowage = open_stowage_app(target_url)
    before = stowage.api.call("GET", "/allocation_candidates?resources=VCPU:1", expect=200).json()
    assert before["allocation_requests"] == []

    imported = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config)

    assert imported.status == 0, imported.out + imported.err
    assert "Verified: the target holds the source's data." in imported.out
    assert differing_reads(upstream_side, stowage.api, reads(PROVIDERS, CONSUMERS)) == []

    # Writes on Stowage: a new provider and allocation, a deleted provider,
    # a changed inventory, a new trait, a consumer's allocations removed.
    stowage.api.create_provider(NEW_HOST, "new-host")
    stowage.api.set_inventories(NEW_HOST, {"VCPU": {"total": 4}, "CUSTOM_FPGA": {"total": 1}})
    stowage.api.call("DELETE", f"/resource_providers/{LONELY}", expect=204)
    stowage.api.call("PUT", "/traits/CUSTOM_BRONZE", expect=201)
    stowage.api.set_traits(NEW_HOST, ["CUSTOM_BRONZE"])
    generation = stowage.api.generation(CN2)
    stowage.api.call("PUT", f"/resource_providers/{CN2}/inventories/VCPU",
                     {"resource_provider_generation": generation, "total": 48, "allocation_ratio": 8.0}, expect=200)
    stowage.api.allocate(NEW_CONSUMER, {NEW_HOST: {"VCPU": 2}, CN2: {"MEMORY_MB": 128}})
    stowage.api.call("DELETE", f"/allocations/{MIGRATION}", expect=204)
    stowage.api.set_aggregates(NUMA1, [AGG1])

    exported = stowage_command("db", "export", "--to", upstream.database_url, "--config-file", config)

    assert exported.status == 0, exported.out + exported.err
    assert changes_of(exported.out)["resource_providers"][2] == 1  # lonely, deleted
    upstream.restart()
    providers = {**{uuid: name for uuid, name in PROVIDERS.items() if uuid != LONELY}, NEW_HOST: "new-host"}
    consumers = [*CONSUMERS, NEW_CONSUMER]
    assert differing_reads(upstream_side, stowage.api, reads(providers, consumers)) == []
    assert upstream_side.call("GET", f"/resource_providers/{LONELY}").status == 404
    assert upstream_side.call("GET", f"/allocations/{MIGRATION}", expect=200).json()["allocations"] == {}
    assert upstream_side.call("GET", f"/resource_providers/{CN2}/inventories/VCPU",
                              expect=200).json()["total"] == 48

    # Upstream goes on from the generations Stowage reported, and creates
    # rows of its own next to the exported ones (ids, sequences).
    generation = stowage.api.generation(CN2)
    upstream_side.call("PUT", f"/resource_providers/{CN2}/inventories/VCPU",
                       {"resource_provider_generation": generation, "total": 64}, expect=200)
    consumer_generation = stowage.api.consumer_generation(NEW_CONSUMER)
    assert upstream_side.call("PUT", f"/allocations/{NEW_CONSUMER}", {
        "allocations": {NEW_HOST: {"resources": {"VCPU": 1}}}, "project_id": "project-a", "user_id": "user-a",
        "consumer_generation": consumer_generation, "consumer_type": "INSTANCE",
    }).status == 204
    upstream_side.create_provider(BACK_HOST, "back-on-upstream", parent=NEW_HOST)
    upstream_side.call("PUT", "/resource_classes/CUSTOM_AFTER", expect=201)
    upstream_side.call("PUT", "/traits/CUSTOM_AFTER", expect=201)
    # The consumer kept without allocations came back at generation 0 (a GET
    # shows none for it, as upstream's always did).
    upstream_side.allocate(EMPTY_CONSUMER, {SHARED_DISK: {"DISK_GB": 5}}, generation=0)


def test_importing_again_changes_nothing_and_after_more_upstream_writes_brings_only_those(
    upstream, upstream_backend, tmp_path, request, stowage_command, open_stowage_app
):
    upstream_side = upstream_api(upstream)
    build_fleet(upstream_side)
    config = write_config(tmp_path, scratch_url(upstream_backend, tmp_path, request.config))
    assert stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config,
                           "--batch-size", "7").status == 0

    again = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config)

    assert again.status == 0
    assert "No changes: the target already held the source's data." in again.out

    upstream_side.call("DELETE", f"/allocations/{INSTANCE}", expect=204)
    upstream_side.call("DELETE", f"/resource_providers/{LONELY}", expect=204)
    upstream_side.call("PUT", "/traits/CUSTOM_LATER", expect=201)
    upstream_side.set_traits(CN1, ["CUSTOM_LATER"])
    upstream_side.set_inventories(NUMA1, {"VCPU": {"total": 6}})

    later = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config,
                            "--batch-size", "5")

    assert later.status == 0, later.out + later.err
    changes = changes_of(later.out)
    assert changes["allocations"] == (0, 0, 4)  # instance-1's four
    assert changes["consumers"] == (0, 0, 1)
    assert changes["resource_providers"] == (0, 2, 1)  # lonely deleted; cn1 and numa1 at new generations
    assert changes["traits"] == (1, 0, 0)
    assert changes["resource_provider_traits"] == (1, 0, 2)
    assert changes["inventories"] == (0, 1, 1)  # numa1: VCPU changed, MEMORY_MB gone
    assert set(changes) == {"allocations", "consumers", "resource_providers", "traits",
                            "resource_provider_traits", "inventories"}
    target_url = config_url(config)
    stowage = open_stowage_app(target_url)
    remaining = {uuid: name for uuid, name in PROVIDERS.items() if uuid != LONELY}
    assert differing_reads(upstream_side, stowage.api, reads(remaining, CONSUMERS)) == []


def config_url(config: str) -> str:
    for line in Path(config).read_text().splitlines():
        if line.startswith("connection = "):
            return line.removeprefix("connection = ").strip()
    raise AssertionError("no connection line")


def test_an_import_killed_after_its_first_batch_is_completed_by_running_it_again(
    upstream, upstream_backend, tmp_path, request, stowage_command, open_stowage_app
):
    upstream_side = upstream_api(upstream)
    build_fleet(upstream_side)
    target_url = scratch_url(upstream_backend, tmp_path, request.config)
    config = write_config(tmp_path, target_url)
    assert stowage_command("db", "upgrade", "--config-file", config).status == 0
    command = stowage_subprocess_args("db", "import", "--from", upstream.database_url, "--config-file", config,
                                      "--batch-size", "1", "--pause", "0.2")
    log = tmp_path / "import.log"
    with open(log, "wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_rows(target_url, "consumer_types", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert count_rows(target_url, "resource_providers") == 0, "the import finished before the kill"

    resumed = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config)

    assert resumed.status == 0, resumed.out + resumed.err
    assert "Verified: the target holds the source's data." in resumed.out
    assert differing_reads(upstream_side, open_stowage_app(target_url).api, reads(PROVIDERS, CONSUMERS)) == []


def wait_for_rows(url: str, table: str, child: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until ``table`` has a row (a first batch committed) while ``child`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, f"the command ended early ({child.returncode})"
        try:
            rows = count_rows(url, table)
        except SQLAlchemyError:
            rows = 0  # the command has not created the schema yet
        if rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"no row in {table} after {timeout} s")


def count_rows(url: str, table: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(text(table))) or 0
    finally:
        engine.dispose()


def test_importing_again_after_stowage_took_writes_is_refused_and_discards_them_only_when_told(
    upstream, upstream_backend, tmp_path, request, stowage_command, open_stowage_app
):
    upstream_side = upstream_api(upstream)
    build_fleet(upstream_side)
    target_url = scratch_url(upstream_backend, tmp_path, request.config)
    config = write_config(tmp_path, target_url)
    assert stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config).status == 0
    stowage = open_stowage_app(target_url)
    stowage.api.create_provider(NEW_HOST, "written-on-stowage")

    refused = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config)

    assert refused.status == 2
    assert "has taken 1 write(s) since the import from" in refused.err
    assert "--overwrite" in refused.err and "db export" in refused.err
    assert stowage.api.call("GET", f"/resource_providers/{NEW_HOST}").status == 200
    forced = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config,
                             "--overwrite")
    assert forced.status == 0, forced.out + forced.err
    assert stowage.api.call("GET", f"/resource_providers/{NEW_HOST}").status == 404


def test_importing_into_a_database_stowage_filled_itself_is_refused(
    upstream, upstream_backend, tmp_path, request, stowage_command, open_stowage_app
):
    build_fleet(upstream_api(upstream))
    target_url = scratch_url(upstream_backend, tmp_path, request.config)
    config = write_config(tmp_path, target_url)
    assert stowage_command("db", "upgrade", "--config-file", config).status == 0
    open_stowage_app(target_url).api.create_provider(NEW_HOST, "never-imported")

    refused = stowage_command("db", "import", "--from", upstream.database_url, "--config-file", config)

    assert refused.status == 2
    assert "holds providers or consumers that no import brought in" in refused.err
