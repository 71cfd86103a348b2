"""Property tests: the fast and the reference engine explain a run alike.

Each tree a request rules out is counted once, under the first step of
``stowage.candidates.attribution``'s order that rules it out, whatever
order the engine checks in: the fast engine settles root traits, room and
a lone tree's traits per kind of root before any per-provider stage,
answers twin trees by replaying one, and prunes combinations as it goes;
the reference looks at every provider and every combination. Their tree
counts (stage, group, reason, class or trait, how many trees, and the
closest tree's numbers) must be equal, and every tree is either fitting or
counted exactly once.

The per-stage counts are each engine's own (providers, choices,
combinations...), so only the root-trait counts, which both take over
every root, are compared there.
"""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.api import explanation
from stowage.candidates import fast, reference
from stowage.candidates.attribution import TREE_STAGES
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import EngineOptions, GenerationStrategy
from stowage.candidates.results import CandidateResult, Explanation, ReasonCount
from tests.candidates.test_fast_properties import forests_with_twins
from tests.candidates.test_reference_properties import scenarios

_ROOT_TRAIT_REASONS = ("missing_root_trait", "forbidden_root_trait")


def root_trait_counts(found: Explanation, stage: str) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for report in found.stages:
        if report.stage != stage:
            continue
        for count in report.details:
            if count.reason in _ROOT_TRAIT_REASONS:
                key = (count.reason, count.trait)
                counts[key] = counts.get(key, 0) + count.count
    return counts


def headline(summary: str) -> str:
    return summary.split(":", 1)[0]


def both(scenario, options: EngineOptions = EngineOptions(), min_batch: int = 64):
    snapshot, request = scenario
    expected = reference.find_candidates(snapshot, request, options)
    found = fast.find_candidates(ReadModel.build(1, snapshot), request, options, min_batch)
    return expected, found


def assert_every_tree_counted_once(result: CandidateResult) -> None:
    """Fitting, or counted once under a known step: the counts are trees."""
    explained = result.explanation
    assert explained.fitting_trees + sum(c.count for c in explained.excluded_trees) == (
        explained.trees
    )
    assert explained.fitting_trees >= len({candidate.anchor for candidate in result.candidates})
    assert all(count.count > 0 for count in explained.excluded_trees)
    assert {count.stage for count in explained.excluded_trees} <= set(TREE_STAGES)
    # ``no_choice`` would mean group_problem found a way the group stage did not.
    assert "no_choice" not in {count.reason for count in explained.excluded_trees}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_both_engines_count_the_same_trees_per_root_trait_reason(scenario):
    snapshot, _ = scenario
    expected, found = both(scenario)
    assert found.explanation.trees == expected.explanation.trees == len(snapshot.roots)
    assert root_trait_counts(found.explanation, "eligible_roots") == root_trait_counts(
        expected.explanation, "root_traits"
    )


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.sampled_from(list(GenerationStrategy)))
def test_both_engines_count_each_tree_under_the_same_stage_and_reason(scenario, strategy):
    expected, found = both(scenario, EngineOptions(strategy=strategy))
    assert found.explanation.excluded_trees == expected.explanation.excluded_trees
    assert found.explanation.fitting_trees == expected.explanation.fitting_trees
    for result in (expected, found):
        assert_every_tree_counted_once(result)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(forests_with_twins())
def test_twin_trees_are_counted_as_the_reference_counts_each(scenario):
    """A twin replays its original's verdict: counted once per twin."""
    expected, found = both(scenario)
    assert found.explanation.excluded_trees == expected.explanation.excluded_trees
    assert found.explanation.fitting_trees == expected.explanation.fitting_trees
    assert_every_tree_counted_once(found)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.integers(1, 3), st.integers(0, 20))
def test_a_limited_request_that_finds_nothing_is_counted_as_an_unlimited_one(
    scenario, limit, start
):
    """With a limit the fast engine takes the roots in batches (of one
    here) from any start; when nothing fits it has looked at every tree."""
    snapshot, request = scenario
    expected = reference.find_candidates(snapshot, request)
    if expected.candidates:
        return
    limited = dataclasses.replace(request, limit=limit)
    found = fast.find_candidates(
        ReadModel.build(1, snapshot), limited, EngineOptions(start=start), min_batch=1
    )
    assert found.candidates == ()
    assert found.explanation.excluded_trees == expected.explanation.excluded_trees
    assert_every_tree_counted_once(found)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_both_engines_summaries_agree(scenario):
    """The summary line is made of the tree counts: the same line."""
    _, request = scenario
    expected, found = both(scenario)
    assert explanation.summary(found, request) == explanation.summary(expected, request)
    assert headline(explanation.summary(found, request)) == headline(
        explanation.summary(expected, request)
    )
    assert explanation.fitting_trees(found) == explanation.fitting_trees(expected)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_every_reason_count_is_positive_and_the_nearest_misses_are_misses(scenario):
    _, request = scenario
    for result in both(scenario):
        details: list[ReasonCount] = [
            count for report in result.explanation.stages for count in report.details
        ]
        assert all(count.count > 0 for count in details)
        for report in result.explanation.stages:
            assert sum(count.count for count in report.details) == sum(
                number for _, number in report.excluded
            )
        shortfalls = [miss.shortfall for miss in result.explanation.nearest_misses]
        assert all(shortfall is not None and shortfall > 0 for shortfall in shortfalls)
        assert shortfalls == sorted(shortfalls)  # type: ignore[type-var]
        # Rendering never fails, whatever the engine found.
        explanation.explanation_body(result, request)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_without_the_explanation_the_answer_is_the_same(scenario):
    snapshot, request = scenario
    model = ReadModel.build(1, snapshot)
    explained = fast.find_candidates(model, request)
    bare = fast.find_candidates(model, request, explain=False)
    assert bare.candidates == explained.candidates
    assert bare.summaries == explained.summaries
    assert bare.explanation == Explanation()
    assert reference.find_candidates(snapshot, request, explain=False).candidates == (
        reference.find_candidates(snapshot, request).candidates
    )
