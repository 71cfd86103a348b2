"""GET /allocation_candidates (1.10+): the handler and its serialiser."""
from __future__ import annotations

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
    # From 1.27 a summary's body depends only on the summary and the format,
    # so the body made for one answer serves the next ones too.
    form = (version >= v.CANDIDATES_REQUIRED, version >= v.NESTED_CANDIDATES)
    if every_class:
        # A body is never empty, so ``or`` renders only what is missing.
        summaries = {
            summary.uuid: summary.rendered.get(form) or _render(summary, form, version)
            for summary in result.summaries
        }
    else:
        summaries = {
            summary.uuid: serialize_summary(summary, version, requested)
            for summary in result.summaries
        }
    return {
        "allocation_requests": [
            serialize_candidate(candidate, version) for candidate in result.candidates
        ],
        "provider_summaries": summaries,
    }


def _render(summary: ProviderSummary, form: tuple, version: Version) -> dict:
    """``summary``'s body with every class, kept on it for later answers."""
    body = summary.rendered[form] = serialize_summary(summary, version, None)
    return body


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
    if version < v.ALLOCATIONS_DICT:
        by_provider: dict[str, dict[str, int]] = {}
        for provider, resource_class, amount in candidate.allocations:
            by_provider.setdefault(provider, {})[resource_class] = amount
        return {
            "allocations": [
                {"resource_provider": {"uuid": uuid}, "resources": resources}
                for uuid, resources in by_provider.items()
            ]
        }
    # One pass: this runs once per candidate, tens of thousands of times
    # for a big answer.
    allocations: dict[str, dict] = {}
    for provider, resource_class, amount in candidate.allocations:
        entry = allocations.get(provider)
        if entry is None:
            allocations[provider] = {"resources": {resource_class: amount}}
        else:
            entry["resources"][resource_class] = amount
    if version < v.MAPPINGS:
        return {"allocations": allocations}
    # The mapped uuids are tuples, which the JSON encoder writes as lists.
    return {"allocations": allocations, "mappings": dict(candidate.mappings)}
