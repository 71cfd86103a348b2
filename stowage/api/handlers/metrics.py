"""GET /metrics: Prometheus' text format, for ``[stowage] metrics_access``.

``admin`` (the default): callers whose token passes the ``admin_api``
policy rule; ``anyone``: also callers without a token; ``nobody``: 404, as
if there were no such path. The metrics themselves: ``stowage.api.metrics``.
"""
from __future__ import annotations

from stowage import errors
from stowage.api.handlers.health import ADMIN_RULE
from stowage.api.http import Request, Response

PATH = "/metrics"
ADMIN, ANYONE, NOBODY = "admin", "anyone", "nobody"


def exposition(request: Request, services) -> Response:
    """Every worker's metrics summed, in the format Accept asks for
    (Prometheus' text format 0.0.4 by default, or OpenMetrics)."""
    access = services.conf.stowage.metrics_access
    if access == NOBODY:
        raise errors.NotFound("")
    if access == ADMIN:
        if request.context.user_id is None:
            raise errors.Unauthorized("Reading metrics needs an administrator's token.")
        services.authorize(request, ADMIN_RULE, target={})
    body, media_type = services.metrics.exposition(request.environ.get("HTTP_ACCEPT", ""))
    return Response(body=body, content_type=media_type)
