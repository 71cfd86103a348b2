"""HTTP spec: [stowage] spread_limited_candidates.

Eight identical compute hosts (VCPU 8 each). With the option off (the
default) a limited answer is upstream's: the first hosts, every time. With
it on, each limited answer of a worker starts after the last host the
previous one handed out, so schedulers asking together get different hosts;
every answer is still a set of valid candidates.
"""
from __future__ import annotations

import uuid

import pytest

from stowage.api.app import create_app
from tests.support import Client, test_conf

HOSTS = 8
QUERY = "/allocation_candidates?resources=VCPU:1&limit=3"


def _hosts(client: Client) -> list[str]:
    uuids = []
    for index in range(HOSTS):
        host = str(uuid.UUID(int=index + 1))
        assert client.post("/resource_providers", {"uuid": host, "name": f"host{index}"}).status == 200
        answer = client.put(f"/resource_providers/{host}/inventories", {
            "resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}},
        })
        assert answer.status == 200, answer.body
        uuids.append(host)
    return uuids


def _offered(client: Client) -> list[str]:
    answer = client.get(QUERY)
    assert answer.status == 200, answer.body
    return [next(iter(request["allocations"])) for request in answer.json()["allocation_requests"]]


def _client(database, spread: bool) -> Client:
    conf = test_conf(stowage={"candidate_engine": "fast", "spread_limited_candidates": spread})
    return Client(create_app(conf, database))


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_by_default_every_limited_answer_is_the_first_hosts(database, engine):
    client = Client(create_app(test_conf(stowage={"candidate_engine": engine}), database))
    hosts = _hosts(client)
    assert _offered(client) == hosts[:3]
    assert _offered(client) == hosts[:3]


def test_spread_answers_resume_after_the_last_host_handed_out(database):
    client = _client(database, spread=True)
    hosts = _hosts(client)
    first = _offered(client)
    assert len(first) == 3 and set(first) <= set(hosts)
    start = hosts.index(first[0])
    # Consecutive hosts from a random start, wrapping round.
    assert first == [hosts[(start + step) % HOSTS] for step in range(3)]
    second = _offered(client)
    assert second == [hosts[(start + 3 + step) % HOSTS] for step in range(3)]
    third = _offered(client)
    assert third == [hosts[(start + 6 + step) % HOSTS] for step in range(3)]


def test_spread_answers_never_offer_a_host_without_room(database):
    client = _client(database, spread=True)
    hosts = _hosts(client)
    full = hosts[:6]
    for host in full:
        answer = client.put(f"/allocations/{uuid.uuid4()}", {
            "allocations": {host: {"resources": {"VCPU": 8}}},
            "project_id": "p", "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE",
        })
        assert answer.status == 204, answer.body
    for _ in range(4):
        offered = _offered(client)
        assert sorted(offered) == sorted(hosts[6:])
