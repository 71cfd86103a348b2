"""The provider trees the benchmark loads, and the queries it times.

Pure data: nothing here talks HTTP. ``build_inventory(roots)`` splits
``roots`` compute hosts over four families, each drawn below, and gives every
provider a UUID derived from its name so that both services hold identical
data and two runs with the same ``roots`` load the same trees.

flat compute node (half of the roots)::

    flat-000001  VCPU, MEMORY_MB, DISK_GB; a few CPU traits; 5 aggregates

nested NFV host (a fifth)::

    nfv-000001                      DISK_GB
    ├── nfv-000001-numa0            PCPU, VCPU, MEMORY_MB; HW_NUMA_ROOT
    │   ├── nfv-000001-numa0-pf0    SRIOV_NET_VF, NET_BW_EGR_KILOBIT_PER_SEC; CUSTOM_PHYSNET_A
    │   └── nfv-000001-numa0-pf1    same;                                    CUSTOM_PHYSNET_B
    └── nfv-000001-numa1            (as numa0, with pf0 and pf1)

wide symmetric GPU host (a fifth)::

    wide-000001                     VCPU, MEMORY_MB, DISK_GB
    ├── wide-000001-gpu0            VGPU
    ├── ...                         (GPUS_PER_HOST identical children)
    └── wide-000001-gpu7            VGPU

compute node on shared storage (the rest), ten per storage pool::

    shared-000001  VCPU, MEMORY_MB          ┐ aggregate pool-000000
    pool-000000    DISK_GB; MISC_SHARES_VIA_AGGREGATE ┘

Storage pools are extra roots on top of ``roots``.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

NAMESPACE = uuid.UUID("5a1d3c1e-0b3e-4d0c-9a59-7b2f0f1ce0de")
MICROVERSION = "1.39"
GPUS_PER_HOST = 8
AGGREGATES_PER_FLAT_NODE = 5
COMPUTES_PER_STORAGE_POOL = 10
CUSTOM_TRAITS = ("CUSTOM_PHYSNET_A", "CUSTOM_PHYSNET_B", "CUSTOM_BENCH_GOLD")


def stable_uuid(name: str) -> str:
    """The same UUID for the same name, in every run and on every service."""
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass(frozen=True)
class Inventory:
    total: int
    reserved: int = 0
    allocation_ratio: float = 1.0

    def as_body(self) -> dict:
        """The inventory record as PUT /resource_providers/{uuid}/inventories takes it."""
        return {
            "total": self.total,
            "reserved": self.reserved,
            "allocation_ratio": self.allocation_ratio,
            "min_unit": 1,
            "max_unit": self.total,
            "step_size": 1,
        }


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    family: str
    parent_name: str | None = None
    inventories: Mapping[str, Inventory] = field(default_factory=dict)
    traits: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()

    @property
    def uuid(self) -> str:
        return stable_uuid(self.name)

    @property
    def parent_uuid(self) -> str | None:
        return stable_uuid(self.parent_name) if self.parent_name else None


@dataclass(frozen=True)
class Query:
    """One GET /allocation_candidates request, timed on every service."""

    name: str
    description: str
    query_string: str

    @property
    def path(self) -> str:
        return "/allocation_candidates?" + self.query_string


@dataclass(frozen=True)
class ListQuery(Query):
    """One GET /resource_providers request (no filter: every provider)."""

    @property
    def path(self) -> str:
        return "/resource_providers" + (f"?{self.query_string}" if self.query_string else "")


@dataclass(frozen=True)
class FamilySizes:
    flat: int
    nfv: int
    wide: int
    shared: int

    @property
    def storage_pools(self) -> int:
        return -(-self.shared // COMPUTES_PER_STORAGE_POOL)


def family_sizes(roots: int) -> FamilySizes:
    """How ``roots`` compute hosts split over the four families."""
    nfv = wide = roots // 5
    flat = roots // 2
    return FamilySizes(flat=flat, nfv=nfv, wide=wide, shared=roots - flat - nfv - wide)


def host_cpu_memory_disk() -> dict[str, Inventory]:
    return {
        "VCPU": Inventory(64, allocation_ratio=4.0),
        "MEMORY_MB": Inventory(262144, reserved=512),
        "DISK_GB": Inventory(1000),
    }


def flat_nodes(count: int, seed: int = 0) -> Iterator[ProviderSpec]:
    aggregate_pool = [stable_uuid(f"aggregate-{index}") for index in range(max(20, count // 10))]
    chooser = random.Random(seed)
    for index in range(count):
        traits = ["COMPUTE_VOLUME_MULTI_ATTACH", "HW_CPU_X86_SSE42"]
        if index % 2 == 0:
            traits.append("HW_CPU_X86_AVX2")
        if index % 10 == 0:
            traits.append("CUSTOM_BENCH_GOLD")
        yield ProviderSpec(
            name=f"flat-{index:06d}",
            family="flat",
            inventories=host_cpu_memory_disk(),
            traits=tuple(traits),
            aggregates=tuple(sorted(chooser.sample(aggregate_pool, AGGREGATES_PER_FLAT_NODE))),
        )


def nfv_hosts(count: int) -> Iterator[ProviderSpec]:
    for index in range(count):
        root = f"nfv-{index:06d}"
        yield ProviderSpec(name=root, family="nfv", inventories={"DISK_GB": Inventory(1000)},
                           traits=("HW_CPU_X86_AVX2",))
        for numa in range(2):
            numa_name = f"{root}-numa{numa}"
            yield ProviderSpec(
                name=numa_name,
                family="nfv",
                parent_name=root,
                inventories={
                    "PCPU": Inventory(16),
                    "VCPU": Inventory(16, allocation_ratio=4.0),
                    "MEMORY_MB": Inventory(131072, reserved=512 if numa == 0 else 0),
                },
                traits=("HW_NUMA_ROOT",),
            )
            for function, physnet in enumerate(("CUSTOM_PHYSNET_A", "CUSTOM_PHYSNET_B")):
                yield ProviderSpec(
                    name=f"{numa_name}-pf{function}",
                    family="nfv",
                    parent_name=numa_name,
                    inventories={
                        "SRIOV_NET_VF": Inventory(64),
                        "NET_BW_EGR_KILOBIT_PER_SEC": Inventory(10_000_000),
                    },
                    traits=("HW_NIC_SRIOV", physnet),
                )


def wide_hosts(count: int, gpus: int = GPUS_PER_HOST) -> Iterator[ProviderSpec]:
    for index in range(count):
        root = f"wide-{index:06d}"
        yield ProviderSpec(name=root, family="wide", inventories=host_cpu_memory_disk(),
                           traits=("HW_CPU_X86_AVX2",))
        for gpu in range(gpus):
            yield ProviderSpec(name=f"{root}-gpu{gpu}", family="wide", parent_name=root,
                               inventories={"VGPU": Inventory(4)})


def shared_storage(count: int) -> Iterator[ProviderSpec]:
    pools = -(-count // COMPUTES_PER_STORAGE_POOL)
    for pool in range(pools):
        yield ProviderSpec(
            name=f"pool-{pool:06d}",
            family="shared",
            inventories={"DISK_GB": Inventory(100_000)},
            traits=("MISC_SHARES_VIA_AGGREGATE",),
            aggregates=(stable_uuid(f"storage-aggregate-{pool}"),),
        )
    for index in range(count):
        cpu_memory = {name: inventory for name, inventory in host_cpu_memory_disk().items()
                      if name != "DISK_GB"}
        yield ProviderSpec(
            name=f"shared-{index:06d}",
            family="shared",
            inventories=cpu_memory,
            traits=("HW_CPU_X86_AVX2",),
            aggregates=(stable_uuid(f"storage-aggregate-{index // COMPUTES_PER_STORAGE_POOL}"),),
        )


def build_inventory(roots: int, seed: int = 0) -> list[ProviderSpec]:
    """Every provider for ``roots`` compute hosts; parents come before children."""
    sizes = family_sizes(roots)
    providers = [
        *flat_nodes(sizes.flat, seed),
        *nfv_hosts(sizes.nfv),
        *wide_hosts(sizes.wide),
        *shared_storage(sizes.shared),
    ]
    depths = depth_by_name(providers)
    return sorted(providers, key=lambda provider: depths[provider.name])


def depth_by_name(providers: list[ProviderSpec]) -> dict[str, int]:
    """Each provider's distance from its root (roots are 0), by name."""
    parents = {provider.name: provider.parent_name for provider in providers}
    depths: dict[str, int] = {}
    for provider in providers:
        depth, parent = 0, provider.parent_name
        while parent is not None:
            depth, parent = depth + 1, parents[parent]
        depths[provider.name] = depth
    return depths


