"""HTTP spec: GET /allocation_candidates filters, each on both sides of the
microversion that brought it: required (1.17), member_of (1.21), forbidden
traits (1.22), numbered groups (1.25), in_tree (1.31), forbidden aggregates
(1.32), named groups (1.33), root_required (1.35), same_subtree (1.36) and
any-of traits (1.39).

Topology (tests.candidates.topology): cn1 (VCPU; CUSTOM_ROOT_A; in AGG) with
pf1 (SRIOV_NET_VF; CUSTOM_PHYSNET1) and pf2 (SRIOV_NET_VF; CUSTOM_PHYSNET2);
cn2 (VCPU, DISK_GB); ss sharing DISK_GB through AGG.
"""
from __future__ import annotations

import pytest

from stowage.api.versions import ERROR_CODES, Version
from tests.candidates.topology import AGGREGATE, build_topology, candidates, canonical
from tests.support import Client

PATH = "/allocation_candidates"


@pytest.fixture
def topology(client):
    return build_topology(client)


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def rejected(app, version: str, query: str, detail: str, code: str = "placement.undefined_code"):
    answer = Client(app, version=version).get(f"{PATH}?{query}")
    assert answer.status == 400, answer.body
    error = error_of(answer)
    assert detail in error["detail"]
    if Version.parse(version) >= ERROR_CODES:
        assert error["code"] == code


def found(app, version: str, query: str) -> list[frozenset]:
    answer = Client(app, version=version).get(f"{PATH}?{query}")
    assert answer.status == 200, answer.body
    return candidates(answer.json())


def test_required_traits_arrive_at_1_17(app, topology):
    rejected(app, "1.16", "resources=VCPU:1&required=CUSTOM_ROOT_A", "'required' was unexpected")
    assert found(app, "1.17", "resources=VCPU:1&required=CUSTOM_ROOT_A") == canonical(
        [{topology.cn1: {"VCPU": 1}}]
    )


def test_forbidden_traits_arrive_at_1_22(app, topology):
    rejected(
        app, "1.21", "resources=VCPU:1&required=!CUSTOM_ROOT_A",
        "Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC.",
    )
    assert found(app, "1.22", "resources=VCPU:1&required=!CUSTOM_ROOT_A") == canonical(
        [{topology.cn2: {"VCPU": 1}}]
    )


def test_a_trait_both_required_and_forbidden_is_a_400(app, topology):
    rejected(
        app, "1.22", "resources=VCPU:1&required=CUSTOM_ROOT_A,!CUSTOM_ROOT_A",
        "Conflicting required and forbidden traits found in the following traits keys: "
        "required: (CUSTOM_ROOT_A)",
    )


def test_any_of_traits_arrive_at_1_39(app, topology):
    query = "resources_NET=SRIOV_NET_VF:1&required_NET=in:CUSTOM_PHYSNET1,CUSTOM_ROOT_A"
    rejected(app, "1.38", query, "only supported since microversion 1.39")
    assert found(app, "1.39", query) == canonical([{topology.pf1: {"SRIOV_NET_VF": 1}}])


def test_member_of_arrives_at_1_21_and_counts_the_root_aggregates(app, topology):
    rejected(app, "1.20", f"resources=VCPU:1&member_of={AGGREGATE}", "'member_of' was unexpected")
    # cn1 is in the aggregate; its child pf1 gives the VFs.
    assert found(app, "1.29", f"resources=SRIOV_NET_VF:1&member_of={AGGREGATE}") == canonical(
        [{topology.pf1: {"SRIOV_NET_VF": 1}}, {topology.pf2: {"SRIOV_NET_VF": 1}}]
    )
    assert found(app, "1.21", f"resources=DISK_GB:10&member_of={AGGREGATE}") == canonical(
        [{topology.ss: {"DISK_GB": 10}}]
    )


def test_forbidden_aggregates_arrive_at_1_32(app, topology):
    rejected(
        app, "1.31", f"resources=VCPU:1&member_of=!{AGGREGATE}",
        "Forbidden member_of parameters are not supported in the specified microversion",
    )
    assert found(app, "1.32", f"resources=VCPU:1&member_of=!{AGGREGATE}") == canonical(
        [{topology.cn2: {"VCPU": 1}}]
    )


def test_numbered_groups_arrive_at_1_25(app, topology):
    rejected(app, "1.24", "resources=VCPU:1&resources1=DISK_GB:10", "'resources1' was unexpected")
    assert found(app, "1.25", "resources=VCPU:1&resources1=DISK_GB:10") == canonical([
        {topology.cn1: {"VCPU": 1}, topology.ss: {"DISK_GB": 10}},
        {topology.cn2: {"VCPU": 1, "DISK_GB": 10}},
    ])


def test_two_numbered_groups_need_a_group_policy(app, topology):
    rejected(
        app, "1.25", "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1",
        'The "group_policy" parameter is required when specifying more than one "resources{N}" '
        "parameter.",
    )


