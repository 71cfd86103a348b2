"""Request schemas: bodies and query strings become validated data once, here.

One module per resource holds its JSON schemas; this module holds the
machinery every schema shares.
"""
from __future__ import annotations

import uuid
from typing import Any

import jsonschema

from stowage import errors
from stowage.api.http import Request

FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@FORMAT_CHECKER.checks("uuid")
def is_uuid_like(value: object) -> bool:
    """Accept a UUID with or without dashes, in any case, as upstream does."""
    if not isinstance(value, str):
        return True  # type errors are the 'type' keyword's business
    try:
        return uuid.UUID(value).hex == value.replace("-", "").lower()
    except ValueError:
        return False


_validators: dict[int, jsonschema.protocols.Validator] = {}


def _validator(schema: dict) -> jsonschema.protocols.Validator:
    # Schemas are module constants, so their id() is a stable cache key.
    validator = _validators.get(id(schema))
    if validator is None:
        validator_class = jsonschema.validators.validator_for(schema)
        validator = validator_class(schema, format_checker=FORMAT_CHECKER)
        _validators[id(schema)] = validator
    return validator


def validate(data: Any, schema: dict, what: str = "JSON") -> Any:
    """Return ``data`` if it matches ``schema``; otherwise raise 400.

    The message keeps jsonschema's full wording (including "Failed
    validating ..."), which clients have long matched on.
    """
    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(data))
    if error is not None:
        raise errors.BadRequest(f"{what} does not validate: {error}")
    return data


def load_body(request: Request, schema: dict) -> Any:
    """Parse the JSON body of ``request`` and validate it against ``schema``."""
    return validate(request.json_body(), schema)


def single_query_values(request: Request) -> dict[str, str]:
    """The query string with each parameter's last value (most parameters)."""
    return {name: values[-1] for name, values in request.query.items()}


def validate_query(request: Request, schema: dict) -> dict[str, str]:
    """Validate the single-valued query parameters against ``schema``."""
    query = single_query_values(request)
    try:
        return validate(query, schema, what="Invalid query string parameters")
    except errors.BadRequest as exc:
        raise errors.BadRequest(exc.detail.replace(" does not validate: ", ": ", 1))


def is_uuid(value: str) -> bool:
    return is_uuid_like(value) if isinstance(value, str) else False
