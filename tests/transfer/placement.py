"""A small fleet written through the Placement API, and the reads both services must answer alike.

The same helpers drive upstream (``UpstreamService`` on a loopback port)
and Stowage (its app, in-process), through ``WireRequest`` as the
differential tester does::

    cn1 ─┬─ numa0 ── fpga0        agg1: cn1, cn2, shared-disk (MISC_SHARES_VIA_AGGREGATE)
         └─ numa1                 agg2: cn2
    cn2                           lonely: a root with nothing (deleted later)
    shared-disk

Consumers: instance-1 (INSTANCE) on numa0, fpga0 and shared-disk;
migration-1 (MIGRATION) on cn2; two more written by one POST; one left
without allocations (an empty write, which upstream keeps at generation 0).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.differential.compare import differences, normalise
from tests.differential.wire import Answer, WireRequest

LATEST = "1.39"

CN1 = "c0000000-0000-4000-8000-000000000001"
NUMA0 = "c0000000-0000-4000-8000-000000000002"
NUMA1 = "c0000000-0000-4000-8000-000000000003"
FPGA0 = "c0000000-0000-4000-8000-000000000004"
CN2 = "c0000000-0000-4000-8000-000000000005"
SHARED_DISK = "c0000000-0000-4000-8000-000000000006"
LONELY = "c0000000-0000-4000-8000-000000000007"
PROVIDERS = {CN1: "cn1", NUMA0: "numa0", NUMA1: "numa1", FPGA0: "fpga0", CN2: "cn2",
             SHARED_DISK: "shared-disk", LONELY: "lonely"}
AGG1 = "a0000000-0000-4000-8000-000000000001"
AGG2 = "a0000000-0000-4000-8000-000000000002"
INSTANCE = "d0000000-0000-4000-8000-000000000001"
MIGRATION = "d0000000-0000-4000-8000-000000000002"
POSTED_A = "d0000000-0000-4000-8000-000000000003"
POSTED_B = "d0000000-0000-4000-8000-000000000004"
EMPTY_CONSUMER = "d0000000-0000-4000-8000-000000000005"
CONSUMERS = [INSTANCE, MIGRATION, POSTED_A, POSTED_B, EMPTY_CONSUMER]
PROJECT, USER = "project-a", "user-a"

Send = Callable[[WireRequest], Answer]


class Api:
    """Placement calls over ``send``, as an administrator; each checks its status."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def call(self, method: str, path: str, body: Any = None, version: str = LATEST,
             expect: int | None = None) -> Answer:
        headers = [("x-auth-token", "admin"), ("accept", "application/json"),
                   ("openstack-api-version", f"placement {version}")]
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            headers.append(("content-type", "application/json"))
        answer = self.send(WireRequest(method, path, tuple(headers), payload))
        if expect is not None:
            assert answer.status == expect, f"{method} {path}: {answer.status} {answer.body[:500]!r}"
        return answer

    def generation(self, provider: str) -> int:
        return self.call("GET", f"/resource_providers/{provider}", expect=200).json()["generation"]

    def create_provider(self, uuid: str, name: str, parent: str | None = None) -> None:
        body = {"uuid": uuid, "name": name, **({"parent_provider_uuid": parent} if parent else {})}
        self.call("POST", "/resource_providers", body, expect=200)

    def set_inventories(self, provider: str, inventories: dict[str, dict[str, Any]]) -> None:
        body = {"resource_provider_generation": self.generation(provider), "inventories": inventories}
        self.call("PUT", f"/resource_providers/{provider}/inventories", body, expect=200)

    def set_traits(self, provider: str, traits: list[str]) -> None:
        body = {"resource_provider_generation": self.generation(provider), "traits": traits}
        self.call("PUT", f"/resource_providers/{provider}/traits", body, expect=200)

    def set_aggregates(self, provider: str, aggregates: list[str]) -> None:
        body = {"resource_provider_generation": self.generation(provider), "aggregates": aggregates}
        self.call("PUT", f"/resource_providers/{provider}/aggregates", body, expect=200)

    def consumer_generation(self, consumer: str) -> int | None:
        return self.call("GET", f"/allocations/{consumer}", expect=200).json().get("consumer_generation")

    def allocate(self, consumer: str, allocations: dict[str, dict[str, int]],
                 consumer_type: str = "INSTANCE", project: str = PROJECT, generation: Any = "ask") -> None:
        """Replace ``consumer``'s allocations; ``generation`` "ask" reads it first."""
        body = {
            "allocations": {provider: {"resources": resources} for provider, resources in allocations.items()},
            "project_id": project,
            "user_id": USER,
            "consumer_generation": self.consumer_generation(consumer) if generation == "ask" else generation,
            "consumer_type": consumer_type,
        }
        self.call("PUT", f"/allocations/{consumer}", body, expect=204)


