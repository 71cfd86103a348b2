"""aggregates handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_aggregates(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_aggregates is not implemented yet.")


def set_aggregates(request: Request, services) -> Response:
    raise errors.NotImplementedYet("set_aggregates is not implemented yet.")
