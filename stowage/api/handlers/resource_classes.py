"""Handlers for /resource_classes and /resource_classes/{name} (1.2+)."""
from __future__ import annotations

from stowage.api import policy
from stowage.api import versions as v
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas import resource_classes as schemas
from stowage.domain import resource_classes
from stowage.storage.catalog import ResourceClassRow


def class_url(request: Request, name: str) -> str:
    """The class's path, under the mount point if the app has one."""
    return f"{request.environ.get('SCRIPT_NAME', '')}/resource_classes/{name}"


def serialize_class(request: Request, resource_class: ResourceClassRow) -> dict:
    """One class::

    {"name": "CUSTOM_GOLD",
     "links": [{"rel": "self", "href": "/resource_classes/CUSTOM_GOLD"}]}
    """
    return {
        "name": resource_class.name,
        "links": [{"rel": "self", "href": class_url(request, resource_class.name)}],
    }


def serialize_classes(request: Request, classes: list[ResourceClassRow]) -> dict:
    """``{"resource_classes": [<class as serialize_class>, ...]}``"""
    return {"resource_classes": [serialize_class(request, found) for found in classes]}


def _cache_headers(request: Request, response: Response, classes: list[ResourceClassRow]) -> Response:
    """1.15's headers on reads: the newest change, or now if a standard class is shown."""
    stamps = [resource_classes.last_modified(found) for found in classes]
    if None in stamps:
        stamps = []  # a standard class has no meaningful time: report now
    return response.with_cache_headers(request.version, stamps)


def _created(request: Request, name: str, status: int = 201) -> Response:
    """A bodiless answer pointing at the class."""
    location = ("location", request.absolute_url(f"/resource_classes/{name}"))
    return Response(status=status, headers=[location], content_type=None)


def list_classes(request: Request, services) -> Response:
    """GET /resource_classes."""
    services.authorize(request, policy.RESOURCE_CLASSES_LIST)
    with services.database.read() as connection:
        classes = resource_classes.list_classes(connection)
    return _cache_headers(request, Response(body=serialize_classes(request, classes)), classes)


def create_class(request: Request, services) -> Response:
    """POST /resource_classes: 201, a location and no body."""
    services.authorize(request, policy.RESOURCE_CLASSES_CREATE)
    name = schemas.class_name_from_body(request)
    with services.database.write() as connection:
        created = resource_classes.create_class(connection, name)
    return _created(request, created.name)


def show_class(request: Request, services) -> Response:
    """GET /resource_classes/{name}."""
    services.authorize(request, policy.RESOURCE_CLASSES_SHOW)
    with services.database.read() as connection:
        found = resource_classes.show_class(connection, request.route_args["name"])
    return _cache_headers(request, Response(body=serialize_class(request, found)), [found])


def update_class(request: Request, services) -> Response:
    """PUT /resource_classes/{name}.

    1.2 - 1.6: rename a custom class to the body's name (200 and the class).
    1.7+: no body; create the custom class if missing (201) or confirm it
    exists (204), with a location either way.
    """
    services.authorize(request, policy.RESOURCE_CLASSES_UPDATE)
    name = request.route_args["name"]
    if request.version >= v.IDEMPOTENT_PUT_RESOURCE_CLASS:
        name = schemas.class_name_from_path(name)
        with services.database.write() as connection:
            found, created = resource_classes.ensure_class(connection, name)
        return _created(request, found.name, 201 if created else 204)
    new_name = schemas.class_name_from_body(request)
    with services.database.write() as connection:
        renamed = resource_classes.rename_class(connection, name, new_name)
    return Response(body=serialize_class(request, renamed))


def delete_class(request: Request, services) -> Response:
    """DELETE /resource_classes/{name}: custom classes no inventory or allocation uses."""
    services.authorize(request, policy.RESOURCE_CLASSES_DELETE)
    with services.database.write() as connection:
        resource_classes.delete_class(connection, request.route_args["name"])
    return no_content()