def _vgpu_groups(count: int) -> str:
    return "&".join(f"resources_GPU{group}=VGPU:1" for group in range(1, count + 1))


QUERIES = (
    Query("flat", "flat: VCPU, MEMORY_MB, DISK_GB + required trait, no limit",
          "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=HW_CPU_X86_AVX2"),
    # 1000 is nova's default [scheduler] max_placement_results.
    Query("flat-limit", "flat, limit=1000 (nova's default)",
          "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=HW_CPU_X86_AVX2&limit=1000"),
    Query("nfv-same-subtree",
          "nested NFV: PCPU+memory group and a PHYSNET_A VF group on the same NUMA node",
          "resources=DISK_GB:20"
          "&resources_COMPUTE=PCPU:4,MEMORY_MB:8192"
          "&resources_NET=SRIOV_NET_VF:1,NET_BW_EGR_KILOBIT_PER_SEC:100000"
          "&required_NET=CUSTOM_PHYSNET_A"
          "&same_subtree=_COMPUTE,_NET&group_policy=none"),
    Query("sharing", "sharing: a disk only shared storage pools can hold",
          "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:2000"),
    Query("wide", "wide trees: 4 isolated VGPU groups, no limit",
          "resources=VCPU:4,MEMORY_MB:8192&" + _vgpu_groups(4) + "&group_policy=isolate"),
    Query("wide-limit", "wide trees: 4 isolated VGPU groups, limit=50",
          "resources=VCPU:4,MEMORY_MB:8192&" + _vgpu_groups(4) + "&group_policy=isolate&limit=50"),
)

# Each claim asks for a quarter of a host's memory, so hosts fill up and the
# claimers collide on the same few candidates.
CLAIM_QUERY = Query("claim", "claim: a quarter of a host's memory, limit=5",
                    "resources=VCPU:4,MEMORY_MB:65536,DISK_GB:100&limit=5")
