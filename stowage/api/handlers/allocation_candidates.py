"""GET /allocation_candidates (1.10+): the handler and its serialiser."""
from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter

import orjson

from stowage.api import explanation, policy
from stowage.api import versions as v
from stowage.api.http import Request, Response
from stowage.api.schemas import allocation_candidates as schemas
from stowage.api.schemas import validate_query
from stowage.api.versions import Version
from stowage.candidates.request import CandidateRequest, EngineOptions, GenerationStrategy
from stowage.candidates.results import (
    AnyCandidate,
    CandidateResult,
    CandidateTemplate,
    ProviderSummary,
    ReplayedCandidate,
)
from stowage.domain import candidates
from stowage.storage.common import utcnow

LOG = logging.getLogger(__name__)


def list_candidates(request: Request, services) -> Response:
    """Every way to satisfy the requested groups, with provider summaries."""
    candidate_request, result = find(request, services)
    if not result.candidates:
        LOG.info("%s: no allocation candidates: %s",
                 request.request_id, explanation.summary(result, candidate_request))
    pieces = body_pieces(result, candidate_request, request.version)
    # A large answer goes out piece by piece as it is written (its whole
    # text would be gigabytes on wide trees); others with their length.
    body: bytes | Iterator[bytes] = pieces
    if len(result.candidates) <= _PIECE:
        body = b"".join(pieces)
    response = Response(body=body)
    if request.version >= v.CACHE_HEADERS:
        response.set_last_modified(utcnow())
    return response


def find(request: Request, services) -> tuple[CandidateRequest, CandidateResult]:
    """The parsed request and the engine's result for it (with its
    explanation); also what ``GET /stowage/allocation_candidates/explain``
    answers from."""
    services.authorize(request, policy.ALLOCATION_CANDIDATES_LIST)
    validate_query(request, schemas.query_schema(request.version))
    candidate_request = schemas.parse_request(request)
    with services.database.read(consistent=True) as connection:
        result = candidates.find_candidates(
            connection,
            candidate_request,
            engine_options(services.conf),
            finder=services.candidate_finder,
        )
    return candidate_request, result


def engine_options(conf) -> EngineOptions:
    """The [placement] options that shape candidate output."""
    return EngineOptions(
        randomize=conf.placement.randomize_allocation_candidates,
        max_candidates=conf.placement.max_allocation_candidates,
        strategy=GenerationStrategy(conf.placement.allocation_candidates_generation_strategy),
    )


def serialize_result(result: CandidateResult, request: CandidateRequest, version: Version) -> bytes:
    """The response body, encoded::

        {"allocation_requests": [<allocation request>, ...],
         "provider_summaries": {
             <uuid>: {"resources": {<class>: {"capacity": 8, "used": 0}, ...},
                      "traits": [...],                     # 1.17+
                      "parent_provider_uuid": <uuid>|null,  # 1.29+
                      "root_provider_uuid": <uuid>}}}       # 1.29+

    Before 1.27 ``resources`` lists only the requested classes.
    """
    return b"".join(body_pieces(result, request, version))


# Candidates, and summaries (their text is cached and short), per piece of
# a body.
_PIECE = 20_000
_SUMMARIES_PIECE = 100_000


def body_pieces(
    result: CandidateResult, request: CandidateRequest, version: Version
) -> Iterator[bytes]:
    """``serialize_result``'s text in pieces of at most ``_PIECE``
    candidates or ``_SUMMARIES_PIECE`` summaries, each made only when asked
    for."""
    if version < v.ALL_INVENTORY_IN_SUMMARIES:
        yield _older_body(result, request, version)
        return
    candidates, summaries = result.candidates, result.summaries
    # Replayed candidates' templates live as long as the answer: their
    # plans are kept for it, by template.
    plans: dict[int, _Plan | None] = {}
    yield b'{"allocation_requests":['
    yield from _pieces(candidates, _PIECE, lambda part: _requests_text(part, version, plans))
    yield b'],"provider_summaries":{'
    yield from _pieces(summaries, _SUMMARIES_PIECE, lambda part: SUMMARY_TEXTS.joined(part, version))
    yield b"}}"


