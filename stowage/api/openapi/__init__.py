"""The API's OpenAPI 3.1 description, one document per microversion.

Built from the route table (paths, methods, each endpoint's first
microversion), the request schemas the handlers validate with and the
answers' schemas (``answers``); served at ``GET /stowage/openapi.json``. The
newest microversion's document is kept in ``docs/openapi.json``
(``stowage openapi > docs/openapi.json``), which a test holds equal to it.

OpenAPI has no notion of microversions, so each document describes one:
its ``OpenStack-API-Version`` header parameter takes exactly that version
(a request without it is served at 1.0, which its own document describes),
and each operation names the microversion it first appeared in
(``x-openstack-microversion``). Query parameters with request group
suffixes (``resources1``, ``required_NET``...) are described by their
patterns in ``x-stowage-suffixed-parameters``; ``resources1``,
``required1``... stand for them among the parameters.
"""
from __future__ import annotations

import functools
import re

import orjson

from stowage.api.openapi import answers
from stowage.api.openapi.operations import OPERATIONS, Operation
from stowage.api.routes import ROUTES, Endpoint, Route
from stowage.api.versions import MAX_VERSION, MIN_VERSION, Version

PATH = "/stowage/openapi.json"

_ERROR = {"$ref": "#/components/responses/Error"}
_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
# Errors any request may get: a malformed request (400), refused by policy
# (403), nothing there (404), a microversion or Accept that cannot be served
# (406), a body too slow (408) or too big (413), the database unreachable
# (503); and no or a bad token (401, in its own form) on non-public routes.
_ERRORS = (400, 403, 404, 406, 408, 413, 503)
# ... and a write's: a generation or capacity conflict, a body not JSON.
_WRITE_ERRORS = (409, 415)
_REQUEST_ID = {"schema": {"type": "string"}, "required": True}

# Where the name of what an answer created comes from, and the operations
# that take it: (template, method, status, parameter, expression, prefix).
# With these links a stateful client (schemathesis) reaches a provider's
# inventories, traits and allocations instead of guessing uuids.
_LINKS = (
    ("/resource_providers", "post", "200", "uuid", "$response.body#/uuid",
     "/resource_providers/{uuid}"),
    ("/resource_classes", "post", "201", "name", "$request.body#/name",
     "/resource_classes/{name}"),
    ("/traits/{name}", "put", "201", "name", "$request.path.name", "/traits/{name}"),
    ("/allocations/{consumer_uuid}", "put", "204", "consumer_uuid",
     "$request.path.consumer_uuid", "/allocations/{consumer_uuid}"),
)


def describe(version: Version) -> dict:
    """The description of the API at ``version``."""
    paths: dict[str, dict] = {}
    for route in ROUTES:
        item = {
            method.lower(): _operation(route, method, endpoint, version)
            for method, endpoint in route.methods.items()
            if version >= endpoint.min_version
        }
        if item:
            paths[route.template] = item
    _link(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Placement API (Stowage)",
            "version": str(version),
            "description": (
                f"OpenStack Placement at microversion {version} (this service speaks "
                f"{MIN_VERSION} - {MAX_VERSION}; GET {PATH} with "
                "'OpenStack-API-Version: placement X.Y' for another)."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
            },
            "responses": {
                "Error": {
                    "description": "Placement's error format",
                    "headers": {"x-openstack-request-id": _REQUEST_ID},
                    "content": {"application/json": {"schema": answers.ERROR}},
                },
                "Unauthorized": {
                    "description": "No token, or one that is not valid",
                    "content": {"application/json": {"schema": answers.UNAUTHORIZED}},
                },
            },
        },
        "security": [{"token": []}],
    }


