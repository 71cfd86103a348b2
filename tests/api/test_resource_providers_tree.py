"""HTTP spec: nested providers, moving them between trees and un-parenting.

Most tests start from this forest::

    root_a                root_b
      |
    middle
      |
    leaf
"""
from __future__ import annotations

import threading

import pytest

from tests.support import Client

ROOT_A = "aaaaaaaa-0000-4000-8000-000000000001"
MIDDLE = "aaaaaaaa-0000-4000-8000-000000000002"
LEAF = "aaaaaaaa-0000-4000-8000-000000000003"
ROOT_B = "bbbbbbbb-0000-4000-8000-000000000001"


def url(uuid: str) -> str:
    return f"/resource_providers/{uuid}"


def create(client: Client, name: str, uuid: str, parent: str | None = None):
    body = {"name": name, "uuid": uuid}
    if parent:
        body["parent_provider_uuid"] = parent
    return client.post("/resource_providers", body)


def tree(client: Client) -> dict[str, tuple[str | None, str]]:
    """Every provider's (parent, root), by uuid."""
    providers = client.get("/resource_providers").json()["resource_providers"]
    return {p["uuid"]: (p["parent_provider_uuid"], p["root_provider_uuid"]) for p in providers}


def detail(answer) -> str:
    return answer.json()["errors"][0]["detail"]


@pytest.fixture
def forest(client):
    for name, uuid, parent in [
        ("root_a", ROOT_A, None),
        ("middle", MIDDLE, ROOT_A),
        ("leaf", LEAF, MIDDLE),
        ("root_b", ROOT_B, None),
    ]:
        assert create(client, name, uuid, parent).status == 200
    return client


def test_a_child_joins_its_parents_tree(forest):
    assert tree(forest) == {
        ROOT_A: (None, ROOT_A),
        MIDDLE: (ROOT_A, ROOT_A),
        LEAF: (MIDDLE, ROOT_A),
        ROOT_B: (None, ROOT_B),
    }


def test_a_provider_cannot_be_its_own_parent_at_creation(client):
    answer = create(client, "selfish", ROOT_A, ROOT_A)
    assert answer.status == 400
    assert "parent provider UUID cannot be same as UUID" in detail(answer)
    assert f'Unable to create resource provider "selfish", {ROOT_A}:' in detail(answer)
    assert tree(client) == {}


def test_an_unknown_parent_is_a_400_at_creation(client):
    answer = create(client, "orphan", LEAF, MIDDLE)
    assert answer.status == 400
    assert "parent provider UUID does not exist" in detail(answer)


def test_a_root_may_be_given_a_parent_before_1_37_and_brings_its_subtree(forest, app):
    old = Client(app, version="1.14")
    answer = old.put(url(ROOT_A), {"name": "root_a", "parent_provider_uuid": ROOT_B})
    assert answer.status == 200
    assert answer.json()["root_provider_uuid"] == ROOT_B
    assert tree(forest) == {
        ROOT_A: (ROOT_B, ROOT_B),
        MIDDLE: (ROOT_A, ROOT_B),
        LEAF: (MIDDLE, ROOT_B),
        ROOT_B: (None, ROOT_B),
    }


def test_repeating_the_current_parent_is_allowed_before_1_37(forest, app):
    old = Client(app, version="1.36")
    answer = old.put(url(LEAF), {"name": "leaf", "parent_provider_uuid": MIDDLE})
    assert answer.status == 200


def test_renaming_without_a_parent_field_keeps_the_parent(forest):
    answer = forest.put(url(LEAF), {"name": "renamed leaf"})
    assert answer.status == 200
    assert answer.json()["parent_provider_uuid"] == MIDDLE


def test_moving_to_another_parent_needs_1_37(forest, app):
    answer = Client(app, version="1.36").put(
        url(MIDDLE), {"name": "middle", "parent_provider_uuid": ROOT_B}
    )
    assert answer.status == 400
    assert "re-parenting a provider is not currently allowed" in detail(answer)
    assert tree(forest)[MIDDLE] == (ROOT_A, ROOT_A)


