"""Spec: ``stowage db copy`` moves a Stowage database to any backend, safely and completely.

The source is filled through Stowage's own API (``placement.build_fleet``);
a copy must answer every read as its source does, and keep working as a
database of its own (new rows get fresh ids on every backend).
"""
from __future__ import annotations

import signal
import subprocess

import pytest

from stowage.cmd.database import prepare_database
from tests.transfer.conftest import scratch_url, stowage_subprocess_args, write_config
from tests.transfer.placement import CN1, CN2, CONSUMERS, LONELY, PROVIDERS, build_fleet, differing_reads, reads
from tests.transfer.test_switching import changes_of, count_rows, wait_for_rows

# (source, target) backends: the embedded file to each server, and back.
PAIRS = [("sqlite", "sqlite"), ("sqlite", "postgresql"), ("sqlite", "mysql"), ("postgresql", "mysql"),
         ("mysql", "sqlite")]
NEW_PROVIDER = "c0000000-0000-4000-8000-0000000000c1"


@pytest.fixture
def source(tmp_path, request, stowage_command, open_stowage_app):
    """A Stowage database of the test's source backend, holding the fleet."""

    def make(backend: str):
        url = scratch_url(backend, tmp_path, request.config, name="source")
        database = open_stowage_app(url)
        prepare_database(database.database)
        build_fleet(database.api)
        return url, database

    return make


@pytest.mark.parametrize(("source_backend", "target_backend"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_a_copy_answers_as_its_source_and_a_second_copy_changes_nothing(
    source_backend, target_backend, source, tmp_path, request, stowage_command, open_stowage_app
):
    source_url, original = source(source_backend)
    target_url = scratch_url(target_backend, tmp_path, request.config, name="target")

    copied = stowage_command("db", "copy", "--from", source_url, "--to", target_url, "--batch-size", "4")

    assert copied.status == 0, copied.out + copied.err
    assert "Verified: the target holds the source's data." in copied.out
    copy = open_stowage_app(target_url)
    assert differing_reads(original.api, copy.api, reads(PROVIDERS, CONSUMERS)) == []
    again = stowage_command("db", "copy", "--from", source_url, "--to", target_url)
    assert again.status == 0
    assert "No changes: the target already held the source's data." in again.out
    # The copy is a database of its own: new rows get ids nobody holds.
    copy.api.create_provider(NEW_PROVIDER, "made-on-the-copy", parent=CN2)
    copy.api.call("PUT", "/resource_classes/CUSTOM_ON_COPY", expect=201)
    copy.api.allocate("d0000000-0000-4000-8000-0000000000c1", {CN2: {"VCPU": 1}})


def test_a_copy_refuses_a_target_with_data_of_its_own_unless_told_to_overwrite_it(
    source, tmp_path, request, stowage_command, open_stowage_app
):
    source_url, _original = source("sqlite")
    target_url = scratch_url("sqlite", tmp_path, request.config, name="target")
    assert stowage_command("db", "upgrade", "--config-file", write_config(tmp_path, target_url)).status == 0
    other = open_stowage_app(target_url)
    other.api.create_provider(NEW_PROVIDER, "someone-elses")

    refused = stowage_command("db", "copy", "--from", source_url, "--to", target_url)

    assert refused.status == 2
    assert "the target holds data the source does not: resource_providers" in refused.err
    assert "--overwrite" in refused.err
    assert "Traceback" not in refused.err
    assert count_rows(target_url, "resource_providers") == 1

    overwritten = stowage_command("db", "copy", "--from", source_url, "--to", target_url, "--overwrite")

    assert overwritten.status == 0, overwritten.out + overwritten.err
    assert other.api.call("GET", f"/resource_providers/{NEW_PROVIDER}").status == 404
    assert count_rows(target_url, "resource_providers") == len(PROVIDERS)


def test_a_copy_of_a_source_changed_since_brings_only_the_changes(
    source, tmp_path, request, stowage_command, open_stowage_app
):
    source_url, original = source("sqlite")
    target_url = scratch_url("postgresql", tmp_path, request.config, name="target")
    assert stowage_command("db", "copy", "--from", source_url, "--to", target_url).status == 0
    original.api.call("DELETE", f"/resource_providers/{LONELY}", expect=204)
    original.api.call("PUT", "/traits/CUSTOM_NEWER", expect=201)
    original.api.set_traits(CN1, ["CUSTOM_NEWER"])

    dry = stowage_command("db", "copy", "--from", source_url, "--to", target_url, "--overwrite", "--dry-run")
    assert dry.status == 1
    assert "Dry run, nothing written; these changes would be made:" in dry.out
    assert count_rows(target_url, "resource_providers") == len(PROVIDERS)

    caught_up = stowage_command("db", "copy", "--from", source_url, "--to", target_url, "--overwrite")

    assert caught_up.status == 0, caught_up.out + caught_up.err
    assert changes_of(caught_up.out) == {
        "traits": (1, 0, 0),
        "resource_providers": (0, 1, 1),
        "resource_provider_traits": (1, 0, 2),
    }
    copy = open_stowage_app(target_url)
    remaining = {uuid: name for uuid, name in PROVIDERS.items() if uuid != LONELY}
    assert differing_reads(original.api, copy.api, reads(remaining, CONSUMERS)) == []


@pytest.mark.parametrize("target_backend", ["sqlite", "postgresql", "mysql"])
def test_a_copy_killed_after_its_first_batch_is_completed_by_running_it_again(
    target_backend, source, tmp_path, request, stowage_command, open_stowage_app
):
    source_url, original = source("sqlite")
    target_url = scratch_url(target_backend, tmp_path, request.config, name="target")
    command = stowage_subprocess_args("db", "copy", "--from", source_url, "--to", target_url,
                                      "--batch-size", "1", "--pause", "0.2")
    with open(tmp_path / "copy.log", "wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_rows(target_url, "consumer_types", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert count_rows(target_url, "resource_providers") == 0, "the copy finished before the kill"

    # An interrupted copy holds nothing but the source's rows: no --overwrite needed.
    resumed = stowage_command("db", "copy", "--from", source_url, "--to", target_url)

    assert resumed.status == 0, resumed.out + resumed.err
    assert "Verified: the target holds the source's data." in resumed.out
    assert differing_reads(original.api, open_stowage_app(target_url).api, reads(PROVIDERS, CONSUMERS)) == []
