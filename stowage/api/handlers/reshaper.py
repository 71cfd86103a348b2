"""POST /reshaper (issue: allocations and candidates)."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def reshape(request: Request, services) -> Response:
    raise errors.NotImplementedYet("reshape is not implemented yet.")
