"""Property tests: the fast and the reference engine explain a run alike
where their pipelines coincide.

The engines share root traits (the reference's ``root_traits``, the fast
engine's first checks in ``eligible_roots``, both over every root) but not
what follows: the fast engine settles most trees per kind of tree before
any per-provider stage, the reference per provider. So what must agree is
the root-trait counts per reason and trait, and the summary's headline
(trees considered, trees that fit, candidates); the rest of the summary
counts in each engine's own units.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from stowage.api import explanation
from stowage.candidates import fast, reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.results import Explanation, ReasonCount
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


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_both_engines_count_the_same_trees_per_root_trait_reason(scenario):
    snapshot, request = scenario
    expected = reference.find_candidates(snapshot, request)
    found = fast.find_candidates(ReadModel.build(1, snapshot), request)
    assert found.explanation.trees == expected.explanation.trees == len(snapshot.roots)
    assert root_trait_counts(found.explanation, "eligible_roots") == root_trait_counts(
        expected.explanation, "root_traits"
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_both_engines_summaries_agree_on_trees_and_candidates(scenario):
    snapshot, request = scenario
    expected = reference.find_candidates(snapshot, request)
    found = fast.find_candidates(ReadModel.build(1, snapshot), request)
    assert headline(explanation.summary(found, request)) == headline(
        explanation.summary(expected, request)
    )
    assert explanation.fitting_trees(found) == explanation.fitting_trees(expected)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_every_reason_count_is_positive_and_the_nearest_misses_are_misses(scenario):
    snapshot, request = scenario
    for result in (
        reference.find_candidates(snapshot, request),
        fast.find_candidates(ReadModel.build(1, snapshot), request),
    ):
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
