"""Checks that prove a difference is upstream's bug, named from the allow-list.

An allow-list row whose difference column reads ``check:<name>`` allows a
difference only when the check named here holds for the whole exchange,
which is narrower than a glob over the places that differ.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.differential.compare import canonical
from tests.differential.runner import Exchange

_RESOURCES_KEY = re.compile(r"^resources[A-Za-z0-9_-]*$")


def requested_totals(target: str) -> dict[str, int]:
    """What all groups of a candidates query ask for together, by class."""
    totals: dict[str, int] = defaultdict(int)
    for key, value in parse_qsl(urlsplit(target).query, keep_blank_values=True):
        if _RESOURCES_KEY.match(key):
            for item in value.split(","):
                name, _sep, amount = item.partition(":")
                totals[name] += int(amount)
    return dict(totals)


def _allocated_totals(allocation_request: dict[str, Any]) -> dict[str, int]:
    allocations = allocation_request["allocations"]
    if isinstance(allocations, list):  # before 1.12
        entries = [entry["resources"] for entry in allocations]
    else:
        entries = [entry["resources"] for entry in allocations.values()]
    totals: dict[str, int] = defaultdict(int)
    for resources in entries:
        for name, amount in resources.items():
            totals[name] += amount
    return dict(totals)


def classes_in_several_groups(target: str) -> set[str]:
    """The classes that more than one group of a candidates query asks for."""
    seen: dict[str, int] = defaultdict(int)
    for key, value in parse_qsl(urlsplit(target).query, keep_blank_values=True):
        if _RESOURCES_KEY.match(key):
            for name in {item.partition(":")[0] for item in value.split(",")}:
                seen[name] += 1
    return {name for name, groups in seen.items() if groups > 1}


def upstream_miscounts_amounts(exchange: Exchange) -> bool:
    """Upstream's candidates allocate more than the groups ask for, or are
    lost, where Stowage's are exact.

    Upstream 16.0.0 adds a group's amount into an allocation object that
    several merged candidates share, so where two groups take one class
    from one provider some candidates claim more than requested and, once
    corrupted, some collapse into one or fail its capacity check and vanish
    (e.g. ``resources=DISK_GB:1&resources_A=DISK_GB:2`` loses the candidate
    that takes the unsuffixed group from a sharing provider). Holds only when
    a class is asked for by several groups, every one of Stowage's
    candidates allocates exactly what the query asks for, upstream has an
    inexact candidate or fewer candidates, every one of upstream's exact
    candidates is also Stowage's, and the summaries agree except for trees
    only Stowage's extra candidates take from.
    """
    target = exchange.requests[0].target
    if not classes_in_several_groups(target):
        return False
    reference, candidate = (
        canonical("/allocation_candidates", _json(answer.body)) for answer in exchange.answers
    )
    if not (isinstance(reference, dict) and isinstance(candidate, dict)):
        return False
    wanted = requested_totals(target)
    ours, theirs = candidate.get("allocation_requests"), reference.get("allocation_requests")
    if not isinstance(ours, list) or not isinstance(theirs, list) or len(ours) < len(theirs):
        return False
    if any(_allocated_totals(request) != wanted for request in ours):
        return False
    sound = [request for request in theirs if _allocated_totals(request) == wanted]
    if len(sound) == len(theirs) == len(ours):
        return False
    if any(request not in ours for request in sound):
        return False
    return _summaries_agree_but_for(
        reference.get("provider_summaries"), candidate.get("provider_summaries"),
        [request for request in ours if request not in sound])


def _summaries_agree_but_for(theirs: Any, ours: Any, extra: list[dict[str, Any]]) -> bool:
    """Upstream's summaries are Stowage's, but for the trees that only the
    ``extra`` candidates take from (told apart by ``root_provider_uuid``,
    1.29+; before that the summaries must be equal)."""
    if theirs == ours:
        return True
    if not isinstance(theirs, dict) or not isinstance(ours, dict):
        return False
    if any(ours.get(provider) != summary for provider, summary in theirs.items()):
        return False
    extra_roots = {
        ours.get(provider, {}).get("root_provider_uuid")
        for request in extra for provider in request.get("allocations", {})
    }
    return all(
        isinstance(summary, dict) and summary.get("root_provider_uuid") in extra_roots
        for provider, summary in ours.items() if provider not in theirs
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


CHECKS: dict[str, Callable[[Exchange], bool]] = {
    "upstream-miscounts-amounts": upstream_miscounts_amounts,
}
