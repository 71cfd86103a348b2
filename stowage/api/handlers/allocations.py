"""/allocations/{consumer}, POST /allocations (1.13) and provider allocations.

Caching headers (last-modified, cache-control) from 1.15 on the GETs;
last-modified is the newest allocation's timestamp, or now.
"""
from __future__ import annotations

from collections import defaultdict

from stowage.api import policy
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas import allocations as schemas
from stowage.api.schemas import is_uuid
from stowage.api.versions import (
    ALLOCATIONS_DICT,
    CONSUMER_GENERATION,
    CONSUMER_TYPES,
)
from stowage.domain import allocations as allocation_domain

# What GET shows for consumers written before consumer types existed (1.38).
UNKNOWN_CONSUMER_TYPE = "unknown"


def incomplete_owner(services) -> schemas.IncompleteOwner:
    placement = services.conf.placement
    return schemas.IncompleteOwner(
        placement.incomplete_consumer_project_id, placement.incomplete_consumer_user_id
    )


def _with_cache_headers(request: Request, body: dict, last_modified) -> Response:
    return Response(body=body).with_cache_headers(request.version, [last_modified])


def serialize_consumer_allocations(
    request: Request, holdings: allocation_domain.ConsumerHoldings
) -> dict:
    """Allocations of one consumer, keyed by provider::

        {"allocations": {RP_UUID: {"generation": 3, "resources": {"VCPU": 2}}},
         # when the consumer holds anything, from 1.12:
         "project_id": P, "user_id": U,
         "consumer_generation": 1,      # from 1.28
         "consumer_type": "INSTANCE"}   # from 1.38; "unknown" if never set
    """
    by_provider: dict[str, dict] = {}
    for row in holdings.allocations:
        entry = by_provider.setdefault(
            row.provider_uuid, {"generation": row.provider_generation, "resources": {}}
        )
        entry["resources"][row.resource_class] = row.used
    body: dict = {"allocations": by_provider}
    consumer = holdings.consumer
    if consumer is not None and holdings.allocations and request.version >= ALLOCATIONS_DICT:
        body["project_id"] = consumer.project_external_id
        body["user_id"] = consumer.user_external_id
        if request.version >= CONSUMER_GENERATION:
            body["consumer_generation"] = consumer.generation
        if request.version >= CONSUMER_TYPES:
            body["consumer_type"] = consumer.consumer_type or UNKNOWN_CONSUMER_TYPE
    return body


def serialize_provider_allocations(
    request: Request, holdings: allocation_domain.ProviderHoldings
) -> dict:
    """Allocations against one provider, keyed by consumer::

        {"resource_provider_generation": 5,
         "allocations": {CONSUMER: {"resources": {"VCPU": 2},
                                    "consumer_generation": 1}}}  # generation from 1.28
    """
    by_consumer: dict[str, dict] = defaultdict(lambda: {"resources": {}})
    for row in holdings.allocations:
        entry = by_consumer[row.consumer_uuid]
        entry["resources"][row.resource_class] = row.used
        if request.version >= CONSUMER_GENERATION:
            entry["consumer_generation"] = row.consumer_generation
    return {
        "allocations": dict(by_consumer),
        "resource_provider_generation": holdings.provider.generation,
    }


def _path_consumer(request: Request) -> str:
    """The consumer of the path, dashed when it is a uuid (any uuid spelling is accepted)."""
    text = request.route_args["consumer_uuid"]
    return schemas.consumer_uuid(text) if is_uuid(text) else text


def show_allocations(request: Request, services) -> Response:
    """GET /allocations/{consumer}: an unknown consumer holds nothing (200, not 404)."""
    services.authorize(request, policy.ALLOCATIONS_LIST)
    # One snapshot: the allocations and their consumer are two reads, and a
    # delete between them would show allocations without their consumer.
    with services.database.read(consistent=True) as connection:
        holdings = allocation_domain.consumer_holdings(connection, _path_consumer(request))
    body = serialize_consumer_allocations(request, holdings)
    return _with_cache_headers(request, body, holdings.last_modified)


def list_provider_allocations(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/allocations"""
    services.authorize(request, policy.PROVIDER_ALLOCATIONS_LIST)
    # One snapshot for the allocations, their consumers and the generation.
    with services.database.read(consistent=True) as connection:
        holdings = allocation_domain.provider_holdings(connection, request.route_args["uuid"])
    body = serialize_provider_allocations(request, holdings)
    return _with_cache_headers(request, body, holdings.last_modified)


def put_allocations(request: Request, services) -> Response:
    """PUT /allocations/{consumer}: replace everything the consumer holds (204)."""
    services.authorize(request, policy.ALLOCATIONS_UPDATE)
    consumer = schemas.consumer_uuid(request.route_args["consumer_uuid"])
    wanted = schemas.put_request(request, consumer, incomplete_owner(services))
    allocation_domain.replace_allocations(
        services.database,
        [wanted],
        allocation_domain.MessageLeads(allocation_domain.put_unknown_class_lead(consumer)),
        services.conf.placement.allocation_conflict_retry_count,
        on_retry=services.metrics.retries.inc,
    )
    return no_content()


def post_allocations(request: Request, services) -> Response:
    """POST /allocations (1.13+): replace several consumers' allocations atomically (204).

    A consumer given empty allocations loses everything it holds.
    """
    services.authorize(request, policy.ALLOCATIONS_MANAGE)
    wanted = schemas.post_requests(request, incomplete_owner(services))
    allocation_domain.replace_allocations(
        services.database,
        wanted,
        allocation_domain.MessageLeads(allocation_domain.POST_UNKNOWN_CLASS_LEAD),
        services.conf.placement.allocation_conflict_retry_count,
        on_retry=services.metrics.retries.inc,
    )
    return no_content()


def delete_allocations(request: Request, services) -> Response:
    """DELETE /allocations/{consumer}: 204, or 404 if the consumer holds nothing."""
    services.authorize(request, policy.ALLOCATIONS_DELETE)
    consumer = _path_consumer(request)
    with services.database.write() as connection:
        allocation_domain.delete_consumer_allocations(connection, consumer)
    return no_content()
