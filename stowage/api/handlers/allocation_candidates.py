"""GET /allocation_candidates (1.10+): the handler and its serialiser."""
from __future__ import annotations

import orjson

from stowage.api import policy
from stowage.api import versions as v
from stowage.api.http import Request, Response
from stowage.api.schemas import allocation_candidates as schemas
from stowage.api.schemas import validate_query
from stowage.api.versions import Version
from stowage.candidates.request import CandidateRequest, EngineOptions, GenerationStrategy
from stowage.candidates.results import Candidate, CandidateResult, ProviderSummary
from stowage.domain import candidates
from stowage.storage.common import utcnow


def list_candidates(request: Request, services) -> Response:
    """Every way to satisfy the requested groups, with provider summaries."""
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
    response = Response(body=serialize_result(result, candidate_request, request.version))
    if request.version >= v.CACHE_HEADERS:
        response.set_last_modified(utcnow())
    return response


def engine_options(conf) -> EngineOptions:
    """The [placement] options that shape candidate output."""
    return EngineOptions(
        randomize=conf.placement.randomize_allocation_candidates,
        max_candidates=conf.placement.max_allocation_candidates,
        strategy=GenerationStrategy(conf.placement.allocation_candidates_generation_strategy),
    )


def serialize_result(result: CandidateResult, request: CandidateRequest, version: Version) -> dict:
    """The response body::

        {"allocation_requests": [<allocation request>, ...],
         "provider_summaries": {
             <uuid>: {"resources": {<class>: {"capacity": 8, "used": 0}, ...},
                      "traits": [...],                     # 1.17+
                      "parent_provider_uuid": <uuid>|null,  # 1.29+
                      "root_provider_uuid": <uuid>}}}       # 1.29+

    Before 1.27 ``resources`` lists only the requested classes.
    """
    requested = request.resource_classes
    every_class = version >= v.ALL_INVENTORY_IN_SUMMARIES
    # From 1.27 a summary's JSON depends only on the summary and the format,
    # so the bytes made for one answer serve the next ones too, and the
    # object is joined from them (a summary is listed once: one per provider).
    form = (version >= v.CANDIDATES_REQUIRED, version >= v.NESTED_CANDIDATES)
    summaries: dict | orjson.Fragment
    if every_class:
        # A member is never empty, so ``or`` renders only what is missing.
        summaries = orjson.Fragment(b"{%b}" % b",".join([
            summary.rendered.get(form) or _render(summary, form, version)
            for summary in result.summaries
        ]))
    else:
        summaries = {
            summary.uuid: serialize_summary(summary, version, requested)
            for summary in result.summaries
        }
    if version < v.ALLOCATIONS_DICT:
        requests: list | orjson.Fragment = [
            serialize_candidate(candidate, version) for candidate in result.candidates
        ]
    else:
        # Text joined once: a replayed candidate is its template's text with
        # its own uuids put in; any other is encoded on its own.
        requests = orjson.Fragment(("[%s]" % ",".join([
            _from_template(candidate, version) if candidate.template is not None
            else orjson.dumps(serialize_candidate(candidate, version)).decode()
            for candidate in result.candidates
        ])).encode())
    return {"allocation_requests": requests, "provider_summaries": summaries}


def _from_template(candidate: Candidate, version: Version) -> str:
    """``candidate``'s allocation request as JSON text, from its template's
    text (made once per template and format) and its names."""
    template = candidate.template
    with_mappings = version >= v.MAPPINGS
    plan = template.rendered.get(with_mappings, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = template.rendered[with_mappings] = _plan(template, with_mappings)
    if plan is None:
        return orjson.dumps(serialize_candidate(candidate, version)).decode()
    text, provider_slots, mapping_slots = plan
    names = candidate.names
    values = [names[at] for at in provider_slots]
    for slots in mapping_slots:
        if len(slots) == 1:
            values.append(names[slots[0]])
        else:
            values.append('","'.join(sorted([names[at] for at in slots])))
    return text % tuple(values)


_UNPLANNED = object()


def _plan(template, with_mappings: bool) -> tuple[str, tuple[int, ...], tuple] | None:
    """A template's allocation request as a ``%`` format with a ``%s`` per
    provider uuid (one per mapped group, filled with its uuids joined and
    sorted), and the positions in the candidate's names that fill them;
    None if some uuid is not among the names."""
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
    if with_mappings:
        mapped = ",".join(
            literal(suffix) + ':["%s"]' for suffix, _ in template.mappings
        )
        text += ',"mappings":{' + mapped + "}"
    mapping_slots = tuple(
        tuple(at for at, _ in uuids) for _, uuids in template.mappings
    ) if with_mappings else ()
    return text + "}", tuple(at for at, _, _ in template.by_position), mapping_slots


def _render(summary: ProviderSummary, form: tuple, version: Version) -> bytes:
    """``summary`` as a JSON object member (``"<uuid>": {...}``) with every
    class, kept on it for later answers."""
    member = orjson.dumps({summary.uuid: serialize_summary(summary, version, None)})[1:-1]
    summary.rendered[form] = member
    return member


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


def serialize_candidate(candidate: Candidate, version: Version) -> dict:
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
