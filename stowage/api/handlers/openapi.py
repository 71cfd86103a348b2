"""GET /stowage/openapi.json: the API's description (no authentication needed)."""
from __future__ import annotations

from stowage.api.http import Request, Response
from stowage.api.versions import MAX_VERSION


def description(request: Request, services) -> Response:
    """The OpenAPI 3.1 document of the microversion the request asks for,
    the newest when it asks for none (unlike the API's default of 1.0:
    a reader of the description wants all of it)."""
    # Imported here: the description is built from the route table, which
    # imports this module.
    from stowage.api import openapi

    asked = "placement" in request.environ.get("HTTP_OPENSTACK_API_VERSION", "").lower()
    version = request.version if asked else MAX_VERSION
    return Response(body=openapi.document_text(version))