def test_group_policy_isolate_puts_numbered_groups_on_different_providers(app, topology):
    query = "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy="
    together = {topology.pf1: {"SRIOV_NET_VF": 1}, topology.pf2: {"SRIOV_NET_VF": 1}}
    # Two candidates each: group 1 on pf1 and group 2 on pf2, or the reverse.
    assert found(app, "1.29", query + "isolate") == canonical([together, together])
    assert found(app, "1.29", query + "none") == canonical([
        together, together, {topology.pf1: {"SRIOV_NET_VF": 2}}, {topology.pf2: {"SRIOV_NET_VF": 2}}
    ])


def test_in_tree_arrives_at_1_31_and_names_a_whole_tree(app, topology):
    rejected(app, "1.30", f"resources=VCPU:1&in_tree={topology.pf1}", "'in_tree' does not match any of the regexes")
    rejected(app, "1.31", "resources=VCPU:1&in_tree=nope", "Expected 'in_tree' parameter to be a format of uuid")
    assert found(app, "1.31", f"resources=VCPU:1,SRIOV_NET_VF:1&in_tree={topology.pf1}") == canonical([
        {topology.cn1: {"VCPU": 1}, topology.pf1: {"SRIOV_NET_VF": 1}},
        {topology.cn1: {"VCPU": 1}, topology.pf2: {"SRIOV_NET_VF": 1}},
    ])


def test_named_groups_arrive_at_1_33(app, topology):
    rejected(app, "1.32", "resources_NET=SRIOV_NET_VF:1", "'resources_NET' does not match any of the regexes")
    assert len(found(app, "1.33", "resources_NET=SRIOV_NET_VF:1")) == 2


def test_root_required_arrives_at_1_35(app, topology):
    rejected(app, "1.34", "resources=VCPU:1&root_required=CUSTOM_ROOT_A", "'root_required' does not match")
    assert found(app, "1.35", "resources=VCPU:1&root_required=CUSTOM_ROOT_A") == canonical(
        [{topology.cn1: {"VCPU": 1}}]
    )
    assert found(app, "1.35", "resources=VCPU:1&root_required=!CUSTOM_ROOT_A") == canonical(
        [{topology.cn2: {"VCPU": 1}}]
    )


def test_root_required_may_be_given_once_and_without_conflicts(app, topology):
    rejected(
        app, "1.35", "resources=VCPU:1&root_required=CUSTOM_ROOT_A&root_required=!CUSTOM_X",
        "Query parameter 'root_required' may be specified only once.", "placement.query.duplicate_key",
    )
    rejected(
        app, "1.35", "resources=VCPU:1&root_required=CUSTOM_ROOT_A,!CUSTOM_ROOT_A",
        "Conflicting required and forbidden traits found in root_required: CUSTOM_ROOT_A",
        "placement.query.bad_value",
    )


def test_same_subtree_and_resourceless_groups_arrive_at_1_36(app, topology):
    query = (
        "resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET2"
        "&required_HOST=CUSTOM_ROOT_A&same_subtree=_NET,_HOST&group_policy=none"
    )
    rejected(app, "1.35", query, "'same_subtree' does not match any of the regexes")
    answer = Client(app, version="1.36").get(f"{PATH}?{query}")
    (request,) = answer.json()["allocation_requests"]
    assert request["allocations"] == {topology.pf2: {"resources": {"SRIOV_NET_VF": 1}}}
    assert request["mappings"] == {"_NET": [topology.pf2], "_HOST": [topology.cn1]}


def test_a_resourceless_group_outside_same_subtree_is_a_400(app, topology):
    rejected(
        app, "1.36", "resources_NET=SRIOV_NET_VF:1&required_HOST=CUSTOM_ROOT_A&group_policy=none",
        "Resourceless suffixed group request should be specified in `same_subtree` query param: "
        "bad group(s) - ['_HOST'].",
        "placement.query.bad_value",
    )


def test_same_subtree_must_name_real_groups(app, topology):
    rejected(
        app, "1.36", "resources_NET=SRIOV_NET_VF:1&same_subtree=_NET,_GHOST",
        "Real suffixes should be specified in `same_subtree`: ['_GHOST'] not found in ['_NET'].",
        "placement.query.bad_value",
    )
    rejected(
        app, "1.36", "resources_NET=SRIOV_NET_VF:1&same_subtree=_NET,,",
        "Empty string (unsuffixed group) can not be specified in `same_subtree`",
        "placement.query.bad_value",
    )


def test_before_1_36_every_group_needs_resources(app, topology):
    rejected(
        app, "1.35", "resources=VCPU:1&required1=CUSTOM_ROOT_A",
        "Found the following orphaned traits keys: required1",
    )
    rejected(
        app, "1.35", f"resources=VCPU:1&member_of1={AGGREGATE}",
        "Found the following orphaned member_of keys: member_of1",
    )
