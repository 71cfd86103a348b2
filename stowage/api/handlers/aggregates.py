"""/resource_providers/{uuid}/aggregates (microversion 1.1+).

From 1.19 the answers carry the provider generation and PUT must send it.
From 1.15 answers carry caching headers; last-modified is "now", since
membership changes are not timestamped in a way worth exposing (as upstream).
"""
from __future__ import annotations

from stowage.api import policy
from stowage.api.http import Request, Response
from stowage.api.schemas.aggregates import aggregates_update
from stowage.api.versions import AGGREGATE_GENERATION
from stowage.domain import aggregates as aggregate_domain


def serialize_aggregates(request: Request, found: aggregate_domain.ProviderAggregates) -> dict:
    """``{"aggregates": ["<uuid>", ...], "resource_provider_generation": 2}``

    ``resource_provider_generation`` only from microversion 1.19.
    """
    body: dict = {"aggregates": found.aggregates}
    if request.version >= AGGREGATE_GENERATION:
        body["resource_provider_generation"] = found.generation
    return body


def _aggregates_response(request: Request, found: aggregate_domain.ProviderAggregates) -> Response:
    return Response(body=serialize_aggregates(request, found)).with_cache_headers(request.version)


def list_aggregates(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/aggregates"""
    services.authorize(request, policy.AGGREGATES_LIST)
    with services.database.read() as connection:
        found = aggregate_domain.provider_aggregates(connection, request.route_args["uuid"])
    return _aggregates_response(request, found)


def set_aggregates(request: Request, services) -> Response:
    """PUT /resource_providers/{uuid}/aggregates

    Body: a list of aggregate uuids (1.1 - 1.18), or
    ``{"aggregates": [...], "resource_provider_generation": N}`` (1.19+).
    An unknown provider is a 404 even when the body is invalid, as upstream.
    """
    services.authorize(request, policy.AGGREGATES_UPDATE)
    with services.database.write() as connection:
        provider = aggregate_domain.provider_for_update(connection, request.route_args["uuid"])
        update = aggregates_update(request)
        found = aggregate_domain.replace_provider_aggregates(
            connection, provider, update.aggregates, update.generation
        )
    return _aggregates_response(request, found)
