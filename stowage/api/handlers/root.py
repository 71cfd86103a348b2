"""GET /: the version document (no authentication needed)."""
from __future__ import annotations

from stowage.api.http import Request, Response
from stowage.api.versions import MAX_VERSION, MIN_VERSION


def home(request: Request, services) -> Response:
    """Body::

    {"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0",
                   "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]}
    """
    response = Response(
        body={
            "versions": [
                {
                    "id": "v1.0",
                    "max_version": str(MAX_VERSION),
                    "min_version": str(MIN_VERSION),
                    "status": "CURRENT",
                    "links": [{"rel": "self", "href": ""}],
                }
            ]
        }
    )
    return response.with_cache_headers(request.version)
