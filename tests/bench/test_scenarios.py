"""The benchmark's scenario builders produce the trees they promise (no servers, no timing)."""
from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

from bench import scenarios
from bench.scenarios import GPUS_PER_HOST, build_inventory, family_sizes


def by_name(providers):
    return {provider.name: provider for provider in providers}


def test_the_roots_split_over_four_families_and_storage_pools_come_on_top():
    sizes = family_sizes(1000)
    assert (sizes.flat, sizes.nfv, sizes.wide, sizes.shared) == (500, 200, 200, 100)
    providers = build_inventory(1000)
    roots = [provider for provider in providers if provider.parent_name is None]
    assert len(roots) == 1000 + sizes.storage_pools
    assert Counter(provider.family for provider in providers) == {
        "flat": 500, "nfv": 200 * 7, "wide": 200 * (1 + GPUS_PER_HOST), "shared": 100 + 10}


def test_every_parent_is_created_before_its_children_and_names_and_uuids_are_unique():
    providers = build_inventory(100)
    seen = set()
    for provider in providers:
        assert provider.parent_name is None or provider.parent_name in seen
        seen.add(provider.name)
    assert len({provider.uuid for provider in providers}) == len(providers)


def test_the_same_roots_give_the_same_uuids_and_aggregates_in_every_run():
    assert build_inventory(50) == build_inventory(50)


def test_a_flat_node_has_cpu_memory_and_disk_a_few_traits_and_five_aggregates():
    node = by_name(build_inventory(100))["flat-000000"]
    assert set(node.inventories) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    assert "HW_CPU_X86_AVX2" in node.traits
    assert len(set(node.aggregates)) == scenarios.AGGREGATES_PER_FLAT_NODE


def test_an_nfv_host_has_two_numa_nodes_each_with_a_physnet_a_and_a_physnet_b_function():
    providers = by_name(build_inventory(100))
    assert set(providers["nfv-000000"].inventories) == {"DISK_GB"}
    for numa in ("nfv-000000-numa0", "nfv-000000-numa1"):
        assert providers[numa].parent_name == "nfv-000000"
        assert set(providers[numa].inventories) == {"PCPU", "VCPU", "MEMORY_MB"}
        functions = [providers[f"{numa}-pf{index}"] for index in (0, 1)]
        assert all(function.parent_name == numa for function in functions)
        assert [set(function.inventories) for function in functions] == [
            {"SRIOV_NET_VF", "NET_BW_EGR_KILOBIT_PER_SEC"}] * 2
        assert {"CUSTOM_PHYSNET_A", "CUSTOM_PHYSNET_B"} == {
            trait for function in functions for trait in function.traits
            if trait.startswith("CUSTOM_PHYSNET")}


def test_a_wide_host_has_identical_gpu_children_with_vgpu():
    providers = build_inventory(100)
    children = [provider for provider in providers if provider.parent_name == "wide-000000"]
    assert len(children) == GPUS_PER_HOST >= 8
    assert len({(tuple(child.inventories.items()), child.traits) for child in children}) == 1
    assert set(children[0].inventories) == {"VGPU"}


def test_shared_storage_pools_share_disk_with_the_compute_nodes_of_their_aggregate():
    providers = by_name(build_inventory(100))
    pool = providers["pool-000000"]
    assert "MISC_SHARES_VIA_AGGREGATE" in pool.traits
    assert set(pool.inventories) == {"DISK_GB"}
    members = [provider for provider in providers.values()
               if provider.family == "shared" and provider.name.startswith("shared-")
               and provider.aggregates == pool.aggregates]
    assert len(members) == scenarios.COMPUTES_PER_STORAGE_POOL
    assert all("DISK_GB" not in member.inventories for member in members)


def test_the_sharing_query_asks_for_more_disk_than_any_local_disk_holds():
    local_disks = [provider.inventories["DISK_GB"].total for provider in build_inventory(100)
                   if "DISK_GB" in provider.inventories and provider.family != "shared"]
    sharing = next(query for query in scenarios.QUERIES if query.name == "sharing")
    requested = parse_qs(sharing.query_string)["resources"][0]
    assert int(requested.split("DISK_GB:")[1]) > max(local_disks)


def test_the_queries_cover_every_family_with_and_without_limit():
    names = {query.name for query in scenarios.QUERIES}
    assert {"flat", "flat-limit", "nfv-same-subtree", "sharing", "wide", "wide-limit"} <= names
    assert "limit" in parse_qs(scenarios.CLAIM_QUERY.query_string)
