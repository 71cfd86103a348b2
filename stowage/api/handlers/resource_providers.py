"""resource_providers handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_providers(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_providers is not implemented yet.")


def create_provider(request: Request, services) -> Response:
    raise errors.NotImplementedYet("create_provider is not implemented yet.")


def show_provider(request: Request, services) -> Response:
    raise errors.NotImplementedYet("show_provider is not implemented yet.")


def update_provider(request: Request, services) -> Response:
    raise errors.NotImplementedYet("update_provider is not implemented yet.")


def delete_provider(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_provider is not implemented yet.")