def _link(paths: dict[str, dict]) -> None:
    """Add ``_LINKS``' links to the answers that the paths describe."""
    for template, method, status, parameter, expression, prefix in _LINKS:
        answer = paths.get(template, {}).get(method, {}).get("responses", {}).get(status)
        if answer is None:
            continue
        links = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": {parameter: expression},
            }
            for target, item in paths.items()
            if target == prefix or target.startswith(prefix + "/")
            for target_method, operation in item.items()
            if (target, target_method) != (template, method)
        }
        if links:
            answer["links"] = links


@functools.cache
def document_text(version: Version) -> bytes:
    """``describe(version)`` as the JSON text served and kept in docs/."""
    return orjson.dumps(describe(version), option=orjson.OPT_INDENT_2) + b"\n"


def _operation(route: Route, method: str, endpoint: Endpoint, version: Version) -> dict:
    operation: Operation = OPERATIONS[(route.template, method)]
    described: dict = {
        "operationId": endpoint.handler.__name__,
        "summary": operation.summary,
        "x-openstack-microversion": str(endpoint.min_version),
        "parameters": _path_parameters(route, operation) + [_version_header(version)],
    }
    if route.public:
        # No token, or (where the answer depends on the caller) a checked one.
        described["security"] = [{}, {"token": []}] if route.checks_given_token else []
    query = operation.query(version) if operation.query else None
    if query is not None:
        described["parameters"] += _query_parameters(query)
        suffixed = query.get("patternProperties")
        if suffixed:
            described["x-stowage-suffixed-parameters"] = sorted(suffixed)
    body = operation.body(version) if operation.body else None
    if body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    responses: dict[str, dict] = {}
    for status, schema in operation.answers(version).items():
        responses[str(status)] = _answer(status, schema, operation.media_types)
    writes = method in ("PUT", "POST", "DELETE")
    for status in _ERRORS + (_WRITE_ERRORS if writes else ()):
        # An operation's own 503 (an unhealthy answer) stays its own.
        responses.setdefault(str(status), _ERROR)
    if not route.public or route.checks_given_token:
        responses["401"] = _UNAUTHORIZED
    described["responses"] = responses
    return described


def _path_parameters(route: Route, operation: Operation) -> list[dict]:
    parameters = []
    for name in re.findall(r"\{(\w+)\}", route.template):
        schema = {"type": "string"} if name in operation.names else answers.UUID
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _version_header(version: Version) -> dict:
    return {
        "name": "OpenStack-API-Version",
        "in": "header",
        # Not required by the service, which takes its absence for 1.0; this
        # document describes the answers to requests that send it.
        "required": False,
        "description": f"The microversion this document describes; without it, {MIN_VERSION}",
        "schema": {"type": "string", "enum": [f"placement {version}"]},
    }


def _query_parameters(schema: dict) -> list[dict]:
    required = set(schema.get("required", ()))
    parameters = [
        {"name": name, "in": "query", "required": name in required, "schema": value}
        for name, value in schema.get("properties", {}).items()
    ]
    # A name with an optional suffix, "^resources([a-z...]{1,64})?$", as
    # itself and one suffixed stand-in (resources1).
    for pattern, value in schema.get("patternProperties", {}).items():
        name = pattern.removeprefix("^").split("(", 1)[0]
        parameters += [
            {"name": name + suffix, "in": "query", "required": False, "schema": value}
            for suffix in ("", "1")
        ]
    return parameters


def _answer(
    status: int, schema: dict | None, media_types: tuple[str, ...] = ("application/json",)
) -> dict:
    headers: dict = {
        "x-openstack-request-id": _REQUEST_ID,
        "openstack-api-version": {"schema": {"type": "string"}, "required": True},
    }
    if status == 201:
        headers["location"] = {"schema": {"type": "string"}}
    answer: dict = {"description": _DESCRIPTIONS[status], "headers": headers}
    if schema is not None:
        answer["content"] = {
            media_type: {"schema": schema if media_type == "application/json" else {"type": "string"}}
            for media_type in media_types
        }
    return answer


_DESCRIPTIONS = {200: "OK", 201: "Created", 204: "No content", 503: "Service unavailable"}
