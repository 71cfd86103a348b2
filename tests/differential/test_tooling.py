"""The differential tester's own parts: generator, normalisation, allow-list."""
from __future__ import annotations

import json
import random

from tests.differential.allowlist import allow_list, allowance_for
from tests.differential.compare import differences, limited_reference, normalise
from tests.differential.generator import Generator
from tests.differential.runner import Exchange, parse_seeds
from tests.differential.steps import Step
from tests.differential.upstream_bugs import upstream_miscounts_amounts
from tests.differential.wire import Answer, WireRequest

PROVIDER = "0b2c8d5e-6a9f-4f3e-9c41-7e8d9a0b1c2d"
PICKED = "5d1e8f0a-2b3c-4d5e-8f9a-0b1c2d3e4f5a"


def _json(status: int, body: object, **headers: str) -> Answer:
    return Answer(status, {"content-type": "application/json", **headers},
                  json.dumps(body).encode())


def test_the_generator_makes_steps_whatever_upstream_answers():
    for seed in range(20):
        generator, answers = Generator(seed), random.Random(seed)
        for _ in range(300):
            step, on_answer = generator.next()
            assert step.target().startswith("/")
            if on_answer is not None:
                on_answer(Answer(answers.choice([200, 201, 204, 400, 404, 409])))


def test_the_same_seed_makes_the_same_steps_for_the_same_answers():
    def steps(seed: int) -> list[tuple[str, str, object]]:
        generator, made = Generator(seed), []
        for _ in range(200):
            step, on_answer = generator.next()
            made.append((step.method, step.target(), step.body))
            if on_answer is not None:
                on_answer(Answer(204 if step.method != "GET" else 200))
        return made

    assert steps(3) == steps(3)
    assert steps(3) != steps(4)


def test_request_ids_clocks_hosts_and_picked_uuids_are_normalised():
    first = _json(409, {"errors": [{"detail": "at 2026-12-02 10:00:00.123 for req-"
                                    "0a1b2c3d-0a1b-4c2d-8e3f-0a1b2c3d4e5f", "links": [
                                        {"href": f"http://host:8778/resource_providers/{PICKED}"}]}]},
                  location=f"http://host:8778/resource_providers/{PICKED}",
                  **{"last-modified": "Wed, 02 Dec 2026 10:00:00 GMT"})
    second = _json(409, {"errors": [{"detail": "at datetime.datetime(2026, 12, 2, 11, 0) for req-"
                                     "ffffffff-0a1b-4c2d-8e3f-0a1b2c3d4e5f", "links": [
                                         {"href": "/resource_providers/STAND-IN"}]}]},
                   location="/resource_providers/STAND-IN",
                   **{"last-modified": "Thu, 03 Dec 2026 10:00:00 GMT"})
    assert differences("/x", normalise(first, {PICKED: "STAND-IN"}), normalise(second, {})) == []


def test_status_headers_and_every_body_field_are_compared():
    upstream = _json(400, {"errors": [{"status": 400, "detail": "a", "code": "c"}]}, vary="v")
    stowage = _json(404, {"errors": [{"status": 400, "detail": "b"}]})
    found = {aspect.general for aspect in differences(
        "/x", normalise(upstream, {}), normalise(stowage, {}))}
    assert found == {"status", "header vary", "body/errors/*/detail", "body/errors/*/code"}


def test_only_the_lists_shown_to_follow_the_hash_seed_are_compared_without_order():
    def listing(route: str, key: str, items: list[str]) -> list[str]:
        return [aspect.where for aspect in differences(
            route, normalise(_json(200, {key: items}), {}),
            normalise(_json(200, {key: list(reversed(items))}), {}))]

    assert listing("/traits", "traits", ["A", "B"]) == []
    assert listing("/resource_classes", "resource_classes", ["A", "B"]) == [
        "body/resource_classes (order)"]


def test_a_limit_may_keep_any_of_upstreams_candidates_with_their_trees_summaries():
    def candidates(*providers: str) -> dict[str, object]:
        return {"allocation_requests": [{"allocations": {p: {"resources": {"VCPU": 1}}}}
                                        for p in providers],
                "provider_summaries": {p: {"resources": {}} for p in providers}}

    unlimited = normalise(_json(200, candidates("a", "b", "c")), {})
    upstream = normalise(_json(200, candidates("a")), {})
    roots = {"a": "a", "b": "b", "c": "c"}
    for kept, equal in (("b", True), ("c", True), ("z", False)):
        stowage = normalise(_json(200, candidates(kept)), {})
        reference = limited_reference(upstream, stowage, unlimited, roots)
        assert (differences("/allocation_candidates", reference, stowage) == []) is equal


def test_seeds_are_a_count_a_list_or_a_range():
    assert parse_seeds("3") == [1, 2, 3]
    assert parse_seeds("7,") == [7]
    assert parse_seeds("4,9") == [4, 9]
    assert parse_seeds("10-12") == [10, 11, 12]