def build_fleet(api: Api) -> None:
    """The fleet of the module docstring."""
    api.call("PUT", "/resource_classes/CUSTOM_FPGA", expect=201)
    api.call("PUT", "/resource_classes/CUSTOM_LICENSE", expect=201)
    api.call("PUT", "/traits/CUSTOM_GOLD", expect=201)
    api.call("PUT", "/traits/CUSTOM_SILVER", expect=201)
    api.create_provider(CN1, "cn1")
    api.create_provider(NUMA0, "numa0", CN1)
    api.create_provider(NUMA1, "numa1", CN1)
    api.create_provider(FPGA0, "fpga0", NUMA0)
    api.create_provider(CN2, "cn2")
    api.create_provider(SHARED_DISK, "shared-disk")
    api.create_provider(LONELY, "lonely")
    numa = {"VCPU": {"total": 8, "allocation_ratio": 4.0},
            "MEMORY_MB": {"total": 4096, "reserved": 256, "step_size": 256}}
    api.set_inventories(NUMA0, numa)
    api.set_inventories(NUMA1, numa)
    api.set_inventories(FPGA0, {"CUSTOM_FPGA": {"total": 2, "max_unit": 1}})
    api.set_inventories(CN1, {"CUSTOM_LICENSE": {"total": 10, "allocation_ratio": 1.5}})
    api.set_inventories(CN2, {"VCPU": {"total": 32, "allocation_ratio": 16.0},
                              "MEMORY_MB": {"total": 65536, "reserved": 512, "allocation_ratio": 1.5},
                              "DISK_GB": {"total": 100, "min_unit": 5}})
    api.set_inventories(SHARED_DISK, {"DISK_GB": {"total": 2000, "reserved": 100}})
    api.set_traits(CN1, ["CUSTOM_GOLD", "COMPUTE_VOLUME_MULTI_ATTACH"])
    api.set_traits(NUMA0, ["HW_CPU_X86_AVX2", "HW_NUMA_ROOT"])
    api.set_traits(NUMA1, ["HW_NUMA_ROOT"])
    api.set_traits(CN2, ["CUSTOM_SILVER", "HW_CPU_X86_AVX2"])
    api.set_traits(SHARED_DISK, ["MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD"])
    api.set_aggregates(CN1, [AGG1])
    api.set_aggregates(CN2, [AGG1, AGG2])
    api.set_aggregates(SHARED_DISK, [AGG1])
    api.allocate(INSTANCE, {NUMA0: {"VCPU": 2, "MEMORY_MB": 1024}, FPGA0: {"CUSTOM_FPGA": 1},
                            SHARED_DISK: {"DISK_GB": 10}})
    api.allocate(MIGRATION, {CN2: {"VCPU": 4, "DISK_GB": 20}}, consumer_type="MIGRATION")
    api.call("POST", "/allocations", {
        POSTED_A: {"allocations": {CN2: {"resources": {"MEMORY_MB": 2048}}}, "project_id": "project-b",
                   "user_id": USER, "consumer_generation": None, "consumer_type": "INSTANCE"},
        POSTED_B: {"allocations": {CN1: {"resources": {"CUSTOM_LICENSE": 2}}}, "project_id": "project-b",
                   "user_id": "user-b", "consumer_generation": None, "consumer_type": "INSTANCE"},
    }, expect=204)
    empty = {"allocations": {}, "project_id": PROJECT, "user_id": USER, "consumer_generation": None}
    api.call("PUT", f"/allocations/{EMPTY_CONSUMER}", empty, version="1.28", expect=204)


@dataclass(frozen=True)
class Read:
    """A GET both services must answer alike; ``route`` names it for ``compare``."""

    route: str
    path: str
    version: str = LATEST


