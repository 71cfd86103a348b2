"""Fixtures named by upstream Placement's gabbi files, built with Stowage.

This is the one module allowed to pass data through environment variables
and module state: the YAML files read ``$ENVIRON[...]`` and gabbi creates the
fixtures and the intercepted app without arguments.

Every topology is built through Stowage's own HTTP API, in process, exactly
as a client would build it.
"""
from __future__ import annotations

import os
import tempfile
import types
import uuid

import yaml
from gabbi import fixture

from stowage.api.app import create_app
from stowage.api.policy import list_rules
from tests.contract import Described
from tests.support import Client, open_test_database, reset_database, test_conf

# The app of the suite currently running; gabbi builds its intercept before
# any fixture starts, so the intercept looks here on every request.
_current_app = None
_databases: dict[str, object] = {}
# Scratch database URL per server backend, set at collection.
_server_urls: dict[str, str] = {}


def configure(backend: str, url: str) -> None:
    _server_urls[backend] = url


class LazyApp:
    """The WSGI intercept: forwards to the app the running fixture built."""

    def __call__(self, environ, start_response):
        if _current_app is None:
            raise RuntimeError("no Stowage fixture is running")
        return Described(_current_app)(environ, start_response)


def setup_app():
    return LazyApp()


def _new_uuid() -> str:
    return str(uuid.uuid4())


class APIFixture(fixture.GabbiFixture):
    """A fresh, empty service with noauth2 and default policy."""

    backend = "sqlite"
    secure_rbac = False

    def start_fixture(self):
        global _current_app
        database = _databases.get(self.backend)
        if database is None:
            database = open_test_database(self.backend, _server_urls.get(self.backend))
            _databases[self.backend] = database
        reset_database(database)
        self.policy_dir = tempfile.TemporaryDirectory(prefix="stowage-policy-")
        policy_file = os.path.join(self.policy_dir.name, "policy.yaml")
        with open(policy_file, "w") as handle:
            yaml.safe_dump(self.policy_rules(), handle)
        self.conf = test_conf(
            oslo_policy={
                "enforce_new_defaults": self.secure_rbac,
                "policy_file": policy_file,
            },
            **self.extra_conf(),
        )
        _current_app = create_app(self.conf, database)
        self.client = Client(_current_app)
        for name in (
            "RP_UUID",
            "RP_NAME",
            "RP_UUID1",
            "RP_NAME1",
            "RP_UUID2",
            "RP_NAME2",
            "PROJECT_ID",
            "ADMIN_PROJECT_ID",
            "SERVICE_PROJECT_ID",
            "USER_ID",
            "PROJECT_ID_ALT",
            "USER_ID_ALT",
            "INSTANCE_UUID",
            "MIGRATION_UUID",
            "CONSUMER_UUID",
            "PARENT_PROVIDER_UUID",
            "ALT_PARENT_PROVIDER_UUID",
        ):
            os.environ[name] = _new_uuid()
        os.environ["CUSTOM_RES_CLASS"] = "CUSTOM_IRON_NFV"
        os.environ["CUSTOM_RES_CLASS1"] = "CUSTOM_IRON_NFV1"
        os.environ["CUSTOM_RES_CLASS2"] = "CUSTOM_IRON_NFV2"
        self.build = Builder(self.client)

    def stop_fixture(self):
        global _current_app
        _current_app = None
        self.policy_dir.cleanup()

    def policy_rules(self) -> dict[str, str]:
        """Rules written to the policy file; none means the defaults apply."""
        return {}

    def extra_conf(self) -> dict[str, dict]:
        return {}


class LegacyRBACPolicyFixture(APIFixture):
    """Deprecated (admin-role) policy defaults, said explicitly."""

    secure_rbac = False


class SecureRBACPolicyFixture(APIFixture):
    """New role-and-scope policy defaults."""

    secure_rbac = True


class OpenPolicyFixture(APIFixture):
    """Every rule opened to any caller, through an operator policy file."""

    def policy_rules(self) -> dict[str, str]:
        return {rule.name: "@" for rule in list_rules() if rule.name != "admin_api"}