def test_an_allow_list_row_explains_a_difference_only_in_the_places_it_names(tmp_path):
    document = tmp_path / "conformance.md"
    document.write_text(
        "## Differential allow-list\n\n"
        "| request | microversions | upstream status | difference | reason |\n"
        "|---|---|---|---|---|\n"
        "| `GET /traits` | 1.6-1.39 | 500 | `status` | upstream bug |\n"
        "| `GET /traits` | * | 500 | `body/errors/*` | upstream bug |\n\n"
        "## Next section\n\n| a | b | c | d | e |\n")
    rows = allow_list(str(document))
    assert len(rows) == 2

    def exchange(version: str, upstream: Answer, stowage: Answer) -> Exchange:
        step = Step("list traits", "GET", "/traits", "/traits",
                    headers=(("openstack-api-version", version),))
        request = WireRequest("GET", "/traits")
        return Exchange(0, step, (request, request), (upstream, stowage), differences(
            "/traits", normalise(upstream, {}), normalise(stowage, {})))

    broken = _json(500, {"errors": [{"status": 500}]})
    fine = _json(200, {"errors": [{"status": 500}]})
    assert allowance_for(exchange("placement 1.6", broken, fine), rows) is not None
    assert allowance_for(exchange("placement 1.5", broken, fine), rows) is None
    with_vary = _json(200, {"errors": [{"status": 500}]}, vary="openstack-api-version")
    assert allowance_for(exchange("placement 1.6", broken, with_vary), rows) is None


# --- upstream_bugs: the amount-merging bug, told apart from real differences ----------------

HOST = "11111111-1111-4111-8111-111111111111"
SHARED = "22222222-2222-4222-8222-222222222222"
SPLIT_QUERY = "/allocation_candidates?resources=DISK_GB:1&resources_A=DISK_GB:2"


def _candidate(allocations: dict[str, int], mappings: dict[str, list[str]]) -> dict:
    return {"allocations": {uuid: {"resources": {"DISK_GB": amount}}
                            for uuid, amount in allocations.items()},
            "mappings": mappings}


def _summary(uuid: str) -> dict:
    return {"resources": {"DISK_GB": {"capacity": 100, "used": 0}}, "traits": [],
            "parent_provider_uuid": None, "root_provider_uuid": uuid}


def _candidates_exchange(target: str, upstream: list[dict], stowage: list[dict],
                         upstream_summaries: dict, stowage_summaries: dict) -> Exchange:
    step = Step("allocation candidates", "GET", "/allocation_candidates", "/allocation_candidates")
    request = WireRequest("GET", target)
    answers = (_json(200, {"allocation_requests": upstream, "provider_summaries": upstream_summaries}),
               _json(200, {"allocation_requests": stowage, "provider_summaries": stowage_summaries}))
    return Exchange(0, step, (request, request), answers, [])


WHOLE = _candidate({HOST: 3}, {"": [HOST], "_A": [HOST]})
SPLIT = _candidate({HOST: 2, SHARED: 1}, {"": [SHARED], "_A": [HOST]})


def test_the_merging_bug_explains_a_candidate_upstream_loses_with_its_sharing_tree():
    exchange = _candidates_exchange(SPLIT_QUERY, [WHOLE], [WHOLE, SPLIT],
                                    {HOST: _summary(HOST)},
                                    {HOST: _summary(HOST), SHARED: _summary(SHARED)})
    assert upstream_miscounts_amounts(exchange)


def test_the_merging_bug_explains_nothing_when_no_class_is_in_two_groups():
    exchange = _candidates_exchange(
        "/allocation_candidates?resources=DISK_GB:1&resources_A=VCPU:2", [WHOLE], [WHOLE, SPLIT],
        {HOST: _summary(HOST)}, {HOST: _summary(HOST), SHARED: _summary(SHARED)})
    assert not upstream_miscounts_amounts(exchange)


def test_the_merging_bug_explains_no_inexact_candidate_of_stowage():
    inexact = _candidate({HOST: 2, SHARED: 2}, {"": [SHARED], "_A": [HOST]})
    exchange = _candidates_exchange(SPLIT_QUERY, [WHOLE], [WHOLE, inexact],
                                    {HOST: _summary(HOST)},
                                    {HOST: _summary(HOST), SHARED: _summary(SHARED)})
    assert not upstream_miscounts_amounts(exchange)


def test_the_merging_bug_explains_no_summary_of_a_tree_no_extra_candidate_takes_from():
    stray = "33333333-3333-4333-8333-333333333333"
    exchange = _candidates_exchange(
        SPLIT_QUERY, [WHOLE], [WHOLE, SPLIT], {HOST: _summary(HOST)},
        {HOST: _summary(HOST), SHARED: _summary(SHARED), stray: _summary(stray)})
    assert not upstream_miscounts_amounts(exchange)


def test_the_merging_bug_explains_no_candidate_only_upstream_has():
    exchange = _candidates_exchange(SPLIT_QUERY, [WHOLE, SPLIT], [WHOLE],
                                    {HOST: _summary(HOST), SHARED: _summary(SHARED)},
                                    {HOST: _summary(HOST)})
    assert not upstream_miscounts_amounts(exchange)
