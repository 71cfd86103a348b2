"""Allocations of consumers (issue: allocations and candidates)."""
from __future__ import annotations

from stowage import errors
from stowage.api.http import Request, Response


def list_provider_allocations(request: Request, services) -> Response:
    raise errors.NotImplementedYet("list_provider_allocations is not implemented yet.")


def post_allocations(request: Request, services) -> Response:
    raise errors.NotImplementedYet("post_allocations is not implemented yet.")


def show_allocations(request: Request, services) -> Response:
    raise errors.NotImplementedYet("show_allocations is not implemented yet.")


def put_allocations(request: Request, services) -> Response:
    raise errors.NotImplementedYet("put_allocations is not implemented yet.")


def delete_allocations(request: Request, services) -> Response:
    raise errors.NotImplementedYet("delete_allocations is not implemented yet.")
