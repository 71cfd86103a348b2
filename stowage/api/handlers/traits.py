"""traits handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_provider_traits(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_provider_traits is not implemented yet.")


def set_provider_traits(request: Request, services) -> Response:
    raise errors.NotImplementedYet("set_provider_traits is not implemented yet.")


def delete_provider_traits(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_provider_traits is not implemented yet.")


def list_traits(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_traits is not implemented yet.")


def show_trait(request: Request, services) -> Response:
    raise errors.NotImplementedYet("show_trait is not implemented yet.")


def create_trait(request: Request, services) -> Response:
    raise errors.NotImplementedYet("create_trait is not implemented yet.")


def delete_trait(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_trait is not implemented yet.")