def test_un_parenting_needs_1_37(forest, app):
    answer = Client(app, version="1.36").put(
        url(MIDDLE), {"name": "middle", "parent_provider_uuid": None}
    )
    assert answer.status == 400
    assert "un-parenting a provider is not currently allowed" in detail(answer)


def test_from_1_37_a_subtree_moves_to_another_tree(forest, app):
    answer = Client(app, version="1.37").put(
        url(MIDDLE), {"name": "middle", "parent_provider_uuid": ROOT_B}
    )
    assert answer.status == 200
    assert tree(forest) == {
        ROOT_A: (None, ROOT_A),
        MIDDLE: (ROOT_B, ROOT_B),
        LEAF: (MIDDLE, ROOT_B),
        ROOT_B: (None, ROOT_B),
    }


def test_from_1_37_an_un_parented_subtree_becomes_its_own_tree(forest, app):
    answer = Client(app, version="1.37").put(
        url(MIDDLE), {"name": "middle", "parent_provider_uuid": None}
    )
    assert answer.status == 200
    assert answer.json()["root_provider_uuid"] == MIDDLE
    assert tree(forest)[LEAF] == (MIDDLE, MIDDLE)
    assert tree(forest)[ROOT_A] == (None, ROOT_A)


@pytest.mark.parametrize("new_parent", [ROOT_A, MIDDLE, LEAF])
def test_a_provider_cannot_become_its_own_ancestor(forest, new_parent):
    answer = forest.put(url(ROOT_A), {"name": "root_a", "parent_provider_uuid": new_parent})
    assert answer.status == 400
    assert "creating loop in the provider tree is not allowed." in detail(answer)
    assert tree(forest)[ROOT_A] == (None, ROOT_A)


def test_moving_under_an_unknown_parent_is_a_400(forest):
    answer = forest.put(url(ROOT_B), {"name": "root_b", "parent_provider_uuid": LEAF[:-1] + "9"})
    assert answer.status == 400
    assert "parent provider UUID does not exist" in detail(answer)


def test_a_parent_cannot_be_set_before_1_14(forest, app):
    answer = Client(app, version="1.13").put(
        url(ROOT_B), {"name": "root_b", "parent_provider_uuid": ROOT_A}
    )
    assert answer.status == 400
    assert "JSON does not validate" in detail(answer)


def test_in_tree_lists_the_whole_tree_of_any_member(forest):
    for member in (ROOT_A, MIDDLE, LEAF):
        listed = forest.get(f"/resource_providers?in_tree={member}").json()["resource_providers"]
        assert {p["uuid"] for p in listed} == {ROOT_A, MIDDLE, LEAF}


def test_in_tree_follows_a_move(forest):
    forest.put(url(MIDDLE), {"name": "middle", "parent_provider_uuid": ROOT_B})
    listed = forest.get(f"/resource_providers?in_tree={ROOT_B}").json()["resource_providers"]
    assert {p["uuid"] for p in listed} == {ROOT_B, MIDDLE, LEAF}


def test_in_tree_of_an_unknown_provider_is_empty(forest):
    answer = forest.get("/resource_providers?in_tree=cccccccc-0000-4000-8000-000000000001")
    assert answer.status == 200
    assert answer.json()["resource_providers"] == []


def test_in_tree_needs_1_14(forest, app):
    answer = Client(app, version="1.13").get(f"/resource_providers?in_tree={ROOT_A}")
    assert answer.status == 400
    assert "Invalid query string parameters" in detail(answer)


def test_two_concurrent_crossing_moves_never_make_a_loop(forest, app):
    """root_a -> under root_b and root_b -> under leaf, at the same time:
    at most one may win, and the forest stays a forest."""
    requests = [
        (ROOT_A, {"name": "root_a", "parent_provider_uuid": ROOT_B}),
        (ROOT_B, {"name": "root_b", "parent_provider_uuid": LEAF}),
    ]
    statuses: list[int] = []
    barrier = threading.Barrier(len(requests))

    def move(uuid, body):
        client = Client(app)
        barrier.wait()
        statuses.append(client.put(url(uuid), body).status)

    threads = [threading.Thread(target=move, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400]
    shape = tree(forest)
    roots = {uuid for uuid, (parent, root) in shape.items() if parent is None}
    assert len(roots) == 1
    assert all(root in roots for _parent, root in shape.values())
