"""Normalise two answers to the same step and list where they differ.

Compared: the status; the headers clients read (``COMPARED_HEADERS``); the
body, as JSON when it parses (so key order and whitespace do not count) and
as text otherwise. Error bodies are compared whole: status, title, detail,
code.

The normalisation is short and applies to both answers alike:

- request ids (``req-<uuid>``) anywhere in a body become ``req-<id>``;
- timestamps in a body (upstream's SQL errors quote their parameters)
  become ``<timestamp>``, and ``last-modified`` counts for its presence
  only: both are clocks;
- ``location`` and link ``href`` values lose ``scheme://host:port``;
- uuids a service picked itself (providers created without one) become the
  placeholder the step named them by, or ``<generated>`` when the creation
  failed and the uuid only shows in the error detail.

List order is compared as it comes, except for the lists in
``ORDER_INSENSITIVE``, sorted in both answers before comparing. A list is
there only when upstream's own order is shown to be an accident: upstream
compared with itself under another ``PYTHONHASHSEED`` (``python -m
tests.differential --against upstream``) orders it differently, because it
comes from iterating a Python set (standard traits are inserted from a set,
so even their database order follows the hash seed).

``limit`` on allocation candidates keeps the first N of that accidental
order, so which N is no contract either: ``limited_reference`` checks that
the candidate service's N are among upstream's unlimited candidates and that
its provider summaries are upstream's for the trees of those N, then compares
against that.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from tests.differential.wire import Answer

COMPARED_HEADERS = ("openstack-api-version", "vary", "last-modified", "cache-control",
                    "location", "content-type", "allow")
REQUEST_ID = re.compile(
    r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?"
                       r"|datetime\.datetime\([\d, ]+\)")
HOST = re.compile(r"^[a-z]+://[^/]+")
UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                  r"[0-9a-fA-F]{12}$")
ABSENT = "<absent>"
# Route: globs over JSON paths (list items and keys as "*") of lists whose
# order is not compared; each shown to follow PYTHONHASHSEED upstream.
ORDER_INSENSITIVE: dict[str, tuple[str, ...]] = {
    "/allocation_candidates": (
        "/allocation_requests",  # candidates are merged from sets of providers
        "/allocation_requests/*/allocations",  # the list format before 1.12
        "/allocation_requests/*/mappings/*",
        "/provider_summaries/*/traits",  # trait ids follow the set-ordered sync
    ),
    "/traits": ("/traits",),
    "/resource_providers/{uuid}/traits": ("/traits",),
    # No ORDER BY in upstream's queries: PostgreSQL returns rows in heap
    # order, which updates change (seen differing between two upstreams).
    "/resource_providers": ("/resource_providers",),
    "/resource_providers/{uuid}/aggregates": ("/aggregates",),
}


@dataclass(frozen=True)
class Normal:
    """An answer after normalisation: what is compared."""

    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or text, or None when empty
    is_json: bool


@dataclass(frozen=True)
class Aspect:
    """One place where the answers differ: ``where`` is "status", "header
    NAME" or "body" plus a JSON path."""

    where: str
    reference: Any
    candidate: Any

    @property
    def general(self) -> str:
        """``where`` with list indices and uuid keys generalised, for grouping."""
        parts = []
        for part in self.where.split("/"):
            if part.isdigit():
                parts.append("*")
            elif UUID.match(part):
                parts.append("{uuid}")
            else:
                parts.append(part)
        return "/".join(parts)


def normalise(answer: Answer, generated: dict[str, str]) -> Normal:
    """``answer`` normalised; ``generated`` maps uuids the service picked to placeholders."""
    headers = {}
    for name in COMPARED_HEADERS:
        value = answer.headers.get(name)
        if value is None:
            continue
        if name == "last-modified":
            value = "<present>"
        elif name == "location":
            value = _uuids(HOST.sub("", value), generated)
        headers[name] = value
    if not answer.body:
        return Normal(answer.status, headers, None, False)
    try:
        parsed = json.loads(answer.body)
    except ValueError:
        text = _clocks(answer.body.decode("utf-8", "backslashreplace"))
        return Normal(answer.status, headers, _uuids(text, generated), False)
    return Normal(answer.status, headers, _json(parsed, generated), True)


def _clocks(text: str) -> str:
    return TIMESTAMP.sub("<timestamp>", REQUEST_ID.sub("req-<id>", text))


def _uuids(text: str, generated: dict[str, str]) -> str:
    for real, stand_in in generated.items():
        text = text.replace(real, stand_in)
    return text


