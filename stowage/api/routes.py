"""The route table: every path, method, handler and first microversion.

405 answers and their ``Allow`` header come from this table alone.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stowage.api import versions as v
from stowage.api.handlers import (
    aggregates,
    allocation_candidates,
    allocations,
    explain,
    health,
    inventories,
    metrics,
    openapi,
    reshaper,
    resource_classes,
    resource_providers,
    root,
    traits,
    ui,
    usages,
)


@dataclass(frozen=True)
class Endpoint:
    """A handler and the checks upstream makes before it runs.

    The checks run in this order: the microversion (404, or
    ``too_old_status``), then Accept (406) and the body's content type
    (415); ``checks_before_version`` puts the microversion last, as
    upstream's aggregates handlers have it.
    """

    handler: Callable
    min_version: v.Version = v.BASE
    # 406 unless Accept takes application/json (upstream's readers).
    json_only: bool = False
    # 415 unless the body is typed application/json ...
    json_body: bool = False
    # ... only below this microversion (None: at every microversion).
    json_body_until: v.Version | None = None
    checks_before_version: bool = False
    too_old_status: int = 404
    # How the handler restates a missing provider ({uuid}, {detail}), as
    # upstream's handler does; None: the lookup's 404 escapes it.
    missing_provider: str | None = None

    def wants_json_body(self, version: v.Version) -> bool:
        return self.json_body and (self.json_body_until is None or version < self.json_body_until)


@dataclass(frozen=True)
class Route:
    """A path template and its endpoints by method, in upstream's order
    (which the ``Allow`` header of a 405 lists)."""

    template: str
    methods: dict[str, Endpoint]
    # Read without a token (the template has no parameters).
    public: bool = False
    # ... yet a token, when one is given, is checked and names the caller
    # (answers that show administrators more).
    checks_given_token: bool = False

    @property
    def pattern(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


def _reader(
    handler: Callable, min_version: v.Version = v.BASE, missing_provider: str | None = None
) -> Endpoint:
    return Endpoint(handler, min_version, json_only=True, missing_provider=missing_provider)


def _writer(handler: Callable, min_version: v.Version = v.BASE) -> Endpoint:
    return Endpoint(handler, min_version, json_body=True)


ROUTES = [
    Route("/", {"GET": Endpoint(root.home)}, public=True),
    Route(
        "/resource_classes",
        {
            "GET": _reader(resource_classes.list_classes, v.CUSTOM_RESOURCE_CLASSES),
            "POST": _writer(resource_classes.create_class, v.CUSTOM_RESOURCE_CLASSES),
        },
    ),
    Route(
        "/resource_classes/{name}",
        {
            "GET": _reader(resource_classes.show_class, v.CUSTOM_RESOURCE_CLASSES),
            # From 1.7 the PUT has no body.
            "PUT": Endpoint(
                resource_classes.update_class,
                v.CUSTOM_RESOURCE_CLASSES,
                json_body=True,
                json_body_until=v.IDEMPOTENT_PUT_RESOURCE_CLASS,
            ),
            "DELETE": Endpoint(resource_classes.delete_class, v.CUSTOM_RESOURCE_CLASSES),
        },
    ),
    Route(
        "/resource_providers",
        {
            "GET": _reader(resource_providers.list_providers),
            "POST": _writer(resource_providers.create_provider),
        },
    ),
    Route(
        "/resource_providers/{uuid}",
        {
            "GET": _reader(resource_providers.show_provider),
            "DELETE": Endpoint(resource_providers.delete_provider),
            "PUT": _writer(resource_providers.update_provider),
        },
    ),
    Route(
        "/resource_providers/{uuid}/inventories",
        {
            "GET": _reader(inventories.list_inventories, missing_provider="{detail} : {detail}"),
            "POST": _writer(inventories.create_inventory),
            "PUT": _writer(inventories.replace_inventories),
            # Older microversions get 405, not 404.
            "DELETE": Endpoint(
                inventories.delete_inventories, v.DELETE_ALL_INVENTORY, too_old_status=405
            ),
        },
    ),
    Route(
        "/resource_providers/{uuid}/inventories/{resource_class}",
        {
            "GET": _reader(inventories.show_inventory, missing_provider="{detail} : {detail}"),
            "PUT": _writer(inventories.update_inventory),
            "DELETE": Endpoint(inventories.delete_inventory),
        },
    ),
    Route(
        "/resource_providers/{uuid}/usages",
        {"GET": _reader(usages.provider_usages, missing_provider="{detail}: {detail}")},
    ),
    Route(
        "/resource_providers/{uuid}/aggregates",
        {
            "GET": Endpoint(
                aggregates.list_aggregates,
                v.PROVIDER_AGGREGATES,
                json_only=True,
                checks_before_version=True,
            ),
            "PUT": Endpoint(
                aggregates.set_aggregates,
                v.PROVIDER_AGGREGATES,
                json_body=True,
                checks_before_version=True,
            ),
        },
    ),
    Route(
        "/resource_providers/{uuid}/allocations",
        {
            "GET": _reader(
                allocations.list_provider_allocations,
                missing_provider="Resource provider '{uuid}' not found: {detail}",
            )
        },
    ),
    Route("/allocations", {"POST": _writer(allocations.post_allocations, v.POST_ALLOCATIONS)}),
    Route(
        "/allocations/{consumer_uuid}",
        {
            "GET": _reader(allocations.show_allocations),
            "PUT": _writer(allocations.put_allocations),
            "DELETE": Endpoint(allocations.delete_allocations),
        },
    ),
    Route(
        "/allocation_candidates",
        {"GET": _reader(allocation_candidates.list_candidates, v.ALLOCATION_CANDIDATES)},
    ),
    Route("/traits", {"GET": _reader(traits.list_traits, v.TRAITS)}),
    Route(
        "/traits/{name}",
        {
            "GET": Endpoint(traits.show_trait, v.TRAITS),
            "PUT": Endpoint(traits.create_trait, v.TRAITS),
            "DELETE": Endpoint(traits.delete_trait, v.TRAITS),
        },
    ),
    Route(
        "/resource_providers/{uuid}/traits",
        {
            "GET": _reader(traits.list_provider_traits, v.TRAITS, "{detail}: {detail}"),
            "PUT": _writer(traits.set_provider_traits, v.TRAITS),
            "DELETE": Endpoint(traits.delete_provider_traits, v.TRAITS),
        },
    ),
    Route("/usages", {"GET": _reader(usages.project_usages, v.USAGES)}),
    Route("/reshaper", {"POST": _writer(reshaper.reshape, v.RESHAPER)}),
    # Stowage's own, under a prefix no Placement route uses.
    Route("/stowage/openapi.json", {"GET": _reader(openapi.description)}, public=True),
    # The web view: static files, public as they hold no data; the page's
    # script reads the API above with the operator's token.
    Route(ui.PATH, {"GET": Endpoint(ui.page)}, public=True),
    Route(ui.SCRIPT_PATH, {"GET": Endpoint(ui.script)}, public=True),
    Route(ui.STYLESHEET_PATH, {"GET": Endpoint(ui.stylesheet)}, public=True),
    # The query of /allocation_candidates, answered with why nothing fits.
    Route(
        "/stowage/allocation_candidates/explain",
        {"GET": _reader(explain.explain_candidates, v.ALLOCATION_CANDIDATES)},
    ),
    # Operators' paths, where load balancers (oslo.middleware's healthcheck)
    # and Prometheus look for them; no Placement route uses either.
    Route(
        health.PATH,
        # HEAD too, as oslo.middleware's healthcheck answers it (status only).
        {"GET": Endpoint(health.healthcheck), "HEAD": Endpoint(health.healthcheck_status)},
        public=True,
        checks_given_token=True,
    ),
    Route(metrics.PATH, {"GET": Endpoint(metrics.exposition)}, public=True, checks_given_token=True),
]
# An empty path is the root's.
PUBLIC_PATHS = frozenset(route.template for route in ROUTES if route.public) | {""}
TOKEN_CHECKED_PATHS = frozenset(route.template for route in ROUTES if route.checks_given_token)


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
