"""Handlers for /resource_providers and /resource_providers/{uuid}."""
from __future__ import annotations

from collections.abc import Sequence

import orjson

from stowage.api import policy
from stowage.api import versions as v
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas import load_body, validate_query
from stowage.api.schemas import query as query_parsers
from stowage.api.schemas import resource_providers as schemas
from stowage.domain import providers
from stowage.domain.candidates import FAST_ENGINE
from stowage.domain.filters import AggregateFilter, ResourceAmount, TraitFilter
from stowage.storage.providers import ListedProvider, ProviderRecord


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
    once per request, and a provider's text is joined from pieces: a list
    of 100,000 providers costs a few string operations each instead of
    building and encoding seven dicts each.
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

    def text(self, provider: ListedProvider | ProviderRecord) -> str:
        """One provider."""
        return "".join(self._pieces([provider], [_json_string(provider.name)], True))

    def list_text(self, providers: Sequence[ListedProvider]) -> str:
        """``{"resource_providers": [<provider>, ...]}``"""
        # Names are encoded all at once when none needs escaping (no quote,
        # backslash or control character: orjson escapes nothing else).
        names = [provider.name for provider in providers]
        quoted = b"\\" in orjson.dumps(names)
        if quoted:
            names = [_json_string(name) for name in names]
        pieces = self._pieces(providers, names, quoted, separator=",")
        return f'{{"resource_providers":[{"".join(pieces)}]}}'

    def _pieces(
        self, providers: Sequence[ListedProvider | ProviderRecord], names: list[str],
        quoted: bool, separator: str = "",
    ) -> list[str]:
        """The providers' text as pieces to join: a uuid needs no escaping,
        names come encoded (``quoted``) or needing no escapes; each provider
        but the last ends in ``separator``."""
        links = self._links
        name_key = '","name":' if quoted else '","name":"'
        after_name = ',"generation":' if quoted else '","generation":'
        pieces: list[str] = []
        extend = pieces.extend
        if self._nested:
            end = '"}' + separator
            for provider, name in zip(providers, names, strict=True):
                uuid, parent = provider.uuid, provider.parent_provider_uuid
                extend(('{"uuid":"', uuid, name_key, name, after_name,
                        str(provider.generation), ',"links":', uuid.join(links),
                        ',"parent_provider_uuid":', "null" if parent is None else f'"{parent}"',
                        ',"root_provider_uuid":"', provider.root_provider_uuid, end))
        else:
            end = "}" + separator
            for provider, name in zip(providers, names, strict=True):
                uuid = provider.uuid
                extend(('{"uuid":"', uuid, name_key, name, after_name,
                        str(provider.generation), ',"links":', uuid.join(links), end))
        if pieces and separator:
            # The last provider takes no separator.
            pieces[-1] = pieces[-1][: -len(separator)]
        return pieces


def _json_string(text: str) -> str:
    return orjson.dumps(text).decode()


def serialize_provider(request: Request, record: ListedProvider | ProviderRecord) -> bytes:
    """One provider's body (``ProviderText``)."""
    return ProviderText(request).text(record).encode()


def serialize_providers(request: Request, providers: Sequence[ListedProvider]) -> bytes:
    """``{"resource_providers": [<provider as ProviderText>, ...]}``"""
    return ProviderText(request).list_text(providers).encode()


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
    finder = services.candidate_finder
    # The fast engine's read model answers when there is one (see
    # ``providers.list_providers``); a consistent read, as the model is
    # brought to the revision this transaction sees.
    read_models = finder.read_models if finder.engine == FAST_ENGINE else None
    with services.database.read(consistent=read_models is not None) as connection:
        listed = providers.list_providers(connection, query, read_models)
    response = Response(body=serialize_providers(request, listed))
    return response.with_cache_headers(request.version, [provider.last_modified for provider in listed])


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
