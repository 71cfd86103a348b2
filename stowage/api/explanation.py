"""Why nothing fits: an engine's ``Explanation`` rendered for people.

The engine counts what each stage excluded, per reason and class or trait
(``StageReport.details``), and keeps the nearest misses; this module turns
those counts into one summary line, the JSON answer of
``GET /stowage/allocation_candidates/explain`` and the lines
``stowage explain`` prints. Nothing here looks at providers one by one: the
cost is in the number of reasons, not the size of the cloud.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stowage.candidates.request import CandidateRequest
from stowage.candidates.results import CandidateResult, Exclusion, ReasonCount, StageReport

# How many reasons the summary line names; the answer's groups list them all.
SUMMARY_REASONS = 5

# What a stage's exclusions count: trees (no unit in the summary, whose
# headline counts trees), providers, or choices and combinations of them.
_PROVIDER_STAGES = frozenset({"single_provider", "spread_options"})
_TREE_STAGES = frozenset({"root_traits", "eligible_roots", "lone_trees"})


def _unit(stage: str, reason: str) -> str:
    if stage in _TREE_STAGES or (stage == "spread_traits" and reason == "class_unavailable"):
        return ""
    if stage in _PROVIDER_STAGES:
        return "providers"
    if stage == "spread_traits":
        return "provider choices"
    return "combinations"


@dataclass(frozen=True)
class _Phrase:
    """One reason of the summary, summed over the stages counting alike."""

    unit: str
    group: str | None
    count: ReasonCount


def _traits(trait: str | None) -> str:
    """``A|B`` (any of) as "A or B"."""
    return " or ".join((trait or "?").split("|"))


def reason_text(count: ReasonCount) -> str:
    """What ``count.count`` excluded items have in common, after the number."""
    reason, resource_class, amount = count.reason, count.resource_class, count.requested
    if reason in ("missing_trait",):
        return f"lack {_traits(count.trait)}"
    if reason == "forbidden_trait":
        return f"have forbidden trait {count.trait}"
    if reason == "missing_root_trait":
        return f"lack root trait {count.trait} (root_required)"
    if reason == "forbidden_root_trait":
        return f"have forbidden root trait {count.trait} (root_required)"
    if reason in ("no_inventory", "no_inventory_in_tree", "class_unavailable"):
        return f"have no {resource_class}"
    if reason in ("insufficient_capacity", "no_room_in_tree"):
        numbers = [] if amount is None else [f"need {amount:,}"]
        if count.free is not None:
            numbers.append(f"best free {max(count.free, 0):,}")
        detail = f" ({', '.join(numbers)})" if numbers else ""
        return f"have too little {resource_class or 'room'}{detail}"
    if reason in ("below_min_unit", "above_max_unit", "step_size"):
        limit = {"below_min_unit": "below min_unit", "above_max_unit": "above max_unit",
                 "step_size": "not a multiple of step_size"}[reason]
        what = f"{amount:,} {resource_class}" if amount is not None else resource_class
        return f"refuse {what}: {limit}"
    return {
        "not_in_aggregate": "are in none of the member_of aggregates",
        "forbidden_aggregate": "are in a forbidden aggregate (!member_of)",
        "outside_tree": "are outside the in_tree tree",
        "anchor_root_traits": "serve only trees that root_required left out",
        "group_policy": "break group_policy=isolate",
        "same_subtree": "break same_subtree",
        "nested_before_1.29": "take from nested providers (before 1.29)",
    }.get(reason, reason.replace("_", " "))


# The verbs of ``reason_text`` for one item ("1 lacks", "2 lack").
_SINGULAR = {"have": "has", "lack": "lacks", "are": "is", "break": "breaks",
             "serve": "serves", "refuse": "refuses", "take": "takes"}


def _agreed(text: str, count: int) -> str:
    verb, _, rest = text.partition(" ")
    return f"{_SINGULAR.get(verb, verb)} {rest}" if count == 1 else text


def _group_text(group: str | None) -> str:
    return f" in group {group}" if group else ""


def _phrases(stages: Iterable[StageReport]) -> list[_Phrase]:
    """Every reason, counts of stages that count the same things summed
    (the fast engine's batches, or one group's stages), most first."""
    merged: dict[tuple, _Phrase] = {}
    for report in stages:
        for count in report.details:
            unit = _unit(count.stage or report.stage, count.reason)
            group = report.group if report.group is not None else count.group
            key = (unit, group, count.key)
            known = merged.get(key)
            if known is not None:
                closest = count if (count.free or -1) > (known.count.free or -1) else known.count
                count = ReasonCount(
                    count.reason, known.count.count + count.count, count.resource_class,
                    count.trait, closest.requested, closest.free, count.group, count.stage,
                )
            merged[key] = _Phrase(unit, group, count)
    return sorted(merged.values(), key=lambda phrase: -phrase.count.count)


def fitting_trees(result: CandidateResult) -> int:
    """How many trees anchor at least one of the candidates."""
    return len({candidate.anchor for candidate in result.candidates})


def summary(result: CandidateResult, request: CandidateRequest) -> str:
    """One line: how many trees fit and, when none does, the commonest
    reasons, e.g. "0 of 10,000 trees fit: 7,012 lack CUSTOM_PHYSNET_B in
    group 2; 2,950 have too little PCPU (need 8, best free 6)"."""
    explanation = result.explanation
    found = len(result.candidates)
    if not explanation.stages and not found:
        # The finder stopped before the engine ran (first_unknown_name).
        return "0 candidates: an earlier request group matches nothing (a later one names " \
            "an unknown resource class or trait)"
    head = f"{fitting_trees(result):,} of {explanation.trees:,} trees fit"
    if found:
        limited = request.limit is not None and found >= request.limit
        return head + f" ({found:,} candidates{', the limit' if limited else ''})"
    phrases = _phrases(explanation.stages)
    if not phrases:
        return head
    shown = [
        f"{phrase.count.count:,}{' ' + phrase.unit if phrase.unit else ''} "
        f"{_agreed(reason_text(phrase.count), phrase.count.count)}{_group_text(phrase.group)}"
        for phrase in phrases[:SUMMARY_REASONS]
    ]
    more = len(phrases) - SUMMARY_REASONS
    if more > 0:
        shown.append(f"{more} more reason{'s' if more > 1 else ''}")
    return head + ": " + "; ".join(shown)


