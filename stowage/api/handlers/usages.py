"""usages handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def provider_usages(request: Request, services) -> Response:
    raise errors.NotImplementedYet("provider_usages is not implemented yet.")


def project_usages(request: Request, services) -> Response:
    raise errors.NotImplementedYet("project_usages is not implemented yet.")
