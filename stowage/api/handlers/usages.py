"""Handlers for /resource_providers/{uuid}/usages and /usages (1.9+).

Usages answer "how much is used now?", so from 1.15 their last-modified is
the time of the request, as upstream.
"""
from __future__ import annotations

from stowage.api import policy
from stowage.api.http import Request, Response
from stowage.api.schemas import usages as schemas
from stowage.domain import usages


def _cache_headers(request: Request, response: Response) -> Response:
    return response.with_cache_headers(request.version)


def provider_usages(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/usages::

    {"resource_provider_generation": 5, "usages": {"DISK_GB": 1020, "VCPU": 0}}

    Every class the provider has inventory of appears, 0 when unused.
    """
    services.authorize(request, policy.PROVIDER_USAGES)
    with services.database.read() as connection:
        found = usages.provider_usages(connection, request.route_args["uuid"])
    body = {"resource_provider_generation": found.generation, "usages": found.usages}
    return _cache_headers(request, Response(body=body))


def project_usages(request: Request, services) -> Response:
    """GET /usages?project_id=&user_id= (1.9+), and &consumer_type= (1.38+).

    1.9 - 1.37, classes in use only::

        {"usages": {"DISK_GB": 1020, "VCPU": 7}}

    1.38+, grouped by consumer type ("unknown" for consumers without one, or
    the single group "all" when asked for)::

        {"usages": {"INSTANCE": {"consumer_count": 1, "DISK_GB": 10},
                    "unknown": {"consumer_count": 3, "DISK_GB": 1020, "VCPU": 7}}}
    """
    # Policy first, with the project asked about as the target, as upstream:
    # a project's readers may see their own project's usages.
    project_id = request.query.get("project_id", [None])[-1]
    services.authorize(
        request, policy.TOTAL_USAGES, target={"project_id": project_id}
    )
    query = schemas.usages_query(request)
    # Per consumer type, then per class (1.38+), or per class.
    found: dict[str, dict[str, int]] | dict[str, int]
    with services.database.read() as connection:
        if query.by_consumer_type:
            found = usages.project_usages_by_consumer_type(
                connection, query.project_id, query.user_id, query.consumer_type
            )
        else:
            found = usages.project_usages(connection, query.project_id, query.user_id)
    return _cache_headers(request, Response(body={"usages": found}))
