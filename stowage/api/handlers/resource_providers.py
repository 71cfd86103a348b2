"""Handlers for /resource_providers and /resource_providers/{uuid}."""
from __future__ import annotations

import orjson

from stowage.api import policy
from stowage.api import versions as v
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas import load_body, validate_query
from stowage.api.schemas import query as query_parsers
from stowage.api.schemas import resource_providers as schemas
from stowage.domain import providers
from stowage.domain.filters import AggregateFilter, ResourceAmount, TraitFilter
from stowage.storage.providers import ProviderRecord


def provider_url(request: Request, uuid: str) -> str:
    """The provider's path, under the mount point if the app has one."""
    return f"{request.environ.get('SCRIPT_NAME', '')}/resource_providers/{uuid}"


class ProviderText:
    """Providers as JSON text, for one request's microversion and mount::

        {"uuid": ..., "name": ..., "generation": 0,
         "links": [{"rel": "self", "href": "/resource_providers/<uuid>"},
                   {"rel": "inventories" | "usages" | "aggregates" (1.1+)
                           | "traits" (1.6+) | "allocations" (1.11+), "href": ...}],
         "parent_provider_uuid": ..., "root_provider_uuid": ...}   # 1.14+

    What does not depend on the provider (the links, the keys) is written
    once per request: a list of 100,000 providers costs a few string
    operations each instead of building and encoding seven dicts each.
    """

    _UUID = "\x00"  # where a provider's uuid goes in the links' text

    def __init__(self, request: Request) -> None:
        relations = ["inventories", "usages"]
        if request.version >= v.PROVIDER_AGGREGATES:
            relations.append("aggregates")
        if request.version >= v.TRAITS:
            relations.append("traits")
        if request.version >= v.PROVIDER_ALLOCATIONS_LINK:
            relations.append("allocations")
        url = provider_url(request, self._UUID)
        links = [{"rel": "self", "href": url}]
        links += [{"rel": relation, "href": f"{url}/{relation}"} for relation in relations]
        # The links' text in pieces, to be joined by a provider's uuid.
        self._links = orjson.dumps(links).decode().split("\\u0000")
        self._nested = request.version >= v.NESTED_PROVIDERS

    def text(self, record: ProviderRecord) -> str:
        """One provider (a uuid needs no escaping; a name is encoded)."""
        uuid = record.uuid
        text = (
            f'{{"uuid":"{uuid}","name":{orjson.dumps(record.name).decode()},'
            f'"generation":{record.generation},"links":{uuid.join(self._links)}'
        )
        if not self._nested:
            return text + "}"
        parent = "null" if record.parent_provider_uuid is None else f'"{record.parent_provider_uuid}"'
        return f'{text},"parent_provider_uuid":{parent},"root_provider_uuid":"{record.root_provider_uuid}"}}'


def serialize_provider(request: Request, record: ProviderRecord) -> bytes:
    """One provider's body (``ProviderText``)."""
    return ProviderText(request).text(record).encode()


def serialize_providers(request: Request, records: list[ProviderRecord]) -> bytes:
    """``{"resource_providers": [<provider as ProviderText>, ...]}``"""
    render = ProviderText(request).text
    return f'{{"resource_providers":[{",".join(map(render, records))}]}}'.encode()


def list_providers(request: Request, services) -> Response:
    """GET /resource_providers, filtered by the parameters each microversion allows."""
    services.authorize(request, policy.RESOURCE_PROVIDERS_LIST)
    parameters = validate_query(request, schemas.list_query_schema(request.version))
    member_of = AggregateFilter()
    if "member_of" in request.query:
        member_of = query_parsers.parse_member_of(request.query["member_of"], request.version)
    required = TraitFilter()
    if "required" in request.query:
        required = query_parsers.parse_required(request.query["required"], request.version)
    resources: tuple[ResourceAmount, ...] = ()
    if "resources" in parameters:
        resources = query_parsers.parse_resources(parameters["resources"])
    query = providers.ProviderQuery(
        name=parameters.get("name"),
        uuid=parameters.get("uuid"),
        in_tree=parameters.get("in_tree"),
        member_of=member_of,
        required=required,
        resources=resources,
    )
    with services.database.read() as connection:
        records = providers.list_providers(connection, query)
    response = Response(body=serialize_providers(request, records))
    return response.with_cache_headers(request.version, [record.last_modified for record in records])


def create_provider(request: Request, services) -> Response:
    """POST /resource_providers: 201 and no body before 1.20, 200 and the
    provider from 1.20; a location header either way."""
    services.authorize(request, policy.RESOURCE_PROVIDERS_CREATE)
    data = load_body(request, schemas.create_schema(request.version))
    with services.database.write() as connection:
        record = providers.create_provider(
            connection, data["name"], data.get("uuid"), data.get("parent_provider_uuid")
        )
    # Absolute, as WebOb made upstream's.
    location = ("location", request.absolute_url(f"/resource_providers/{record.uuid}"))
    if request.version < v.CREATE_RETURNS_BODY:
        return Response(status=201, headers=[location], content_type=None)
    response = Response(body=serialize_provider(request, record), headers=[location])
    return response.with_cache_headers(request.version, [record.last_modified])


def show_provider(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}."""
    services.authorize(request, policy.RESOURCE_PROVIDERS_SHOW)
    with services.database.read() as connection:
        record = providers.show_provider(connection, request.route_args["uuid"])
    response = Response(body=serialize_provider(request, record))
    return response.with_cache_headers(request.version, [record.last_modified])


def update_provider(request: Request, services) -> Response:
    """PUT /resource_providers/{uuid}: rename, and from 1.14 set the parent
    (moving and un-parenting from 1.37)."""
    services.authorize(request, policy.RESOURCE_PROVIDERS_UPDATE)
    uuid = request.route_args["uuid"]
    with services.database.write() as connection:
        # 404 for an unknown provider before complaints about the body, as upstream.
        providers.show_provider(connection, uuid)
        data = load_body(request, schemas.update_schema(request.version))
        updated = providers.update_provider(
            connection,
            uuid,
            data["name"],
            data.get("parent_provider_uuid", providers.UNCHANGED),
            allow_reparenting=request.version >= v.REPARENT,
        )
    response = Response(body=serialize_provider(request, updated.record))
    return response.with_cache_headers(
        request.version, [updated.previously_updated_at], now_if_unknown=False
    )


def delete_provider(request: Request, services) -> Response:
    """DELETE /resource_providers/{uuid}: 204; 409 while it has children or
    allocations."""
    services.authorize(request, policy.RESOURCE_PROVIDERS_DELETE)
    with services.database.write() as connection:
        providers.delete_provider(connection, request.route_args["uuid"])
    return no_content()