def _pieces(items: Sequence, size: int, text_of: Callable[[Sequence], bytes]) -> Iterator[bytes]:
    """``text_of`` each run of ``size`` items, the runs comma-separated."""
    for start in range(0, len(items), size):
        text = text_of(items[start:start + size])
        yield b"," + text if start else text


def _older_body(result: CandidateResult, request: CandidateRequest, version: Version) -> bytes:
    """The body before 1.27: summaries list only the requested classes."""
    requested = request.resource_classes
    summaries = {
        summary.uuid: serialize_summary(summary, version, requested)
        for summary in result.summaries
    }
    if version < v.ALLOCATIONS_DICT:
        requests: list | orjson.Fragment = [
            serialize_candidate(candidate, version) for candidate in result.candidates
        ]
    else:
        requests = orjson.Fragment(b"[%b]" % _requests_text(result.candidates, version, {}))
    return orjson.dumps({"allocation_requests": requests, "provider_summaries": summaries})


# A template's allocation request as a ``%`` format, and what makes its
# values from a replay's names.
_Plan = tuple[str, Callable[[Sequence[str]], object]]


def _requests_text(
    candidates: Sequence[AnyCandidate], version: Version, plans: dict[int, _Plan | None]
) -> bytes:
    """The allocation requests (1.12+) as JSON text, comma-separated: a replayed
    candidate is its template's text (planned once per template, kept in
    ``plans`` by the template's id, which the answer keeps alive) with its
    own uuids put in; any other is encoded on its own."""
    with_mappings = version >= v.MAPPINGS
    texts: list[str] = []
    # This loop sees every candidate of the answer: consecutive candidates
    # usually share a template, so its plan is looked up once per run.
    last = plan = None
    for candidate in candidates:
        if type(candidate) is ReplayedCandidate:
            template = candidate.template
            if template is not last:
                last = template
                key = id(template)
                if key in plans:
                    plan = plans[key]
                else:
                    plan = plans[key] = _plan(template, with_mappings)
            if plan is not None:
                texts.append(plan[0] % plan[1](candidate.names))
                continue
        texts.append(orjson.dumps(serialize_candidate(candidate, version)).decode())
    return ",".join(texts).encode()


def _plan(template: CandidateTemplate, with_mappings: bool) -> _Plan | None:
    """A template's allocation request as a ``%`` format with a ``%s`` per
    provider uuid, and what makes the values for it from a candidate's
    names (a group's uuids sorted); None if some uuid is not among the
    names."""
    if any(at < 0 for at, _, _ in template.by_position) or any(
        at < 0 for _, uuids in template.mappings for at, _ in uuids
    ):
        return None

    def literal(value) -> str:
        return orjson.dumps(value).decode().replace("%", "%%")

    allocations = ",".join(
        '"%s":' + literal({"resources": amounts}) for _, _, amounts in template.by_position
    )
    text = '{"allocations":{' + allocations + "}"
    mappings = template.mappings if with_mappings else ()
    if mappings:
        mapped = ",".join(
            literal(suffix) + ":[" + ",".join(['"%s"'] * len(uuids)) + "]"
            for suffix, uuids in mappings
        )
        text += ',"mappings":{' + mapped + "}"
    text += "}"
    # One C call picks every value (a lone value comes out bare, which
    # ``%`` takes as well).
    slots = [at for at, _, _ in template.by_position]
    spans = []
    for _, uuids in mappings:
        spans.append((len(slots), len(slots) + len(uuids)))
        slots += [at for at, _ in uuids]
    pick = itemgetter(*slots)
    # Groups spread over several providers list them sorted.
    spread = [span for span in spans if span[1] - span[0] > 1]
    if not spread:
        return text, pick

    def fill(names: Sequence[str]) -> tuple[str, ...]:
        values = list(pick(names))
        for start, end in spread:
            values[start:end] = sorted(values[start:end])
        return tuple(values)

    return text, fill


