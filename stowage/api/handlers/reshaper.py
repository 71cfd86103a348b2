"""POST /reshaper (1.30+): move inventory and allocations between providers atomically."""
from __future__ import annotations

from stowage.api import policy
from stowage.api.handlers.allocations import incomplete_owner
from stowage.api.http import Request, Response, no_content
from stowage.api.schemas.reshaper import reshape_request
from stowage.domain import reshaper as reshaper_domain


def reshape(request: Request, services) -> Response:
    """POST /reshaper: 204; nothing is written unless everything succeeds."""
    services.authorize(request, policy.RESHAPE)
    replacements, allocations = reshape_request(request, incomplete_owner(services))
    reshaper_domain.reshape(services.database, replacements, allocations)
    return no_content()
