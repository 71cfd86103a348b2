"""What each route and method takes and answers, for the description.

The request schemas are the very objects the handlers validate with (the
selectors of ``stowage.api.schemas``); the answers' schemas are in
``answers``. ``tests/api/test_openapi.py`` holds this table to the route
table: one entry per route and method, no more.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stowage.api import versions as v
from stowage.api.openapi import answers
from stowage.api.schemas import aggregates as aggregate_schemas
from stowage.api.schemas import allocation_candidates as candidate_schemas
from stowage.api.schemas import allocations as allocation_schemas
from stowage.api.schemas import inventories as inventory_schemas
from stowage.api.schemas import reshaper as reshaper_schemas
from stowage.api.schemas import resource_classes as class_schemas
from stowage.api.schemas import resource_providers as provider_schemas
from stowage.api.schemas import traits as trait_schemas
from stowage.api.schemas import usages as usage_schemas
from stowage.api.versions import Version

# An answer's body schema at a microversion, None for no body.
Answers = Callable[[Version], dict[int, dict | None]]
Selector = Callable[[Version], dict | None]


@dataclass(frozen=True)
class Operation:
    summary: str
    answers: Answers
    body: Selector | None = None
    query: Selector | None = None
    # Parameters in the path that are not a provider's or consumer's uuid.
    names: tuple[str, ...] = ()
    # The media types of its answers (other than errors); a body of any
    # but JSON is text.
    media_types: tuple[str, ...] = ("application/json",)


def _always(schema: dict | None) -> Selector:
    return lambda version: schema


def _ok(schema: dict | Callable[[Version], dict]) -> Answers:
    if callable(schema):
        return lambda version: {200: schema(version)}
    return lambda version: {200: schema}


# A body of text (any media type but JSON), as ``media_types`` names it.
_TEXT = {"type": "string"}
_NO_CONTENT: Answers = lambda version: {204: None}  # noqa: E731
_CREATED_OR_EXISTING: Answers = lambda version: {201: None, 204: None}  # noqa: E731


def _class_update_answers(version: Version) -> dict[int, dict | None]:
    if version >= v.IDEMPOTENT_PUT_RESOURCE_CLASS:
        return {201: None, 204: None}
    return {200: answers.RESOURCE_CLASS_ANSWER}


def _class_update_body(version: Version) -> dict | None:
    return None if version >= v.IDEMPOTENT_PUT_RESOURCE_CLASS else class_schemas.NAMED


def _provider_create_answers(version: Version) -> dict[int, dict | None]:
    if version >= v.CREATE_RETURNS_BODY:
        return {200: answers.provider(version)}
    return {201: None}


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/", "GET"): Operation("The versions this service speaks", _ok(answers.VERSIONS)),
    # A 503 is an unhealthy answer of the same shape (or Keystone's
    # unavailability, checking a token, in Placement's error format).
    ("/healthcheck", "GET"): Operation(
        "Whether this worker can serve: the database answers and the read model is "
        "current (200) or not (503); details for administrators only",
        lambda version: {200: answers.HEALTH, 503: {"anyOf": [answers.HEALTH, answers.ERROR]}},
        media_types=("text/plain", "application/json"),
    ),
    ("/healthcheck", "HEAD"): Operation(
        "The same checks, answered by status alone as oslo.middleware's healthcheck does: "
        "204 when the worker can serve, 503 when not; no body",
        lambda version: {204: None, 503: None},
        media_types=("text/plain",),
    ),
    ("/metrics", "GET"): Operation(
        "Prometheus metrics of every worker ([stowage] metrics_access says who may read them)",
        _ok(answers.METRICS_TEXT),
        media_types=("text/plain", "application/openmetrics-text"),
    ),
    ("/stowage/openapi.json", "GET"): Operation(
        "This description, at the microversion asked for (the newest if none)",
        _ok(answers.DESCRIPTION),
    ),
    # The web view's static files (stowage.api.handlers.ui): text, not JSON.
    ("/stowage/ui/", "GET"): Operation(
        "The web view: a read-only picture of the cloud, for administrators",
        _ok(_TEXT), media_types=("text/html",),
    ),
    ("/stowage/ui/app.js", "GET"): Operation(
        "The web view's script", _ok(_TEXT), media_types=("text/javascript",)
    ),
    ("/stowage/ui/style.css", "GET"): Operation(
        "The web view's style sheet", _ok(_TEXT), media_types=("text/css",)
    ),
    ("/resource_classes", "GET"): Operation("List resource classes", _ok(answers.RESOURCE_CLASSES)),
    ("/resource_classes", "POST"): Operation(
        "Create a custom resource class",
        lambda version: {201: None},
        body=_always(class_schemas.NAMED),
    ),
    ("/resource_classes/{name}", "GET"): Operation(
        "Show a resource class", _ok(answers.RESOURCE_CLASS_ANSWER), names=("name",)
    ),
    ("/resource_classes/{name}", "PUT"): Operation(
        "Create a custom resource class (1.7+), or rename one (1.2 - 1.6)",
        _class_update_answers,
        body=_class_update_body,
        names=("name",),
    ),
    ("/resource_classes/{name}", "DELETE"): Operation(
        "Delete a custom resource class", _NO_CONTENT, names=("name",)
    ),
    ("/resource_providers", "GET"): Operation(
        "List resource providers",
        _ok(answers.providers),
        query=provider_schemas.list_query_schema,
    ),
    ("/resource_providers", "POST"): Operation(
        "Create a resource provider",
        _provider_create_answers,
        body=provider_schemas.create_schema,
    ),
    ("/resource_providers/{uuid}", "GET"): Operation(
        "Show a resource provider", _ok(answers.provider)
    ),
    ("/resource_providers/{uuid}", "DELETE"): Operation(
        "Delete a resource provider", _NO_CONTENT
    ),
    ("/resource_providers/{uuid}", "PUT"): Operation(
        "Rename or re-parent a resource provider",
        _ok(answers.provider),
        body=provider_schemas.update_schema,
    ),
    ("/resource_providers/{uuid}/inventories", "GET"): Operation(
        "List a provider's inventories", _ok(answers.INVENTORIES)
    ),
    ("/resource_providers/{uuid}/inventories", "POST"): Operation(
        "Add one inventory",
        lambda version: {201: answers.INVENTORY_WITH_GENERATION},
        body=_always(inventory_schemas.CREATE),
    ),
    ("/resource_providers/{uuid}/inventories", "PUT"): Operation(
        "Replace all of a provider's inventories",
        _ok(answers.INVENTORIES),
        body=_always(inventory_schemas.REPLACE_ALL),
    ),
    ("/resource_providers/{uuid}/inventories", "DELETE"): Operation(
        "Delete all of a provider's inventories", _NO_CONTENT
    ),
    ("/resource_providers/{uuid}/inventories/{resource_class}", "GET"): Operation(
        "Show one inventory", _ok(answers.INVENTORY_WITH_GENERATION), names=("resource_class",)
    ),
    ("/resource_providers/{uuid}/inventories/{resource_class}", "PUT"): Operation(
        "Update (or add) one inventory",
        _ok(answers.INVENTORY_WITH_GENERATION),
        body=_always(inventory_schemas.UPDATE_ONE),
        names=("resource_class",),
    ),
    ("/resource_providers/{uuid}/inventories/{resource_class}", "DELETE"): Operation(
        "Delete one inventory", _NO_CONTENT, names=("resource_class",)
    ),
    ("/resource_providers/{uuid}/usages", "GET"): Operation(
        "A provider's usages", _ok(answers.PROVIDER_USAGES)
    ),
    ("/resource_providers/{uuid}/aggregates", "GET"): Operation(
        "A provider's aggregates", _ok(answers.aggregates)
    ),
    ("/resource_providers/{uuid}/aggregates", "PUT"): Operation(
        "Set a provider's aggregates",
        _ok(answers.aggregates),
        body=aggregate_schemas.body_schema,
    ),
    ("/resource_providers/{uuid}/allocations", "GET"): Operation(
        "The allocations against a provider", _ok(answers.provider_allocations)
    ),
    ("/allocations", "POST"): Operation(
        "Set the allocations of several consumers at once",
        _NO_CONTENT,
        body=allocation_schemas.post_schema,
    ),
    ("/allocations/{consumer_uuid}", "GET"): Operation(
        "A consumer's allocations", _ok(answers.consumer_allocations)
    ),
    ("/allocations/{consumer_uuid}", "PUT"): Operation(
        "Set a consumer's allocations (a claim)",
        _NO_CONTENT,
        body=allocation_schemas.put_schema,
    ),
    ("/allocations/{consumer_uuid}", "DELETE"): Operation(
        "Delete a consumer's allocations", _NO_CONTENT
    ),
    ("/allocation_candidates", "GET"): Operation(
        "Combinations of providers that can satisfy a request",
        _ok(answers.allocation_candidates),
        query=candidate_schemas.query_schema,
    ),
    ("/stowage/allocation_candidates/explain", "GET"): Operation(
        "Why GET /allocation_candidates with this query finds what it finds (or nothing)",
        _ok(answers.EXPLANATION),
        query=candidate_schemas.query_schema,
    ),
    ("/traits", "GET"): Operation(
        "List traits", _ok(answers.TRAITS), query=_always(trait_schemas.LIST_QUERY)
    ),
    ("/traits/{name}", "GET"): Operation("Whether a trait exists", _NO_CONTENT, names=("name",)),
    ("/traits/{name}", "PUT"): Operation(
        "Create a custom trait", _CREATED_OR_EXISTING, names=("name",)
    ),
    ("/traits/{name}", "DELETE"): Operation(
        "Delete a custom trait", _NO_CONTENT, names=("name",)
    ),
    ("/resource_providers/{uuid}/traits", "GET"): Operation(
        "A provider's traits", _ok(answers.PROVIDER_TRAITS)
    ),
    ("/resource_providers/{uuid}/traits", "PUT"): Operation(
        "Set a provider's traits",
        _ok(answers.PROVIDER_TRAITS),
        body=_always(trait_schemas.PROVIDER_TRAITS_BODY),
    ),
    ("/resource_providers/{uuid}/traits", "DELETE"): Operation(
        "Remove all of a provider's traits", _NO_CONTENT
    ),
    ("/usages", "GET"): Operation(
        "A project's (and user's) usages",
        _ok(answers.project_usages),
        query=usage_schemas.query_schema,
    ),
    ("/reshaper", "POST"): Operation(
        "Change inventories and allocations in one step",
        _NO_CONTENT,
        body=reshaper_schemas.body_schema,
    ),
}
