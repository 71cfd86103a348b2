"""A small topology for the allocation-candidate HTTP specs, built through
the API::

    ss: DISK_GB 1000, MISC_SHARES_VIA_AGGREGATE, aggs [AGG]
     :
     :.... AGG ....
                  :
    cn1: VCPU 8, MEMORY_MB 4096; CUSTOM_ROOT_A, COMPUTE_VOLUME_MULTI_ATTACH; aggs [AGG]
      +-- pf1: SRIOV_NET_VF 4; CUSTOM_PHYSNET1
      +-- pf2: SRIOV_NET_VF 4; CUSTOM_PHYSNET2
    cn2: VCPU 4 (1 used), DISK_GB 100
"""
from __future__ import annotations

from dataclasses import dataclass

from tests.conformance.fixtures import Builder
from tests.support import Client

AGGREGATE = "9f0e2c36-6d61-4bd7-9f63-1f6a1c8f3b7e"
OTHER_AGGREGATE = "d1c2b3a4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
PROJECT = "6e3b7a0c-7b0f-4f8e-9a43-7c2c0a1d2e3f"
USER = "2f1e0d9c-8b7a-4c6d-8e5f-4a3b2c1d0e9f"


@dataclass(frozen=True)
class Topology:
    cn1: str
    pf1: str
    pf2: str
    cn2: str
    ss: str


def build_topology(client: Client) -> Topology:
    build = Builder(client)
    cn1 = build.create_provider("cn1", AGGREGATE)
    build.add_inventory(cn1, "VCPU", 8)
    build.add_inventory(cn1, "MEMORY_MB", 4096)
    build.set_traits(cn1, "CUSTOM_ROOT_A", "COMPUTE_VOLUME_MULTI_ATTACH")
    pf1 = build.create_provider("pf1", parent=cn1)
    build.add_inventory(pf1, "SRIOV_NET_VF", 4)
    build.set_traits(pf1, "CUSTOM_PHYSNET1")
    pf2 = build.create_provider("pf2", parent=cn1)
    build.add_inventory(pf2, "SRIOV_NET_VF", 4)
    build.set_traits(pf2, "CUSTOM_PHYSNET2")
    cn2 = build.create_provider("cn2")
    build.add_inventory(cn2, "VCPU", 4)
    build.add_inventory(cn2, "DISK_GB", 100)
    build.set_allocation("0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", PROJECT, USER, {cn2: {"VCPU": 1}})
    ss = build.create_provider("ss", AGGREGATE)
    build.add_inventory(ss, "DISK_GB", 1000)
    build.set_traits(ss, "MISC_SHARES_VIA_AGGREGATE")
    return Topology(cn1=cn1, pf1=pf1, pf2=pf2, cn2=cn2, ss=ss)


def candidates(body: dict) -> list[frozenset]:
    """1.12+ allocation requests, order-free: each a set of (uuid, class, amount)."""
    return canonical(
        {uuid: entry["resources"] for uuid, entry in request["allocations"].items()}
        for request in body["allocation_requests"]
    )


def canonical(requests) -> list[frozenset]:
    """[{uuid: {class: amount}}, ...] in the order-free form of ``candidates``."""
    found = [
        frozenset(
            (uuid, resource_class, amount)
            for uuid, resources in request.items()
            for resource_class, amount in resources.items()
        )
        for request in requests
    ]
    return sorted(found, key=sorted)
