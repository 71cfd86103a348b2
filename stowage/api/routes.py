"""The route table: every path, method, handler and first microversion.

405 answers and their ``Allow`` header come from this table alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from stowage.api import versions as v
from stowage.api.handlers import (
    aggregates,
    allocation_candidates,
    allocations,
    inventories,
    reshaper,
    resource_classes,
    resource_providers,
    root,
    traits,
    usages,
)


@dataclass(frozen=True)
class Endpoint:
    handler: Callable
    min_version: v.Version = v.BASE


@dataclass(frozen=True)
class Route:
    template: str
    methods: dict[str, Endpoint]

    @property
    def pattern(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


ROUTES = [
    Route("/", {"GET": Endpoint(root.home)}),
    Route(
        "/resource_providers",
        {
            "GET": Endpoint(resource_providers.list_providers),
            "POST": Endpoint(resource_providers.create_provider),
        },
    ),
    Route(
        "/resource_providers/{uuid}",
        {
            "GET": Endpoint(resource_providers.show_provider),
            "PUT": Endpoint(resource_providers.update_provider),
            "DELETE": Endpoint(resource_providers.delete_provider),
        },
    ),
    Route(
        "/resource_providers/{uuid}/inventories",
        {
            "GET": Endpoint(inventories.list_inventories),
            "POST": Endpoint(inventories.create_inventory),
            "PUT": Endpoint(inventories.replace_inventories),
            # Served from 1.5; older versions get 405, not 404 (the handler says so).
            "DELETE": Endpoint(inventories.delete_inventories),
        },
    ),
    Route(
        "/resource_providers/{uuid}/inventories/{resource_class}",
        {
            "GET": Endpoint(inventories.show_inventory),
            "PUT": Endpoint(inventories.update_inventory),
            "DELETE": Endpoint(inventories.delete_inventory),
        },
    ),
    Route(
        "/resource_providers/{uuid}/aggregates",
        {
            "GET": Endpoint(aggregates.list_aggregates, v.PROVIDER_AGGREGATES),
            "PUT": Endpoint(aggregates.set_aggregates, v.PROVIDER_AGGREGATES),
        },
    ),
    Route(
        "/resource_providers/{uuid}/allocations",
        {"GET": Endpoint(allocations.list_provider_allocations)},
    ),
    Route(
        "/resource_providers/{uuid}/traits",
        {
            "GET": Endpoint(traits.list_provider_traits, v.TRAITS),
            "PUT": Endpoint(traits.set_provider_traits, v.TRAITS),
            "DELETE": Endpoint(traits.delete_provider_traits, v.TRAITS),
        },
    ),
    Route(
        "/resource_providers/{uuid}/usages",
        {"GET": Endpoint(usages.provider_usages)},
    ),
    Route(
        "/resource_classes",
        {
            "GET": Endpoint(resource_classes.list_classes, v.CUSTOM_RESOURCE_CLASSES),
            "POST": Endpoint(resource_classes.create_class, v.CUSTOM_RESOURCE_CLASSES),
        },
    ),
    Route(
        "/resource_classes/{name}",
        {
            "GET": Endpoint(resource_classes.show_class, v.CUSTOM_RESOURCE_CLASSES),
            "PUT": Endpoint(resource_classes.update_class, v.CUSTOM_RESOURCE_CLASSES),
            "DELETE": Endpoint(resource_classes.delete_class, v.CUSTOM_RESOURCE_CLASSES),
        },
    ),
    Route("/traits", {"GET": Endpoint(traits.list_traits, v.TRAITS)}),
    Route(
        "/traits/{name}",
        {
            "GET": Endpoint(traits.show_trait, v.TRAITS),
            "PUT": Endpoint(traits.create_trait, v.TRAITS),
            "DELETE": Endpoint(traits.delete_trait, v.TRAITS),
        },
    ),
    Route("/usages", {"GET": Endpoint(usages.project_usages, v.USAGES)}),
    Route("/allocations", {"POST": Endpoint(allocations.post_allocations, v.POST_ALLOCATIONS)}),
    Route(
        "/allocations/{consumer_uuid}",
        {
            "GET": Endpoint(allocations.show_allocations),
            "PUT": Endpoint(allocations.put_allocations),
            "DELETE": Endpoint(allocations.delete_allocations),
        },
    ),
    Route(
        "/allocation_candidates",
        {"GET": Endpoint(allocation_candidates.list_candidates, v.ALLOCATION_CANDIDATES)},
    ),
    Route("/reshaper", {"POST": Endpoint(reshaper.reshape, v.RESHAPER)}),
]


class Router:
    """Finds the route for a path; compiled once per app."""

    def __init__(self, routes: list[Route]) -> None:
        self._compiled = [(route.pattern, route) for route in routes]

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for pattern, route in self._compiled:
            found = pattern.match(path)
            if found:
                return route, found.groupdict()
        return None
