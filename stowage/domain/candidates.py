"""Allocation candidates: check the names a request uses, load the snapshot,
run the engine."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from stowage import errors
from stowage.candidates import reference
from stowage.candidates.request import CandidateRequest, EngineOptions
from stowage.candidates.results import CandidateResult
from stowage.storage.providers import resource_class_ids, trait_ids
from stowage.storage.snapshot import load_snapshot


def find_candidates(
    connection: Connection, request: CandidateRequest, options: EngineOptions
) -> CandidateResult:
    """Candidates for ``request``; 400 if it names an unknown class or trait."""
    check_names(connection, request)
    snapshot = load_snapshot(connection, request.resource_classes)
    return reference.find_candidates(snapshot, request, options)


def check_names(connection: Connection, request: CandidateRequest) -> None:
    """Raise ``BadRequest`` for the first unknown name, in upstream's order:
    root traits, then per group its classes, required and forbidden traits."""
    known_classes = resource_class_ids(connection, request.resource_classes)
    known_traits = trait_ids(connection, request.trait_names)
    _check_traits(sorted(request.root_required | request.root_forbidden), known_traits)
    for group in request.groups:
        for resource_class in group.resource_classes:
            if resource_class not in known_classes:
                raise errors.BadRequest(
                    "Invalid resource class in resources parameter: "
                    f"No such resource class {resource_class}."
                )
        required = [name for any_of in group.required_traits for name in sorted(any_of)]
        _check_traits(required, known_traits)
        _check_traits(sorted(group.forbidden_traits), known_traits)


def _check_traits(names: Iterable[str], known: dict[str, int]) -> None:
    for name in names:
        if name not in known:
            raise errors.BadRequest(f"No such trait(s): {name}.")