def explanation_body(result: CandidateResult, request: CandidateRequest) -> dict:
    """The JSON answer of ``GET /stowage/allocation_candidates/explain``::

        {"summary": "0 of 3 trees fit: ...",
         "candidates": 0, "trees": 3, "fitting_trees": 0,
         "groups": [{"group": null | <suffix>,   # null: the request as a whole
                     "stages": [{"stage": "single_provider", "kept": 2,
                                 "excluded": [{"reason": "missing_trait",
                                               "count": 1,
                                               "group": null | <suffix>,
                                               "resource_class": null | <class>,
                                               "trait": null | <trait>,
                                               "requested": null | <int>,
                                               "free": null | <int>}]}]}],
         "nearest_misses": [<miss>, ...]}           # see ``miss_body``

    Groups come in request order, the request as a whole first; a stage the
    fast engine runs per batch of trees is reported once, summed.
    """
    by_group: dict[str | None, list[dict]] = {None: []}
    for group in request.groups:
        by_group.setdefault(group.suffix, [])
    for report in result.explanation.stages:
        by_group.setdefault(report.group, []).append(_stage_body(report))
    return {
        "summary": summary(result, request),
        "candidates": len(result.candidates),
        "trees": result.explanation.trees,
        "fitting_trees": fitting_trees(result),
        "groups": [{"group": group, "stages": stages} for group, stages in by_group.items()],
        "nearest_misses": [miss_body(miss) for miss in result.explanation.nearest_misses],
    }


def _stage_body(report: StageReport) -> dict:
    return {
        "stage": report.stage,
        "kept": report.kept,
        "excluded": [
            {
                "reason": count.reason,
                "count": count.count,
                "resource_class": count.resource_class,
                "trait": count.trait,
                "requested": count.requested,
                "free": count.free,
                "group": count.group,
            }
            for count in report.details
        ],
    }


def miss_body(miss: Exclusion) -> dict:
    """One nearest miss: where (``provider``, a root for a whole tree's
    verdict), which stage and group, and the numbers."""
    return {
        "provider": miss.provider,
        "stage": miss.stage,
        "group": miss.group,
        "reason": miss.reason,
        "resource_class": miss.resource_class,
        "requested": miss.requested,
        "used": miss.used,
        "capacity": miss.capacity,
        "free": miss.room,
        "trait": miss.trait,
    }


def miss_text(miss: Exclusion) -> str:
    """A nearest miss on one terminal line."""
    numbers = f"need {miss.requested:,}" if miss.requested is not None else ""
    if miss.room is not None:
        numbers += f", free {miss.room:,}"
    if miss.used is not None and miss.capacity is not None:
        numbers += f" (used {miss.used:,} of {miss.capacity:,})"
    where = f"{miss.stage}{_group_text(miss.group)}"
    return f"{miss.provider}  {miss.resource_class}: {numbers}  [{miss.reason}, {where}]"


def terminal_text(result: CandidateResult, request: CandidateRequest) -> str:
    """What ``stowage explain`` prints: the summary, then the nearest misses."""
    lines = [summary(result, request)]
    if result.explanation.nearest_misses:
        lines.append("Nearest misses:")
        lines += ["  " + miss_text(miss) for miss in result.explanation.nearest_misses]
    return "\n".join(lines) + "\n"