class CORSFixture(APIFixture):
    """CORS enabled for one origin, as an operator would configure it."""

    def extra_conf(self) -> dict[str, dict]:
        return {
            "cors": {
                "allowed_origin": ["http://valid.example.com"],
                "allow_headers": ["openstack-api-version"],
            }
        }


class Builder:
    """Builds topologies through the HTTP API, as upstream's fixtures do."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _check(self, answer, *expected: int):
        if answer.status not in expected:
            raise RuntimeError(f"fixture request failed: {answer.status} {answer.body[:500]!r}")
        return answer

    def create_provider(self, name: str, *aggregates: str, parent: str | None = None) -> str:
        body = {"name": name, "uuid": _new_uuid()}
        if parent:
            body["parent_provider_uuid"] = parent
        self._check(self.client.post("/resource_providers", body), 200)
        if aggregates:
            self.set_aggregates(body["uuid"], *aggregates)
        return body["uuid"]

    def generation(self, provider: str) -> int:
        return self._check(self.client.get(f"/resource_providers/{provider}"), 200).json()[
            "generation"
        ]

    def set_aggregates(self, provider: str, *aggregates: str) -> None:
        self._check(
            self.client.put(
                f"/resource_providers/{provider}/aggregates",
                {"aggregates": list(aggregates), "resource_provider_generation": self.generation(provider)},
            ),
            200,
        )

    def ensure_resource_class(self, name: str) -> None:
        if name.startswith("CUSTOM_"):
            self._check(self.client.put(f"/resource_classes/{name}"), 201, 204)

    def add_inventory(self, provider: str, resource_class: str, total: int, **fields) -> None:
        self.ensure_resource_class(resource_class)
        body = {"resource_class": resource_class, "total": total, **fields}
        body["resource_provider_generation"] = self.generation(provider)
        self._check(self.client.post(f"/resource_providers/{provider}/inventories", body), 201)

    def set_traits(self, provider: str, *traits: str) -> None:
        for trait in traits:
            if trait.startswith("CUSTOM_"):
                self._check(self.client.put(f"/traits/{trait}"), 201, 204)
        self._check(
            self.client.put(
                f"/resource_providers/{provider}/traits",
                {"traits": list(traits), "resource_provider_generation": self.generation(provider)},
            ),
            200,
        )

    def set_allocation(
        self, consumer: str, project: str, user: str, allocations: dict[str, dict[str, int]]
    ) -> None:
        """Give ``consumer`` these allocations: {provider uuid: {class: amount}}.

        Written at 1.37, so the consumer has no type ("unknown"), as the
        consumers of upstream's fixtures have.
        """
        untyped = {"openstack-api-version": "placement 1.37"}
        current = self._check(self.client.get(f"/allocations/{consumer}", headers=untyped), 200).json()
        body = {
            "allocations": {
                provider: {"resources": resources} for provider, resources in allocations.items()
            },
            "project_id": project,
            "user_id": user,
            "consumer_generation": current.get("consumer_generation"),
        }
        self._check(self.client.put(f"/allocations/{consumer}", body, headers=untyped), 204)


class AllocationFixture(APIFixture):
    """One provider and three consumers already holding allocations.

    ::

          consumer1      consumer2     alt_consumer (alt user)
        DISK_GB: 1000     VCPU: 6      VCPU: 1, DISK_GB: 20
               \\            |            /
                +------ rp: VCPU 10, DISK_GB 2048 ------+
    """

    def start_fixture(self):
        super().start_fixture()
        os.environ["ALT_USER_ID"] = _new_uuid()
        project, user, alt_user = (
            os.environ["PROJECT_ID"],
            os.environ["USER_ID"],
            os.environ["ALT_USER_ID"],
        )
        provider = os.environ["RP_UUID"]
        self._check_create(provider)
        self.build.add_inventory(provider, "DISK_GB", 2048, step_size=10, min_unit=10, max_unit=1000)
        self.build.add_inventory(provider, "VCPU", 10, max_unit=10)
        consumers = {"CONSUMER_0": _new_uuid(), "CONSUMER_ID": _new_uuid(), "ALT_CONSUMER_ID": _new_uuid()}
        os.environ.update(consumers)
        self.build.set_allocation(consumers["CONSUMER_0"], project, user, {provider: {"DISK_GB": 1000}})
        self.build.set_allocation(consumers["CONSUMER_ID"], project, user, {provider: {"VCPU": 6}})
        self.build.set_allocation(
            consumers["ALT_CONSUMER_ID"], project, alt_user, {provider: {"DISK_GB": 20, "VCPU": 1}}
        )
        os.environ["ALT_RP_UUID"] = _new_uuid()
        os.environ["ALT_RP_NAME"] = _new_uuid()

    def _check_create(self, provider: str) -> None:
        self.build._check(
            self.client.post(
                "/resource_providers", {"name": os.environ["RP_NAME"], "uuid": provider}
            ),
            200,
        )


# --- Topology fixtures for allocation candidates ------------------------------
#
# Each builds upstream's topology of the same name through the HTTP API and
# exports the same environment variable names its YAML files read. Inventory
# max_unit defaults to the total, as upstream's fixture helpers do (the API's
# own default is unbounded).


def _inventory(build: Builder, provider: str, resource_class: str, total: int, **fields) -> None:
    fields.setdefault("max_unit", total)
    build.add_inventory(provider, resource_class, total, **fields)


class SharedStorageFixture(APIFixture):
    """Two compute nodes sharing two storage providers through one aggregate.

    ::

        ss: DISK_GB 2000 (100 reserved)     ss2: DISK_GB 2000 (100 reserved)
        MISC_SHARES_VIA_AGGREGATE           MISC_SHARES_VIA_AGGREGATE
                 :                                  :
                 :............ aggregate AGG ........:
                 :                                  :
        cn1: VCPU 24 (x16), MEMORY_MB 128G (x1.5)   cn2: VCPU 24 (x16), MEMORY_MB 128G (x1.5)
             HW_CPU_X86_SSE, HW_CPU_X86_SSE2             DISK_GB 2000 (100 reserved)
          |                  |                        |                  |
        numa1_1            numa1_2                  numa2_1            numa2_2
          |                  |                        |                  |
        pf1_1: VF 8        pf1_2: VF 8              pf2_1: VF 8        pf2_2: VF 8
    """

    def start_fixture(self):
        super().start_fixture()
        build = self.build
        aggregate = _new_uuid()
        cn1 = build.create_provider("cn1", aggregate)
        cn2 = build.create_provider("cn2", aggregate)
        ss = build.create_provider("ss", aggregate)
        ss2 = build.create_provider("ss2", aggregate)
        numa = {
            "NUMA1_1": build.create_provider("numa1_1", parent=cn1),
            "NUMA1_2": build.create_provider("numa1_2", parent=cn1),
            "NUMA2_1": build.create_provider("numa2_1", parent=cn2),
            "NUMA2_2": build.create_provider("numa2_2", parent=cn2),
        }
        pfs = {
            f"PF{index}": build.create_provider(f"pf{index.lower()}", parent=numa[f"NUMA{index}"])
            for index in ("1_1", "1_2", "2_1", "2_2")
        }
        os.environ["AGG_UUID"] = aggregate
        os.environ.update(CN1_UUID=cn1, CN2_UUID=cn2, SS_UUID=ss, SS2_UUID=ss2)
        os.environ.update({f"{name}_UUID": uuid for name, uuid in {**numa, **pfs}.items()})

        for compute in (cn1, cn2):
            _inventory(build, compute, "VCPU", 24, allocation_ratio=16.0)
            _inventory(build, compute, "MEMORY_MB", 128 * 1024, allocation_ratio=1.5)
        build.set_traits(cn1, "HW_CPU_X86_SSE", "HW_CPU_X86_SSE2")
        _inventory(build, cn2, "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
        for shared in (ss, ss2):
            _inventory(build, shared, "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
            build.set_traits(shared, "MISC_SHARES_VIA_AGGREGATE")
        for pf in pfs.values():
            _inventory(build, pf, "SRIOV_NET_VF", 8, allocation_ratio=1.0)


class NUMAAggregateFixture(APIFixture):
    """Resourceless compute nodes whose NUMA children hold the CPUs.

    ::

                        ss1: DISK_GB 2000 (100 reserved), shares, aggs [A]
                                   :
                  :....... A ......:........ A ........:
        cn1 (no inventory) aggs [A]          cn2 (no inventory) aggs [A, B]
          |                  |                 |                  |
        numa1_1 aggs [C]   numa1_2           numa2_1            numa2_2
        VCPU 24 (x16)      VCPU 24 (x16)     VCPU 24 (x16)      VCPU 24 (x16)
          :
          :.. C .. ss2: DISK_GB 2000 (100 reserved), shares, aggs [C]
    """

    def start_fixture(self):
        super().start_fixture()
        build = self.build
        agg_a, agg_b, agg_c = _new_uuid(), _new_uuid(), _new_uuid()
        cn1 = build.create_provider("cn1", agg_a)
        cn2 = build.create_provider("cn2", agg_a, agg_b)
        ss1 = build.create_provider("ss1", agg_a)
        ss2 = build.create_provider("ss2", agg_c)
        numa1_1 = build.create_provider("numa1_1", agg_c, parent=cn1)
        numa1_2 = build.create_provider("numa1_2", parent=cn1)
        numa2_1 = build.create_provider("numa2_1", parent=cn2)
        numa2_2 = build.create_provider("numa2_2", parent=cn2)
        os.environ.update(AGGA_UUID=agg_a, AGGB_UUID=agg_b, AGGC_UUID=agg_c)
        os.environ.update(CN1_UUID=cn1, CN2_UUID=cn2, SS1_UUID=ss1, SS2_UUID=ss2)
        os.environ.update(
            NUMA1_1_UUID=numa1_1, NUMA1_2_UUID=numa1_2, NUMA2_1_UUID=numa2_1, NUMA2_2_UUID=numa2_2
        )
        for numa in (numa1_1, numa1_2, numa2_1, numa2_2):
            _inventory(build, numa, "VCPU", 24, allocation_ratio=16.0)
        for shared in (ss1, ss2):
            _inventory(build, shared, "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
            build.set_traits(shared, "MISC_SHARES_VIA_AGGREGATE")


class NUMANetworkFixture(APIFixture):
    """A NUMA-shaped host and a NIC-shaped host sharing one storage provider.

    ::

        ss1: DISK_GB 2000, MISC_SHARES_VIA_AGGREGATE, aggs [A] ......... (to cn2)
          :
        cn1: COMPUTE_VOLUME_MULTI_ATTACH, no inventory, aggs [A]
          +-- numa0: HW_NUMA_ROOT; VCPU 4 (2 used); MEMORY_MB 2048 min 512 step 256
          |     +-- fpga0: FPGA 1
          |     +-- pgpu0: VGPU 8
          +-- numa1: HW_NUMA_ROOT, CUSTOM_FOO; VCPU 4; MEMORY_MB 2048 min 256 max 1024
          |     +-- fpga1_0: FPGA 1
          |     +-- fpga1_1: FPGA 1
          +-- sriov_agent: CUSTOM_VNIC_TYPE_DIRECT
          |     +-- esn1: CUSTOM_PHYSNET1; NET_BW_EGR_KILOBIT_PER_SEC 10000
          |     +-- esn2: CUSTOM_PHYSNET2; NET_BW_EGR_KILOBIT_PER_SEC 20000
          +-- ovs_agent: CUSTOM_VNIC_TYPE_NORMAL
                +-- br_int: CUSTOM_PHYSNET0; NET_BW_EGR_KILOBIT_PER_SEC 1000

        cn2: CUSTOM_FOO; VCPU 8 (3 used); MEMORY_MB 2048 min 1024 step 128;
             DISK_GB 1000; aggs [A]
          +-- nic1: CUSTOM_HW_NIC_ROOT
          |     +-- pf1_1: CUSTOM_PHYSNET1, CUSTOM_VF 4
          |     +-- pf1_2: CUSTOM_PHYSNET2, CUSTOM_VF 4
          +-- nic2: CUSTOM_HW_NIC_ROOT
          |     +-- pf2_1: PHYSNET1, VF 2     +-- pf2_2: PHYSNET2, VF 2
          |     +-- pf2_3: PHYSNET1, VF 2     +-- pf2_4: PHYSNET2, VF 2
          +-- nic3: CUSTOM_HW_NIC_ROOT
                +-- pf3_1: CUSTOM_PHYSNET1, CUSTOM_VF 8
    """

    # DeepNUMANetworkFixture creates the compute nodes under parents first.
    cn1: str | None = None
    cn2: str | None = None

    def start_fixture(self):
        super().start_fixture()
        self.cn1 = self.cn2 = None
        self.make_entities()

    def make_entities(self):
        build = self.build
        agg_a = _new_uuid()
        os.environ["AGGA_UUID"] = agg_a
        project, user = "numafx-project", "numafx-user"

        ss1 = build.create_provider("ss1", agg_a)
        build.set_traits(ss1, "MISC_SHARES_VIA_AGGREGATE")
        _inventory(build, ss1, "DISK_GB", 2000)
        os.environ["SS1_UUID"] = ss1

        cn1 = self.cn1 or build.create_provider("cn1")
        build.set_aggregates(cn1, agg_a)
        build.set_traits(cn1, "COMPUTE_VOLUME_MULTI_ATTACH")
        os.environ["CN1_UUID"] = cn1

        numas = []
        for index in (0, 1):
            numa = build.create_provider(f"numa{index}", parent=cn1)
            build.set_traits(numa, "HW_NUMA_ROOT", *(["CUSTOM_FOO"] if index == 1 else []))
            _inventory(build, numa, "VCPU", 4)
            numas.append(numa)
            os.environ[f"NUMA{index}_UUID"] = numa
        _inventory(build, numas[0], "MEMORY_MB", 2048, min_unit=512, step_size=256)
        _inventory(build, numas[1], "MEMORY_MB", 2048, min_unit=256, max_unit=1024)
        build.set_allocation(_new_uuid(), project, user, {numas[0]: {"VCPU": 2}})

        fpga = build.create_provider("fpga0", parent=numas[0])
        _inventory(build, fpga, "FPGA", 1)
        os.environ["FPGA0_UUID"] = fpga
        pgpu = build.create_provider("pgpu0", parent=numas[0])
        _inventory(build, pgpu, "VGPU", 8)
        os.environ["PGPU0_UUID"] = pgpu
        for index in (0, 1):
            fpga = build.create_provider(f"fpga1_{index}", parent=numas[1])
            _inventory(build, fpga, "FPGA", 1)
            os.environ[f"FPGA1_{index}_UUID"] = fpga

        agent = build.create_provider("sriov_agent", parent=cn1)
        build.set_traits(agent, "CUSTOM_VNIC_TYPE_DIRECT")
        os.environ["SRIOV_AGENT_UUID"] = agent
        for index in (1, 2):
            device = build.create_provider(f"esn{index}", parent=agent)
            build.set_traits(device, f"CUSTOM_PHYSNET{index}")
            _inventory(build, device, "NET_BW_EGR_KILOBIT_PER_SEC", 10000 * index)
            os.environ[f"ESN{index}_UUID"] = device

        agent = build.create_provider("ovs_agent", parent=cn1)
        build.set_traits(agent, "CUSTOM_VNIC_TYPE_NORMAL")
        os.environ["OVS_AGENT_UUID"] = agent
        device = build.create_provider("br_int", parent=agent)
        build.set_traits(device, "CUSTOM_PHYSNET0")
        _inventory(build, device, "NET_BW_EGR_KILOBIT_PER_SEC", 1000)
        os.environ["BR_INT_UUID"] = device

        cn2 = self.cn2 or build.create_provider("cn2")
        build.set_aggregates(cn2, agg_a)
        _inventory(build, cn2, "VCPU", 8)
        build.set_allocation(_new_uuid(), project, user, {cn2: {"VCPU": 3}})
        _inventory(build, cn2, "MEMORY_MB", 2048, min_unit=1024, step_size=128)
        _inventory(build, cn2, "DISK_GB", 1000)
        build.set_traits(cn2, "CUSTOM_FOO")
        os.environ["CN2_UUID"] = cn2

        nics = []
        for index in (1, 2, 3):
            nic = build.create_provider(f"nic{index}", parent=cn2)
            build.set_traits(nic, "CUSTOM_HW_NIC_ROOT")
            nics.append(nic)
            os.environ[f"NIC{index}_UUID"] = nic
        # (nic, pf suffix, physnet, VFs)
        pfs = [
            (nics[0], "1_1", 1, 4),
            (nics[0], "1_2", 2, 4),
            (nics[1], "2_1", 1, 2),
            (nics[1], "2_2", 2, 2),
            (nics[1], "2_3", 1, 2),
            (nics[1], "2_4", 2, 2),
            (nics[2], "3_1", 1, 8),
        ]
        for nic, suffix, physnet, total in pfs:
            pf = build.create_provider(f"pf{suffix}", parent=nic)
            build.set_traits(pf, f"CUSTOM_PHYSNET{physnet}")
            _inventory(build, pf, "CUSTOM_VF", total)
            os.environ[f"PF{suffix}_UUID"] = pf


class DeepNUMANetworkFixture(NUMANetworkFixture):
    """NUMANetworkFixture with both compute nodes two levels down.

    ::

        gp1
          +-- p1
          |     +-- cn1 ... (as in NUMANetworkFixture)
          +-- p2
                +-- cn2 ... (as in NUMANetworkFixture)
    """

    def make_entities(self):
        build = self.build
        grandparent = build.create_provider("gp1")
        parent1 = build.create_provider("p1", parent=grandparent)
        parent2 = build.create_provider("p2", parent=grandparent)
        self.cn1 = build.create_provider("cn1", parent=parent1)
        self.cn2 = build.create_provider("cn2", parent=parent2)
        super().make_entities()


class NonSharedStorageFixture(APIFixture):
    """Three compute nodes with local storage and no aggregates.

    ::

        cn1, cn2, cn3: VCPU 24, MEMORY_MB 128G, DISK_GB 2000 each
        (AGGA_UUID, AGGB_UUID, AGGC_UUID name aggregates nobody is in)
    """

    def start_fixture(self):
        super().start_fixture()
        build = self.build
        os.environ.update(AGGA_UUID=_new_uuid(), AGGB_UUID=_new_uuid(), AGGC_UUID=_new_uuid())
        for index in (1, 2, 3):
            compute = build.create_provider(f"cn{index}")
            os.environ[f"CN{index}_UUID"] = compute
            _inventory(build, compute, "VCPU", 24)
            _inventory(build, compute, "MEMORY_MB", 128 * 1024)
            _inventory(build, compute, "DISK_GB", 2000)


class GranularFixture(APIFixture):
    """Three compute nodes and three sharing providers over aggregates A, B, C.

    ::

        cn_left  aggs [A]     VCPU 8, MEMORY_MB 4096, DISK_GB 500, VGPU 8,
                              SRIOV_NET_VF 8, CUSTOM_NET_MBPS 4000;
                              HW_CPU_X86_AVX, HW_CPU_X86_AVX2, HW_GPU_API_DXVA,
                              HW_NIC_DCB_PFC, CUSTOM_FOO
        cn_middle aggs [A, B] VCPU 8, MEMORY_MB 4096, SRIOV_NET_VF 8,
                              CUSTOM_NET_MBPS 4000; HW_CPU_X86_AVX,
                              HW_CPU_X86_AVX2, HW_CPU_X86_SSE, HW_NIC_ACCEL_TLS
        cn_right aggs [B, C]  VCPU 8, MEMORY_MB 4096, DISK_GB 500,
                              VGPU 8 (max_unit 2); HW_CPU_X86_MMX,
                              HW_GPU_API_DXVA, CUSTOM_DISK_SSD

        shr_disk_1 aggs [A]     DISK_GB 1000; shares, CUSTOM_DISK_SSD
        shr_disk_2 aggs [A, B]  DISK_GB 1000; shares
        shr_net    aggs [C]     SRIOV_NET_VF 16, CUSTOM_NET_MBPS 40000; shares
    """

    def start_fixture(self):
        super().start_fixture()
        build = self.build
        build.ensure_resource_class("CUSTOM_NET_MBPS")
        agg_a, agg_b, agg_c = _new_uuid(), _new_uuid(), _new_uuid()
        os.environ.update(AGGA=agg_a, AGGB=agg_b, AGGC=agg_c)

        cn_left = build.create_provider("cn_left", agg_a)
        os.environ["CN_LEFT"] = cn_left
        for resource_class, total in (
            ("VCPU", 8),
            ("MEMORY_MB", 4096),
            ("DISK_GB", 500),
            ("VGPU", 8),
            ("SRIOV_NET_VF", 8),
            ("CUSTOM_NET_MBPS", 4000),
        ):
            _inventory(build, cn_left, resource_class, total)
        build.set_traits(
            cn_left, "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_GPU_API_DXVA", "HW_NIC_DCB_PFC", "CUSTOM_FOO"
        )

        cn_middle = build.create_provider("cn_middle", agg_a, agg_b)
        os.environ["CN_MIDDLE"] = cn_middle
        for resource_class, total in (
            ("VCPU", 8),
            ("MEMORY_MB", 4096),
            ("SRIOV_NET_VF", 8),
            ("CUSTOM_NET_MBPS", 4000),
        ):
            _inventory(build, cn_middle, resource_class, total)
        build.set_traits(
            cn_middle, "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_CPU_X86_SSE", "HW_NIC_ACCEL_TLS"
        )

        cn_right = build.create_provider("cn_right", agg_b, agg_c)
        os.environ["CN_RIGHT"] = cn_right
        _inventory(build, cn_right, "VCPU", 8)
        _inventory(build, cn_right, "MEMORY_MB", 4096)
        _inventory(build, cn_right, "DISK_GB", 500)
        _inventory(build, cn_right, "VGPU", 8, max_unit=2)
        build.set_traits(cn_right, "HW_CPU_X86_MMX", "HW_GPU_API_DXVA", "CUSTOM_DISK_SSD")

        shr_disk_1 = build.create_provider("shr_disk_1", agg_a)
        os.environ["SHR_DISK_1"] = shr_disk_1
        _inventory(build, shr_disk_1, "DISK_GB", 1000)
        build.set_traits(shr_disk_1, "MISC_SHARES_VIA_AGGREGATE", "CUSTOM_DISK_SSD")

        shr_disk_2 = build.create_provider("shr_disk_2", agg_a, agg_b)
        os.environ["SHR_DISK_2"] = shr_disk_2
        _inventory(build, shr_disk_2, "DISK_GB", 1000)
        build.set_traits(shr_disk_2, "MISC_SHARES_VIA_AGGREGATE")

        shr_net = build.create_provider("shr_net", agg_c)
        os.environ["SHR_NET"] = shr_net
        _inventory(build, shr_net, "SRIOV_NET_VF", 16)
        _inventory(build, shr_net, "CUSTOM_NET_MBPS", 40000)
        build.set_traits(shr_net, "MISC_SHARES_VIA_AGGREGATE")


class NeutronQoSMultiSegmentFixture(APIFixture):
    """Four compute trees modelling Neutron QoS on a multi-segment network.

    ::

        computeN: VCPU 8, MEMORY_MB 4096, DISK_GB 500
          +-- computeN:Open vSwitch agent: NET_PACKET_RATE_KILOPACKET_PER_SEC 1000;
          |     CUSTOM_VNIC_TYPE_NORMAL
          |     +-- ...:br-ex: NET_BW_EGR/IGR_KILOBIT_PER_SEC 5000 each;
          |           CUSTOM_VNIC_TYPE_NORMAL, CUSTOM_PHYSNET_<segment>
          +-- computeN:NIC Switch agent: CUSTOM_VNIC_TYPE_DIRECT,
                CUSTOM_VNIC_TYPE_DIRECT_PHYSICAL, CUSTOM_VNIC_TYPE_MACVTAP
                +-- ...:enp129s0f0: NET_BW_EGR/IGR_KILOBIT_PER_SEC 10000 each;
                      the three VNIC types, CUSTOM_PHYSNET_<segment>

        compute0: segment OTHER; compute1: MSN_S1; compute2: MSN_S2.
        compute3 reaches both segments with 1000 kbps devices only:
          br-ex (MSN_S1), br-ex2 (MSN_S2), enp129s0f0 (MSN_S1), enp129s0f1 (MSN_S2)
    """

    _DIRECT_TYPES = ("CUSTOM_VNIC_TYPE_DIRECT", "CUSTOM_VNIC_TYPE_DIRECT_PHYSICAL", "CUSTOM_VNIC_TYPE_MACVTAP")

    def start_fixture(self):
        super().start_fixture()
        # compute name: ([(bridge key, bridge, physnet)], [(pf key, pf, physnet)], bandwidths)
        layouts = {
            "compute0": ([("br_ex", "br-ex", "OTHER")], [("pf0", "enp129s0f0", "OTHER")], (5000, 10000)),
            "compute1": ([("br_ex", "br-ex", "MSN_S1")], [("pf0", "enp129s0f0", "MSN_S1")], (5000, 10000)),
            "compute2": ([("br_ex", "br-ex", "MSN_S2")], [("pf0", "enp129s0f0", "MSN_S2")], (5000, 10000)),
            "compute3": (
                [("br_ex", "br-ex", "MSN_S1"), ("br_ex2", "br-ex2", "MSN_S2")],
                [("pf0", "enp129s0f0", "MSN_S1"), ("pf1", "enp129s0f1", "MSN_S2")],
                (1000, 1000),
            ),
        }
        for name, (bridges, pfs, (bridge_bandwidth, pf_bandwidth)) in layouts.items():
            self._build_compute(name, bridges, pfs, bridge_bandwidth, pf_bandwidth)

    def _build_compute(self, name, bridges, pfs, bridge_bandwidth, pf_bandwidth) -> None:
        build = self.build
        compute = build.create_provider(name)
        os.environ[name] = compute
        _inventory(build, compute, "VCPU", 8)
        _inventory(build, compute, "MEMORY_MB", 4096)
        _inventory(build, compute, "DISK_GB", 500)

        ovs_agent = build.create_provider(f"{name}:Open vSwitch agent", parent=compute)
        os.environ[f"{name}:ovs_agent"] = ovs_agent
        _inventory(build, ovs_agent, "NET_PACKET_RATE_KILOPACKET_PER_SEC", 1000)
        build.set_traits(ovs_agent, "CUSTOM_VNIC_TYPE_NORMAL")
        for key, bridge_name, physnet in bridges:
            bridge = build.create_provider(f"{name}:Open vSwitch agent:{bridge_name}", parent=ovs_agent)
            os.environ[f"{name}:{key}"] = bridge
            _inventory(build, bridge, "NET_BW_EGR_KILOBIT_PER_SEC", bridge_bandwidth)
            _inventory(build, bridge, "NET_BW_IGR_KILOBIT_PER_SEC", bridge_bandwidth)
            build.set_traits(bridge, "CUSTOM_VNIC_TYPE_NORMAL", f"CUSTOM_PHYSNET_{physnet}")

        sriov_agent = build.create_provider(f"{name}:NIC Switch agent", parent=compute)
        os.environ[f"{name}:sriov_agent"] = sriov_agent
        build.set_traits(sriov_agent, *self._DIRECT_TYPES)
        for key, pf_name, physnet in pfs:
            pf = build.create_provider(f"{name}:NIC Switch agent:{pf_name}", parent=sriov_agent)
            os.environ[f"{name}:{key}"] = pf
            _inventory(build, pf, "NET_BW_EGR_KILOBIT_PER_SEC", pf_bandwidth)
            _inventory(build, pf, "NET_BW_IGR_KILOBIT_PER_SEC", pf_bandwidth)
            build.set_traits(pf, *self._DIRECT_TYPES, f"CUSTOM_PHYSNET_{physnet}")


_FIXTURE_CLASSES = [
    APIFixture,
    LegacyRBACPolicyFixture,
    SecureRBACPolicyFixture,
    OpenPolicyFixture,
    CORSFixture,
    AllocationFixture,
    SharedStorageFixture,
    NUMAAggregateFixture,
    NUMANetworkFixture,
    DeepNUMANetworkFixture,
    NonSharedStorageFixture,
    GranularFixture,
    NeutronQoSMultiSegmentFixture,
]


def fixture_module_for(backend: str) -> types.ModuleType:
    """A module of the fixture classes above, bound to ``backend``.

    gabbi looks fixtures up by name on a module; one module per backend lets
    the same YAML run against every backend in one pytest session.
    """
    module = types.ModuleType(f"stowage_gabbi_fixtures_{backend}")
    for cls in _FIXTURE_CLASSES:
        setattr(module, cls.__name__, type(cls.__name__, (cls,), {"backend": backend}))
    return module