class _Kept(weakref.ref):
    """A summary's texts, one per body format (from 1.27, and from 1.29),
    on the weak reference that drops them with the summary."""

    __slots__ = ("key", "nested", "plain")

    key: int
    nested: bytes | None
    plain: bytes | None


class _SummaryTexts:
    """Each summary's JSON member (``"<uuid>": {...}``, every class) per
    body format, kept while the summary lives. From 1.27 a summary's JSON
    depends only on the summary and the format, and the read model shares a
    summary among answers until its tree changes: most answers find their
    summaries' text made."""

    def __init__(self) -> None:
        # id(summary) → its texts; an entry goes when its summary does.
        self._kept: dict[int, _Kept] = {}
        self._forget = self._drop

    def __len__(self) -> int:
        return len(self._kept)

    def joined(self, summaries: Sequence[ProviderSummary], version: Version) -> bytes:
        """The members of ``summaries``, comma-separated."""
        get = self._kept.get
        nested = version >= v.NESTED_CANDIDATES
        members = []
        for summary in summaries:
            kept = get(id(summary))
            # The reference check guards against an id reused before the
            # entry of the summary that had it was dropped.
            if kept is not None and kept() is summary:
                member = kept.nested if nested else kept.plain
                if member is not None:
                    members.append(member)
                    continue
            members.append(self._render(summary, version, nested))
        return b",".join(members)

    def _render(self, summary: ProviderSummary, version: Version, nested: bool) -> bytes:
        member = orjson.dumps({summary.uuid: serialize_summary(summary, version, None)})[1:-1]
        key = id(summary)
        kept = self._kept.get(key)
        if kept is None or kept() is not summary:
            # Whole before it is shared: gthread workers answer in threads.
            kept = _Kept(summary, self._forget)
            kept.key, kept.nested, kept.plain = key, None, None
            self._kept[key] = kept
        if nested:
            kept.nested = member
        else:
            kept.plain = member
        return member

    def _drop(self, kept: weakref.ref) -> None:
        key = kept.key  # type: ignore[attr-defined]
        if self._kept.get(key) is kept:
            del self._kept[key]


SUMMARY_TEXTS = _SummaryTexts()


def serialize_summary(
    summary: ProviderSummary, version: Version, only: set[str] | None
) -> dict:
    """One provider summary; ``only`` the requested classes before 1.27."""
    body: dict = {
        "resources": {
            resource.resource_class: {"capacity": resource.capacity, "used": resource.used}
            for resource in summary.resources
            if only is None or resource.resource_class in only
        }
    }
    if version >= v.CANDIDATES_REQUIRED:
        body["traits"] = list(summary.traits)
    if version >= v.NESTED_CANDIDATES:
        body["parent_provider_uuid"] = summary.parent_uuid
        body["root_provider_uuid"] = summary.root_uuid
    return body


def serialize_candidate(candidate: AnyCandidate, version: Version) -> dict:
    """One allocation request, ready to PUT to /allocations/{consumer}.

    1.12+::

        {"allocations": {<uuid>: {"resources": {<class>: <amount>}}},
         "mappings": {<suffix>: [<uuid>, ...]}}            # 1.34+

    1.10 and 1.11::

        {"allocations": [{"resource_provider": {"uuid": <uuid>},
                          "resources": {<class>: <amount>}}]}
    """
    by_provider = candidate.by_provider()
    if version < v.ALLOCATIONS_DICT:
        return {
            "allocations": [
                {"resource_provider": {"uuid": uuid}, "resources": resources}
                for uuid, resources in sorted(by_provider.items())
            ]
        }
    # The amounts may be shared with other candidates' bodies: read only.
    allocations = {uuid: {"resources": resources} for uuid, resources in by_provider.items()}
    if version < v.MAPPINGS:
        return {"allocations": allocations}
    # The mapped uuids are tuples, which the JSON encoder writes as lists.
    return {"allocations": allocations, "mappings": candidate.mapped()}
