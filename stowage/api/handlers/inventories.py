"""inventories handlers."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_inventories(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_inventories is not implemented yet.")


def create_inventory(request: Request, services) -> Response:
    raise errors.NotImplementedYet("create_inventory is not implemented yet.")


def replace_inventories(request: Request, services) -> Response:
    raise errors.NotImplementedYet("replace_inventories is not implemented yet.")


def delete_inventories(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_inventories is not implemented yet.")


def show_inventory(request: Request, services) -> Response:
    raise errors.NotImplementedYet("show_inventory is not implemented yet.")


def update_inventory(request: Request, services) -> Response:
    raise errors.NotImplementedYet("update_inventory is not implemented yet.")


def delete_inventory(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_inventory is not implemented yet.")
