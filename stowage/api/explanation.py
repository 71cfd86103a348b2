"""Why nothing fits: an engine's ``Explanation`` rendered for people.

The engine counts each tree it ruled out once, under the first reason that
ruled it out (``Explanation.excluded_trees``), counts what each stage
excluded, per reason and class or trait (``StageReport.details``), and
keeps the nearest misses; this module turns those counts into one summary
line (of trees), the JSON answer of
``GET /stowage/allocation_candidates/explain`` and the lines
``stowage explain`` prints. Nothing here looks at providers one by one: the
cost is in the number of reasons, not the size of the cloud.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from stowage.candidates.request import CandidateRequest
from stowage.candidates.results import CandidateResult, Exclusion, ReasonCount, StageReport

# How many reasons the summary line names; the answer lists them all.
SUMMARY_REASONS = 5


def _traits(trait: str | None) -> str:
    """``A|B`` (any of) as "A or B"."""
    return " or ".join((trait or "?").split("|"))


def _numbers(count: ReasonCount) -> str:
    numbers = [] if count.requested is None else [f"need {count.requested:,}"]
    if count.free is not None:
        numbers.append(f"best free {max(count.free, 0):,}")
    return f" ({', '.join(numbers)})" if numbers else ""


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
        return f"have too little {resource_class or 'room'}{_numbers(count)}"
    if reason == "no_room_in_sharing":
        return (f"have no {resource_class} of their own and too little in the sharing "
                f"providers of their aggregates{_numbers(count)}")
    if reason == "no_sharing_provider":
        return (f"have no {resource_class} and no sharing provider of it is in their "
                "aggregates")
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
    verb = _SINGULAR.get(verb, verb) if count == 1 else verb
    if count == 1:
        rest = rest.replace(" of their own", " of its own").replace(" their ", " its ")
    return f"{verb} {rest}"


def _group_text(group: str | None) -> str:
    return f" in group {group}" if group else ""


def tree_reason_text(count: ReasonCount) -> str:
    """One count of ``Explanation.excluded_trees`` as the summary says it:
    "7,012 lack CUSTOM_PHYSNET_B in group 2"."""
    return (f"{count.count:,} {_agreed(reason_text(count), count.count)}"
            f"{_group_text(count.group)}")


# Reasons that read alike in the summary: a tree that has too little of a
# class is one, whether the root filter or a group's providers found it.
_ALIKE = {"no_room_in_tree": "insufficient_capacity", "no_inventory_in_tree": "no_inventory",
          "class_unavailable": "no_inventory"}


def _phrases(counts: Iterable[ReasonCount]) -> list[ReasonCount]:
    """The tree counts, those that read alike summed (keeping the closest
    tree's numbers), most trees first."""
    merged: dict[tuple, ReasonCount] = {}
    for count in counts:
        key = (_ALIKE.get(count.reason, count.reason), count.resource_class, count.trait,
               count.group or None)
        known = merged.get(key)
        if known is not None:
            closest = count if _closer(count, known) else known
            count = replace(closest, count=known.count + count.count)
        merged[key] = count
    return sorted(merged.values(), key=lambda count: -count.count)


def _closer(count: ReasonCount, than: ReasonCount) -> bool:
    return (count.free if count.free is not None else -1) > (
        than.free if than.free is not None else -1
    )


def fitting_trees(result: CandidateResult) -> int:
    """How many trees anchor at least one of the candidates."""
    return len({candidate.anchor for candidate in result.candidates})


def summary(result: CandidateResult, request: CandidateRequest) -> str:
    """One line: how many trees fit and, when none does, how many trees
    each reason ruled out, each tree under the first reason that ruled it
    out (so the numbers add up to at most the trees), e.g. "0 of 10,000
    trees fit: 7,012 lack CUSTOM_PHYSNET_B in group 2; 2,950 have too
    little PCPU (need 8, best free 6)"."""
    explanation = result.explanation
    found = len(result.candidates)
    if not explanation.stages and not found:
        # The finder stopped before the engine ran (first_unknown_name).
        return "0 candidates: an earlier request group matches nothing (a later one names " \
            "an unknown resource class or trait)"
    head = f"{fitting_trees(result):,} of {explanation.trees:,} trees fit"
    if found:
        limited = request.limit is not None and found >= request.limit
        plural = "s" if found != 1 else ""
        return head + f" ({found:,} candidate{plural}{', the limit' if limited else ''})"
    phrases = _phrases(explanation.excluded_trees)
    if not phrases:
        return head
    shown = [tree_reason_text(phrase) for phrase in phrases[:SUMMARY_REASONS]]
    more = phrases[SUMMARY_REASONS:]
    if more:
        trees = sum(phrase.count for phrase in more)
        shown.append(f"{trees:,} for {len(more)} more reason{'s' if len(more) > 1 else ''}")
    return head + ": " + "; ".join(shown)


def explanation_body(result: CandidateResult, request: CandidateRequest) -> dict:
    """The JSON answer of ``GET /stowage/allocation_candidates/explain``::

        {"summary": "0 of 3 trees fit: ...",
         "candidates": 0, "trees": 3, "fitting_trees": 0,
         "excluded_trees": {                 # each tree once: the counts are trees
             "unit": "trees",
             "examined": 3,                  # fitting or ruled out (a limit may stop early)
             "excluded": 3,
             "reasons": [{"stage": "root_traits" | "tree_room" | "groups" | "combine",
                          "group": null | <suffix>,
                          "reason": "missing_trait", "count": 2,
                          "resource_class": null | <class>, "trait": null | <trait>,
                          "requested": null | <int>, "free": null | <int>,
                          "text": "2 lack CUSTOM_X in group 1"}]},
         "groups": [{"group": null | <suffix>,   # null: the request as a whole
                     "stages": [{"stage": "single_provider",
                                 "unit": "providers",   # what this stage counts
                                 "kept": 2,
                                 "excluded": [{"reason": "missing_trait",
                                               "count": 1,
                                               "group": null | <suffix>,
                                               "resource_class": null | <class>,
                                               "trait": null | <trait>,
                                               "requested": null | <int>,
                                               "free": null | <int>}]}]}],
         "nearest_misses": [<miss>, ...]}           # see ``miss_body``

    ``excluded_trees`` counts each tree the engine ruled out once, under the
    first step of ``stowage.candidates.attribution``'s order that ruled it
    out (both engines count alike). The stages under ``groups`` are the
    engine's own, each counting in its own unit (trees, providers, provider
    choices, combinations), so one tree may be counted by several stages.
    Groups come in request order, the request as a whole first; a stage the
    fast engine runs per batch of trees is reported once, summed.
    """
    by_group: dict[str | None, list[dict]] = {None: []}
    for group in request.groups:
        by_group.setdefault(group.suffix, [])
    for report in result.explanation.stages:
        by_group.setdefault(report.group, []).append(_stage_body(report))
    excluded = result.explanation.excluded_trees
    return {
        "summary": summary(result, request),
        "candidates": len(result.candidates),
        "trees": result.explanation.trees,
        "fitting_trees": fitting_trees(result),
        "excluded_trees": {
            "unit": "trees",
            "examined": result.explanation.examined_trees,
            "excluded": sum(count.count for count in excluded),
            "reasons": [_tree_reason_body(count) for count in excluded],
        },
        "groups": [{"group": group, "stages": stages} for group, stages in by_group.items()],
        "nearest_misses": [miss_body(miss) for miss in result.explanation.nearest_misses],
    }


def _tree_reason_body(count: ReasonCount) -> dict:
    return {
        "stage": count.stage,
        "group": count.group,
        "reason": count.reason,
        "count": count.count,
        "resource_class": count.resource_class,
        "trait": count.trait,
        "requested": count.requested,
        "free": count.free,
        "text": tree_reason_text(count),
    }


def _stage_body(report: StageReport) -> dict:
    return {
        "stage": report.stage,
        "unit": report.unit,
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
    """What ``stowage explain`` prints: the summary, then the nearest
    misses, then every reason when the summary could not name them all."""
    lines = [summary(result, request)]
    if result.explanation.nearest_misses:
        lines.append("Nearest misses:")
        lines += ["  " + miss_text(miss) for miss in result.explanation.nearest_misses]
    phrases = _phrases(result.explanation.excluded_trees)
    if not result.candidates and len(phrases) > SUMMARY_REASONS:
        lines.append("Trees ruled out, each under its first reason:")
        lines += ["  " + tree_reason_text(phrase) for phrase in phrases]
    return "\n".join(lines) + "\n"
