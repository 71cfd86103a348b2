"""/traits and /resource_providers/{uuid}/traits (microversion 1.6+).

Caching headers (last-modified, cache-control) from 1.15 on every answer
except DELETE; last-modified is the newest trait's timestamp, or now.
"""
from __future__ import annotations

from stowage.api import policy
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas.traits import custom_trait_name, provider_traits_update, trait_filter
from stowage.domain import traits as trait_domain


def _traits_response(request: Request, body: dict, traits: list[trait_domain.TraitRow]) -> Response:
    return Response(body=body).with_cache_headers(request.version, [trait.last_modified for trait in traits])


def serialize_traits(traits: list[trait_domain.TraitRow]) -> dict:
    """``{"traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2", ...]}``, sorted by name."""
    return {"traits": [trait.name for trait in traits]}


def serialize_provider_traits(provider_traits: trait_domain.ProviderTraits) -> dict:
    """``{"traits": ["CUSTOM_GOLD", ...], "resource_provider_generation": 3}``."""
    body = serialize_traits(provider_traits.traits)
    body["resource_provider_generation"] = provider_traits.generation
    return body


def list_traits(request: Request, services) -> Response:
    """GET /traits[?name=in:A,B | name=startswith:PREFIX][&associated=true|false]"""
    services.authorize(request, policy.TRAITS_LIST)
    wanted = trait_filter(request)
    with services.database.read() as connection:
        traits = trait_domain.list_traits(connection, wanted)
    return _traits_response(request, serialize_traits(traits), traits)


def show_trait(request: Request, services) -> Response:
    """GET /traits/{name}: 204 if the trait exists, 404 otherwise."""
    services.authorize(request, policy.TRAITS_SHOW)
    with services.database.read() as connection:
        trait = trait_domain.get_trait(connection, request.route_args["name"])
    response = no_content()
    return response.with_cache_headers(request.version, [trait.last_modified])


def create_trait(request: Request, services) -> Response:
    """PUT /traits/{name}: 201 when created, 204 when it already existed.

    Only custom names (``CUSTOM_[A-Z0-9_]+``, at most 255 characters).
    """
    services.authorize(request, policy.TRAITS_UPDATE)
    name = custom_trait_name(request.route_args["name"])
    with services.database.write() as connection:
        trait, created = trait_domain.ensure_custom_trait(connection, name)
    response = no_content()
    if created:
        response.status = 201
    response.add_header("location", f"{request.environ.get('SCRIPT_NAME', '')}/traits/{trait.name}")
    return response.with_cache_headers(request.version, [trait.last_modified])


def delete_trait(request: Request, services) -> Response:
    """DELETE /traits/{name}: custom traits no provider has."""
    services.authorize(request, policy.TRAITS_DELETE)
    with services.database.write() as connection:
        trait_domain.delete_custom_trait(connection, request.route_args["name"])
    return no_content()


def list_provider_traits(request: Request, services) -> Response:
    """GET /resource_providers/{uuid}/traits"""
    services.authorize(request, policy.PROVIDER_TRAITS_LIST)
    with services.database.read() as connection:
        found = trait_domain.provider_traits(connection, request.route_args["uuid"])
    return _traits_response(request, serialize_provider_traits(found), found.traits)


def set_provider_traits(request: Request, services) -> Response:
    """PUT /resource_providers/{uuid}/traits

    Body ``{"traits": [...], "resource_provider_generation": N}``; answers
    like GET with the new generation (unchanged if the set did not change).
    """
    services.authorize(request, policy.PROVIDER_TRAITS_UPDATE)
    update = provider_traits_update(request)
    with services.database.write() as connection:
        result = trait_domain.replace_provider_traits(
            connection, request.route_args["uuid"], update.names, update.generation
        )
    return _traits_response(request, serialize_provider_traits(result), result.traits)


def delete_provider_traits(request: Request, services) -> Response:
    """DELETE /resource_providers/{uuid}/traits: removes every trait."""
    services.authorize(request, policy.PROVIDER_TRAITS_DELETE)
    with services.database.write() as connection:
        trait_domain.clear_provider_traits(connection, request.route_args["uuid"])
    return no_content()