def _json(value: Any, generated: dict[str, str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {_uuids(name, generated): _json(item, generated, name)
                for name, item in value.items()}
    if isinstance(value, list):
        return [_json(item, generated) for item in value]
    if isinstance(value, str):
        value = _clocks(value)
        if key == "href":
            value = HOST.sub("", value)
        return _uuids(value, generated)
    return value


def canonical(route: str, value: Any, path: str = "") -> Any:
    """``value`` with the lists ``ORDER_INSENSITIVE`` names for ``route`` sorted."""
    if isinstance(value, dict):
        return {key: canonical(route, item, f"{path}/{key}") for key, item in value.items()}
    if isinstance(value, list):
        items = [canonical(route, item, f"{path}/*") for item in value]
        if any(fnmatchcase(path, glob) for glob in ORDER_INSENSITIVE.get(route, ())):
            items.sort(key=_sort_key)
        return items
    return value


def differences(route: str, reference: Normal, candidate: Normal) -> list[Aspect]:
    """Every aspect in which ``candidate`` differs from ``reference``."""
    if reference.is_json and candidate.is_json:
        reference = replace(reference, body=canonical(route, reference.body))
        candidate = replace(candidate, body=canonical(route, candidate.body))
    found: list[Aspect] = []
    if reference.status != candidate.status:
        found.append(Aspect("status", reference.status, candidate.status))
    for name in COMPARED_HEADERS:
        ours, theirs = reference.headers.get(name, ABSENT), candidate.headers.get(name, ABSENT)
        if ours != theirs:
            found.append(Aspect(f"header {name}", ours, theirs))
    if reference.is_json and candidate.is_json:
        _diff_json(route, "body", reference.body, candidate.body, found)
    elif reference.body != candidate.body:
        found.append(Aspect("body", reference.body, candidate.body))
    return found


def _diff_json(route: str, path: str, ours: Any, theirs: Any, found: list[Aspect]) -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in list(ours) + [key for key in theirs if key not in ours]:
            _diff_json(route, f"{path}/{key}", ours.get(key, ABSENT), theirs.get(key, ABSENT),
                       found)
        return
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            found.append(Aspect(path, ours, theirs))
            return
        if ours != theirs and sorted(map(_sort_key, ours)) == sorted(map(_sort_key, theirs)):
            # The same items in another order: one aspect for the whole list
            # says more than item-by-item noise.
            found.append(Aspect(f"{path} (order)", ours, theirs))
            return
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=False)):
            _diff_json(route, f"{path}/{index}", mine, other, found)
        return
    if ours != theirs or type(ours) is not type(theirs):
        found.append(Aspect(path, ours, theirs))


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def limited_reference(reference: Normal, candidate: Normal, unlimited: Normal,
                      roots: dict[str, str]) -> Normal:
    """What ``candidate`` must answer to a ``limit`` that cut upstream's candidates.

    Upstream keeps the first ``limit`` candidates of its accidental order and
    the summaries of every provider in their trees (``limit_results``). Any
    ``limit`` of its candidates would do as well: when each of the
    candidate's is one of upstream's unlimited ones and there are as many as
    upstream returned, the reference becomes those, with upstream's summaries
    for their trees. Otherwise upstream's own answer stays the reference.
    ``roots`` maps provider uuids to their root's.
    """
    route = "/allocation_candidates"
    chosen = canonical(route, candidate.body.get("allocation_requests"), "/allocation_requests")
    possible = canonical(route, unlimited.body.get("allocation_requests"), "/allocation_requests")
    limited = reference.body.get("allocation_requests")
    if not isinstance(chosen, list) or not isinstance(possible, list) or not isinstance(
            limited, list) or len(chosen) != len(limited):
        return reference
    known = {_sort_key(request) for request in possible}
    if not all(_sort_key(request) in known for request in chosen):
        return reference
    used_roots = {roots.get(provider, provider) for request in chosen
                  for provider in _providers_of(request)}
    summaries = unlimited.body.get("provider_summaries", {})
    kept = {provider: summary for provider, summary in summaries.items()
            if roots.get(provider, provider) in used_roots}
    return replace(reference, body={**reference.body, "allocation_requests": chosen,
                                    "provider_summaries": kept})


def _providers_of(request: Any) -> list[str]:
    allocations = request.get("allocations") if isinstance(request, dict) else None
    if isinstance(allocations, dict):
        return list(allocations)
    if isinstance(allocations, list):  # before 1.12
        return [item["resource_provider"]["uuid"] for item in allocations
                if isinstance(item, dict) and "resource_provider" in item]
    return []