def reads(providers: Iterable[str], consumers: Iterable[str]) -> list[Read]:
    """The comparison list: every resource of the fleet, at 1.39 and some older versions."""
    found = [
        Read("/resource_providers", "/resource_providers"),
        Read("/resource_providers", "/resource_providers", "1.14"),
        Read("/resource_providers", "/resource_providers", "1.0"),
        Read("/resource_providers", f"/resource_providers?in_tree={CN1}"),
        Read("/resource_providers", f"/resource_providers?member_of={AGG1}", "1.3"),
        Read("/resource_providers", "/resource_providers?required=HW_CPU_X86_AVX2", "1.18"),
        Read("/resource_providers", "/resource_providers?resources=VCPU:2,MEMORY_MB:512", "1.4"),
        Read("/resource_classes", "/resource_classes"),
        Read("/resource_classes", "/resource_classes", "1.2"),
        Read("/resource_classes/{name}", "/resource_classes/CUSTOM_FPGA"),
        Read("/traits", "/traits"),
        Read("/traits", "/traits?name=startswith:CUSTOM", "1.6"),
        Read("/traits", "/traits?associated=true"),
        # Not at 1.38+: upstream's grouping by consumer type fails on PostgreSQL (a 500).
        Read("/usages", f"/usages?project_id={PROJECT}", "1.9"),
        Read("/usages", "/usages?project_id=project-b", "1.37"),
        Read("/usages", f"/usages?project_id=project-b&user_id={USER}", "1.37"),
    ]
    for provider in providers:
        base = f"/resource_providers/{provider}"
        found += [
            Read("/resource_providers/{uuid}", base),
            Read("/resource_providers/{uuid}", base, "1.14"),
            Read("/resource_providers/{uuid}/inventories", f"{base}/inventories"),
            Read("/resource_providers/{uuid}/traits", f"{base}/traits", "1.6"),
            Read("/resource_providers/{uuid}/aggregates", f"{base}/aggregates"),
            Read("/resource_providers/{uuid}/aggregates", f"{base}/aggregates", "1.1"),
            Read("/resource_providers/{uuid}/usages", f"{base}/usages"),
            Read("/resource_providers/{uuid}/allocations", f"{base}/allocations"),
        ]
    for consumer in consumers:
        found += [
            Read("/allocations/{uuid}", f"/allocations/{consumer}"),
            Read("/allocations/{uuid}", f"/allocations/{consumer}", "1.12"),
            Read("/allocations/{uuid}", f"/allocations/{consumer}", "1.0"),
        ]
    candidates = [
        ("resources=VCPU:1,MEMORY_MB:512", LATEST),
        ("resources=VCPU:1,MEMORY_MB:512", "1.10"),
        ("resources=VCPU:1,DISK_GB:10", LATEST),
        ("resources=VCPU:1,DISK_GB:10", "1.17"),
        ("resources=VCPU:1&required=HW_CPU_X86_AVX2", LATEST),
        ("resources=VCPU:1&member_of=" + AGG2, LATEST),
        ("resources=CUSTOM_FPGA:1&root_required=CUSTOM_GOLD", LATEST),
        ("resources1=VCPU:1&resources2=CUSTOM_FPGA:1&group_policy=none", LATEST),
        ("resources_1=VCPU:1&resources_2=MEMORY_MB:256&group_policy=isolate&same_subtree=_1,_2", LATEST),
        ("resources=CUSTOM_LICENSE:1", "1.29"),
    ]
    found += [Read("/allocation_candidates", f"/allocation_candidates?{query}", version)
              for query, version in candidates]
    return found


def differing_reads(reference: Api, candidate: Api, wanted: Iterable[Read]) -> list[str]:
    """One line per read whose answers differ (``compare`` normalises both)."""
    found = []
    for read in wanted:
        theirs = normalise(reference.call("GET", read.path, version=read.version), {})
        ours = normalise(candidate.call("GET", read.path, version=read.version), {})
        for aspect in differences(read.route, theirs, ours):
            found.append(f"GET {read.path} @{read.version}: {aspect.where}: "
                         f"{aspect.reference!r} != {aspect.candidate!r}")
    return found
