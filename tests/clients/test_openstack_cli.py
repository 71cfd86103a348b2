"""The ``openstack`` CLI (python-openstackclient with osc-placement) against a served Stowage.

An operator's session, asserted on the parsed ``-f json`` output. Commands
run in process, the way osc-placement's own functional suite runs them (a
fresh ``OpenStackShell`` per command, about 50 ms, where a new ``openstack``
process costs 2 s); one test runs the installed ``openstack`` program to show
that the console script and the plugin's entry points work as installed.
Placement lists carry no order, so lists are compared as sets or sorted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.clients.cli import LATEST, OpenStackCli, fresh_client_per_command
from tests.clients.served import ServedStowage


@pytest.fixture
def cli(served_stowage: ServedStowage, monkeypatch) -> OpenStackCli:
    """An ``openstack`` runner with noauth2's admin token for the module's service."""
    fresh_client_per_command(monkeypatch)
    return OpenStackCli(
        [
            "--os-auth-type",
            "admin_token",
            "--os-endpoint",
            served_stowage.endpoint,
            "--os-token",
            served_stowage.token,
        ]
    )


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fresh_custom(prefix: str) -> str:
    return f"CUSTOM_{prefix}_{uuid.uuid4().hex[:12].upper()}"


def by(key: str, rows: list[dict]) -> dict[str, dict]:
    return {row[key]: row for row in rows}


def test_an_operator_builds_a_host_with_classes_inventories_traits_and_aggregates(cli):
    gold, fast = fresh_custom("GOLD"), fresh_custom("FAST")
    aggregate = str(uuid.uuid4())

    cli.ok(f"resource class create {gold}")
    assert cli.json(f"resource class show {gold}") == {"name": gold}
    assert gold in {row["name"] for row in cli.json("resource class list")}

    host = cli.json(f"resource provider create {fresh('host')}")
    assert host["generation"] == 0
    assert host["root_provider_uuid"] == host["uuid"]
    assert host["parent_provider_uuid"] is None
    child = cli.json(f"resource provider create {fresh('child')} --parent-provider {host['uuid']}")
    assert child["root_provider_uuid"] == child["parent_provider_uuid"] == host["uuid"]

    inventories = cli.json(
        f"resource provider inventory set {host['uuid']} "
        "--resource VCPU=8 --resource VCPU:allocation_ratio=4.0 --resource MEMORY_MB=16384"
    )
    assert {
        name: (row["total"], row["allocation_ratio"])
        for name, row in by("resource_class", inventories).items()
    } == {
        "VCPU": (8, 4.0),
        "MEMORY_MB": (16384, 1.0),
    }
    cli.json(f"resource provider inventory set {child['uuid']} --resource {gold}=4")
    listed = by("resource_class", cli.json(f"resource provider inventory list {host['uuid']}"))
    assert {name: (row["total"], row["used"]) for name, row in listed.items()} == {
        "VCPU": (8, 0),
        "MEMORY_MB": (16384, 0),
    }
    shown = cli.json(f"resource provider inventory show {host['uuid']} VCPU")
    assert (shown["total"], shown["reserved"], shown["step_size"]) == (8, 0, 1)

    cli.ok(f"trait create {fast}")
    traits = cli.json(
        f"resource provider trait set --trait {fast} --trait HW_CPU_X86_AVX2 {host['uuid']}"
    )
    assert {row["name"] for row in traits} == {fast, "HW_CPU_X86_AVX2"}
    listed_traits = cli.json(f"resource provider trait list {host['uuid']}")
    assert {row["name"] for row in listed_traits} == {fast, "HW_CPU_X86_AVX2"}

    # Two writes so far (inventories, traits): the host is at generation 2.
    assert cli.json(f"resource provider show {host['uuid']}")["generation"] == 2
    aggregates = cli.json(
        f"resource provider aggregate set --aggregate {aggregate} --generation 2 {host['uuid']}"
    )
    assert [row["uuid"] for row in aggregates] == [aggregate]
    assert [
        row["uuid"] for row in cli.json(f"resource provider aggregate list {host['uuid']}")
    ] == [aggregate]

    assert [
        row["uuid"]
        for row in cli.json(f"resource provider list --resource VCPU=2 --required {fast}")
    ] == [host["uuid"]]
    assert [row["uuid"] for row in cli.json(f"resource provider list --member-of {aggregate}")] == [
        host["uuid"]
    ]
    in_tree = by("uuid", cli.json(f"resource provider list --in-tree {child['uuid']}"))
    assert set(in_tree) == {host["uuid"], child["uuid"]}
    assert in_tree[host["uuid"]]["generation"] == 3

    renamed = cli.json(
        f"resource provider set {child['uuid']} --name {fresh('renamed')} --parent-provider {host['uuid']}"
    )
    assert renamed["parent_provider_uuid"] == host["uuid"]
    assert cli.json(f"resource provider list --name {renamed['name']}")[0]["uuid"] == child["uuid"]

    cli.ok(f"resource provider inventory delete {host['uuid']} --resource-class MEMORY_MB")
    assert [
        row["resource_class"]
        for row in cli.json(f"resource provider inventory list {host['uuid']}")
    ] == ["VCPU"]
    cli.ok(f"resource provider trait delete {host['uuid']}")
    assert cli.json(f"resource provider trait list {host['uuid']}") == []

    cli.ok(f"resource provider delete {child['uuid']}")
    cli.ok(f"resource provider delete {host['uuid']}")
    cli.ok(f"trait delete {fast}")
    cli.ok(f"resource class delete {gold}")
    assert gold not in {row["name"] for row in cli.json("resource class list")}


def test_an_allocation_is_set_shown_counted_in_usages_and_deleted(cli):
    gold = fresh_custom("GOLD")
    project, user, consumer = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    cli.ok(f"resource class create {gold}")
    host = cli.json(f"resource provider create {fresh('host')}")
    device = cli.json(
        f"resource provider create {fresh('device')} --parent-provider {host['uuid']}"
    )
    cli.json(
        f"resource provider inventory set {host['uuid']} --resource VCPU=8 --resource MEMORY_MB=4096"
    )
    cli.json(f"resource provider inventory set {device['uuid']} --resource {gold}=4")

    written = cli.json(
        f"resource provider allocation set {consumer} "
        f"--allocation rp={host['uuid']},VCPU=2,MEMORY_MB=1024 --allocation rp={device['uuid']},{gold}=1 "
        f"--project-id {project} --user-id {user} --consumer-type INSTANCE"
    )
    shown = cli.json(f"resource provider allocation show {consumer}")
    for rows in (written, shown):
        assert {row["resource_provider"]: row["resources"] for row in rows} == {
            host["uuid"]: {"VCPU": 2, "MEMORY_MB": 1024},
            device["uuid"]: {gold: 1},
        }
        assert {row["resource_provider"]: row["generation"] for row in rows} == {
            host["uuid"]: 2,
            device["uuid"]: 2,
        }
        assert {(row["project_id"], row["user_id"], row["consumer_type"]) for row in rows} == {
            (project, user, "INSTANCE")
        }

    usages = by("resource_class", cli.json(f"resource provider usage show {host['uuid']}"))
    assert {name: row["usage"] for name, row in usages.items()} == {"VCPU": 2, "MEMORY_MB": 1024}
    # From 1.38 usages are grouped by consumer type.
    [by_type] = cli.json(f"resource usage show {project}")
    assert by_type == {
        "resource_class": "INSTANCE",
        "usage": {"consumer_count": 1, "VCPU": 2, "MEMORY_MB": 1024, gold: 1},
    }
    flat = by(
        "resource_class", cli.json(f"resource usage show {project} --user-id {user}", version="1.9")
    )
    assert {name: row["usage"] for name, row in flat.items()} == {
        "VCPU": 2,
        "MEMORY_MB": 1024,
        gold: 1,
    }

    provider = cli.json(f"resource provider show {host['uuid']} --allocations")
    assert provider["allocations"] == {
        consumer: {"resources": {"VCPU": 2, "MEMORY_MB": 1024}, "consumer_generation": 1}
    }

    candidates = cli.json(f"allocation candidate list --resource VCPU=4 --resource {gold}=2")
    assert {row["resource provider"]: row["allocation"] for row in candidates} == {
        host["uuid"]: "VCPU=4",
        device["uuid"]: f"{gold}=2",
    }
    assert {row["#"] for row in candidates} == {1}
    capacity = by("resource provider", candidates)[host["uuid"]]["inventory used/capacity"]
    assert sorted(capacity.split(",")) == ["MEMORY_MB=1024/4096", "VCPU=2/8"]
    too_big = cli.json("allocation candidate list --resource VCPU=7")
    assert host["uuid"] not in {row["resource provider"] for row in too_big}

    cli.ok(f"resource provider allocation delete {consumer}")
    assert cli.json(f"resource provider allocation show {consumer}") == []
    assert cli.json(f"resource usage show {project}") == []
    cli.ok(f"resource provider delete {device['uuid']}")
    cli.ok(f"resource provider delete {host['uuid']}")
    cli.ok(f"resource class delete {gold}")


def test_old_microversions_show_the_fields_they_had(cli):
    host = cli.json(f"resource provider create {fresh('host')}", version="1.0")
    assert set(host) == {"uuid", "name", "generation"}
    listed = by("uuid", cli.json("resource provider list", version="1.13"))
    assert set(listed[host["uuid"]]) == {"uuid", "name", "generation"}
    listed = by("uuid", cli.json("resource provider list", version="1.14"))
    assert set(listed[host["uuid"]]) == {
        "uuid",
        "name",
        "generation",
        "root_provider_uuid",
        "parent_provider_uuid",
    }
    cli.ok(f"resource provider delete {host['uuid']}")


def test_errors_reach_the_operator_as_upstream_words_them(cli):
    missing = str(uuid.uuid4())
    outcome = cli.run(f"resource provider show {missing} -f json")
    assert (outcome.exit_code, outcome.stdout) == (1, "")
    assert outcome.stderr == f"No resource provider with uuid {missing} found (HTTP 404)\n"

    host = cli.json(f"resource provider create {fresh('host')}")
    outcome = cli.run(
        f"resource provider aggregate set --aggregate {uuid.uuid4()} --generation 5 {host['uuid']}"
    )
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        "Resource provider's generation already changed. Please update the generation and try again. (HTTP 409)\n"
    )

    outcome = cli.run(f"resource provider create {host['name']}")
    assert outcome.exit_code == 1
    assert f"Conflicting resource provider name: {host['name']} already exists." in outcome.stderr
    assert outcome.stderr.endswith("(HTTP 409)\n")
    cli.ok(f"resource provider delete {host['uuid']}")


def test_the_installed_openstack_program_talks_to_stowage(cli):
    host = cli.json(f"resource provider create {fresh('host')}")
    program = os.path.join(os.path.dirname(sys.executable), "openstack")
    finished = subprocess.run(
        [program, *cli.arguments(f"resource provider show {host['uuid']} -f json", LATEST)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (finished.returncode, finished.stderr) == (0, "")
    assert json.loads(finished.stdout) == host
    cli.ok(f"resource provider delete {host['uuid']}")
