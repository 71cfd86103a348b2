"""resource_classes handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_classes(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_classes is not implemented yet.")


def create_class(request: Request, services) -> Response:
    raise errors.NotImplementedYet("create_class is not implemented yet.")


def show_class(request: Request, services) -> Response:
    raise errors.NotImplementedYet("show_class is not implemented yet.")


def update_class(request: Request, services) -> Response:
    raise errors.NotImplementedYet("update_class is not implemented yet.")


def delete_class(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_class is not implemented yet.")
