"""HTTP spec: GET /stowage/allocation_candidates/explain says why nothing
fits, from the same run as GET /allocation_candidates; and the INFO line an
empty answer logs, and ``stowage explain``.

Topology (every tree one provider; CUSTOM_X on all but cn1 and cn2)::

    cn1: VCPU 8                        lacks CUSTOM_X
    cn2: VCPU 8                        lacks CUSTOM_X
    cn3: VCPU 8 (6 used); CUSTOM_X     2 free
    cn4: VCPU 3; CUSTOM_X              3 free: the nearest miss for VCPU:4
    cn5: DISK_GB 100; CUSTOM_X         no VCPU
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from stowage.api.app import create_app
from stowage.cmd.main import main
from stowage.storage.database import Database
from tests.candidates.topology import PROJECT, USER
from tests.conformance.fixtures import Builder
from tests.support import Client, test_conf

PATH = "/stowage/allocation_candidates/explain"
NOTHING_FITS = "resources=VCPU:4&required=CUSTOM_X"


@dataclass(frozen=True)
class Cloud:
    cn1: str
    cn2: str
    cn3: str
    cn4: str
    cn5: str


def build_cloud(client: Client) -> Cloud:
    build = Builder(client)
    names = {}
    for name in ("cn1", "cn2", "cn3", "cn4", "cn5"):
        names[name] = build.create_provider(name)
    for name in ("cn1", "cn2", "cn3"):
        build.add_inventory(names[name], "VCPU", 8)
    build.add_inventory(names["cn4"], "VCPU", 3)
    build.add_inventory(names["cn5"], "DISK_GB", 100)
    for name in ("cn3", "cn4", "cn5"):
        build.set_traits(names[name], "CUSTOM_X")
    build.set_allocation(
        "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", PROJECT, USER, {names["cn3"]: {"VCPU": 6}}
    )
    return Cloud(**names)


@pytest.fixture
def cloud(client) -> Cloud:
    return build_cloud(client)


def explained(client: Client, query: str) -> dict:
    answer = client.get(f"{PATH}?{query}")
    assert answer.status == 200, answer.body
    return answer.json()


def test_nothing_fitting_for_several_reasons_is_counted_per_reason_in_one_line(client, cloud):
    body = explained(client, NOTHING_FITS)
    assert body["summary"] == (
        "0 of 5 trees fit: 2 have too little VCPU (need 4, best free 3); 2 lack CUSTOM_X; "
        "1 has no VCPU"
    )
    assert (body["candidates"], body["trees"], body["fitting_trees"]) == (0, 5, 0)
    assert client.get(f"/allocation_candidates?{NOTHING_FITS}").json()["allocation_requests"] == []


def test_the_counts_per_reason_are_listed_per_stage_for_the_request_as_a_whole(client, cloud):
    (whole,) = [group for group in explained(client, NOTHING_FITS)["groups"] if group["group"] is None]
    roots = next(stage for stage in whole["stages"] if stage["stage"] == "eligible_roots")
    assert roots["kept"] == 0
    assert {(entry["reason"], entry["count"]) for entry in roots["excluded"]} == {
        ("missing_trait", 2), ("no_room_in_tree", 2), ("no_inventory_in_tree", 1)
    }
    room = next(entry for entry in roots["excluded"] if entry["reason"] == "no_room_in_tree")
    assert (room["resource_class"], room["requested"], room["free"]) == ("VCPU", 4, 3)


def test_nearest_misses_name_the_provider_and_the_numbers_closest_first(client, cloud):
    misses = explained(client, NOTHING_FITS)["nearest_misses"]
    assert [(miss["provider"], miss["requested"], miss["free"]) for miss in misses] == [
        (cloud.cn4, 4, 3), (cloud.cn3, 4, 2)
    ]
    assert {miss["resource_class"] for miss in misses} == {"VCPU"}


def test_a_suffixed_group_is_named_in_the_summary(client, cloud):
    body = explained(
        client, "resources1=VCPU:1&required1=CUSTOM_X&resources2=VCPU:4&group_policy=none"
    )
    assert body["summary"] == (
        "0 of 5 trees fit: 2 lack CUSTOM_X in group 1; "
        "2 have too little VCPU (need 4, best free 3) in group 2; 1 has no VCPU"
    )
    assert [group["group"] for group in body["groups"]] == [None, "1", "2"]


def test_each_excluded_tree_is_counted_once_under_its_first_reason(client, cloud):
    trees = explained(client, NOTHING_FITS)["excluded_trees"]
    assert (trees["unit"], trees["examined"], trees["excluded"]) == ("trees", 5, 5)
    assert [(r["stage"], r["reason"], r["count"], r["resource_class"], r["trait"])
            for r in trees["reasons"]] == [
        ("tree_room", "no_room_in_tree", 2, "VCPU", None),
        ("groups", "missing_trait", 2, None, "CUSTOM_X"),
        ("tree_room", "no_inventory_in_tree", 1, "VCPU", None),
    ]
    room = trees["reasons"][0]
    assert (room["requested"], room["free"], room["text"]) == (
        4, 3, "2 have too little VCPU (need 4, best free 3)"
    )


def test_every_stage_says_what_it_counts(client, cloud):
    body = explained(
        client, "resources1=VCPU:1&required1=CUSTOM_X&resources2=VCPU:4&group_policy=none"
    )
    units = {stage["stage"]: stage["unit"] for group in body["groups"] for stage in group["stages"]}
    assert units["eligible_roots"] == units["lone_trees"] == "trees"
    assert set(units.values()) <= {"trees", "providers", "provider choices", "combinations"}


def test_a_tree_counting_on_a_sharing_provider_is_told_why_it_cannot(client):
    """Topology (DISK_GB only in a sharing pool)::

        pool: DISK_GB 100, MISC_SHARES_VIA_AGGREGATE   ┐ aggregate A
        near: VCPU 8                                   ┘
        far:  VCPU 8                                     in no aggregate
    """
    build = Builder(client)
    aggregate = "7b1d0a6e-2f9c-4e8b-a1d3-5c6f7e8d9a0b"
    pool = build.create_provider("pool", aggregate)
    near = build.create_provider("near", aggregate)
    far = build.create_provider("far")
    build.add_inventory(pool, "DISK_GB", 100)
    build.set_traits(pool, "MISC_SHARES_VIA_AGGREGATE")
    for host in (near, far):
        build.add_inventory(host, "VCPU", 8)
    body = explained(client, "resources=VCPU:1,DISK_GB:200")
    assert body["summary"] == (
        "0 of 3 trees fit: 1 has no VCPU; 1 has no DISK_GB of its own and too little in the "
        "sharing providers of its aggregates (need 200, best free 100); 1 has no DISK_GB and "
        "no sharing provider of it is in its aggregates"
    )
    reasons = {r["reason"]: r for r in body["excluded_trees"]["reasons"]}
    assert set(reasons) == {"no_inventory_in_tree", "no_room_in_sharing", "no_sharing_provider"}
    assert reasons["no_room_in_sharing"]["free"] == 100
    # Room in the pool: both hosts on it fit, the one outside still does not.
    assert explained(client, "resources=VCPU:1,DISK_GB:50")["summary"] == (
        "1 of 3 trees fit (1 candidate)"
    )


def test_a_query_that_fits_says_how_many_trees_and_candidates(client, cloud):
    body = explained(client, "resources=VCPU:1")
    assert body["summary"] == "4 of 5 trees fit (4 candidates)"
    assert (body["candidates"], body["fitting_trees"]) == (4, 4)
    limited = explained(client, "resources=VCPU:1&limit=2")
    assert limited["summary"] == "2 of 5 trees fit (2 candidates, the limit)"


@pytest.mark.parametrize("query", [
    "resources=VCPU:x",
    "resources=VCPU:1&required=CUSTOM_NO_SUCH_TRAIT",
    "resources=NO_SUCH_CLASS:1",
    "limit=1",
    "resources=VCPU:1&group_policy=sideways",
])
def test_a_bad_query_gets_the_400_of_allocation_candidates(client, cloud, query):
    explain, listing = client.get(f"{PATH}?{query}"), client.get(f"/allocation_candidates?{query}")
    assert explain.status == listing.status == 400
    assert explain.json()["errors"][0]["detail"] == listing.json()["errors"][0]["detail"]


def test_the_microversion_rules_are_those_of_allocation_candidates(app, cloud):
    assert Client(app, version="1.9").get(f"{PATH}?resources=VCPU:1").status == 404
    old = Client(app, version="1.16").get(f"{PATH}?{NOTHING_FITS}")
    assert old.status == 400
    assert "'required' was unexpected" in old.json()["errors"][0]["detail"]


def test_it_needs_a_token_and_the_candidates_policy(app, cloud):
    assert Client(app, token=None).get(f"{PATH}?resources=VCPU:1").status == 401
    assert Client(app, token="someone").get(f"{PATH}?resources=VCPU:1").status == 403


def test_an_empty_answer_logs_the_request_id_and_the_summary_at_info(client, cloud, caplog):
    with caplog.at_level(logging.INFO, logger="stowage.api.handlers.allocation_candidates"):
        answer = client.get(f"/allocation_candidates?{NOTHING_FITS}")
    request_id = answer.headers["x-openstack-request-id"]
    (record,) = [
        record for record in caplog.records
        if record.name == "stowage.api.handlers.allocation_candidates"
    ]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"{request_id}: no allocation candidates: 0 of 5 trees fit: "
        "2 have too little VCPU (need 4, best free 3); 2 lack CUSTOM_X; 1 has no VCPU"
    )


def test_a_non_empty_answer_logs_nothing(client, cloud, caplog):
    with caplog.at_level(logging.INFO, logger="stowage.api.handlers.allocation_candidates"):
        client.get("/allocation_candidates?resources=VCPU:1")
    assert not [
        record for record in caplog.records
        if record.name == "stowage.api.handlers.allocation_candidates"
    ]


# --- stowage explain -----------------------------------------------------------------


@pytest.fixture
def sqlite_config(tmp_path) -> str:
    """A config file whose embedded SQLite database holds the cloud."""
    path = tmp_path / "placement.conf"
    path.write_text(f"[stowage]\nstate_dir = {tmp_path / 'state'}\n")
    assert main(["db", "upgrade", "--config-file", str(path)]) == 0
    return str(path)


def test_the_command_prints_the_summary_and_the_nearest_misses(sqlite_config, capsys):
    from stowage.conf import build_conf

    database = Database.from_conf(build_conf(config_files=[sqlite_config]))
    try:
        cloud = build_cloud(Client(create_app(test_conf(), database)))
    finally:
        database.dispose()
    capsys.readouterr()
    assert main(["explain", NOTHING_FITS, "--config-file", sqlite_config]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "0 of 5 trees fit: 2 have too little VCPU (need 4, best free 3); 2 lack CUSTOM_X; "
        "1 has no VCPU"
    )
    assert lines[1] == "Nearest misses:"
    assert lines[2].split() [:4] == [cloud.cn4, "VCPU:", "need", "4,"]
    assert main(["explain", "resources=VCPU:1", "--config-file", sqlite_config]) == 0
    assert capsys.readouterr().out == "4 of 5 trees fit (4 candidates)\n"
    assert main(["explain", "resources=VCPU:x", "--config-file", sqlite_config]) == 2
    assert "stowage explain: " in capsys.readouterr().err
