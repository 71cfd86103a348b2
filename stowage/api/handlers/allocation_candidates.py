"""GET /allocation_candidates (issue: allocations and candidates)."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_candidates(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_candidates is not implemented yet.")
