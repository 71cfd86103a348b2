"""Request schemas: bodies and query strings become validated data once, here.

One module per resource holds its JSON schemas; this module holds the
machinery every schema shares.

A failed validation answers 400 with jsonschema's whole message, which prints
the failing schema fragment in its key order. So every schema here equals
upstream's, down to key order and keywords that do nothing (the
``tests/conformance/test_schemas.py`` spec holds each pair side by side).
Treat schemas as read-only: validators are cached per schema object.
"""
from __future__ import annotations

import uuid
from typing import Any

# jsonschema ships no type information, and its stubs (types-jsonschema)
# are not among the project's dependencies.
import jsonschema

from stowage import errors
from stowage.api.http import BODY_LEAD, QUERY_LEAD, Request
from stowage.api.versions import Version


def is_uuid(value: object) -> bool:
    """oslo.utils' ``is_uuid_like``, which upstream applies to bodies and paths.

    Any case, dashes anywhere or none, and the ``urn:``, ``uuid:`` and brace
    decorations ``uuid.UUID`` accepts; anything but a string is not a uuid.
    """
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    bare = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    return parsed.hex == bare


# Bodies: every jsonschema format, with upstream's own reading of "uuid".
BODY_FORMATS = jsonschema.FormatChecker()
BODY_FORMATS.checks("uuid")(is_uuid)
# Query strings: upstream checks them with jsonschema's stock formats, whose
# "uuid" wants the dashed form.
QUERY_FORMATS = jsonschema.FormatChecker()

_validators: dict[tuple[int, int], tuple[dict, jsonschema.protocols.Validator]] = {}


def _validator(schema: dict, formats: jsonschema.FormatChecker) -> jsonschema.protocols.Validator:
    # Keyed by identity; the entry keeps the schema alive, so its id() cannot
    # be reused by another object. Schema selectors return long-lived objects
    # (one per shape), which keeps this cache small.
    key = (id(schema), id(formats))
    cached = _validators.get(key)
    if cached is None or cached[0] is not schema:
        validator_class = jsonschema.validators.validator_for(schema)
        cached = (schema, validator_class(schema, format_checker=formats))
        _validators[key] = cached
    return cached[1]


def by_version(table: tuple[tuple[Version, dict], ...], version: Version) -> dict:
    """The schema of ``table``'s newest entry introduced at or before ``version``.

    ``table`` lists ``(since, schema)`` newest first; a ``version`` older
    than its oldest entry (an endpoint's own minimum) is a ``LookupError``.
    """
    for since, schema in table:
        if version >= since:
            return schema
    raise LookupError(f"no schema at microversion {version}")


def validation_error(
    data: Any, schema: dict, formats: jsonschema.FormatChecker = BODY_FORMATS
) -> jsonschema.ValidationError | None:
    """The error jsonschema's ``validate`` would raise (its ``best_match``), if any,
    quoting at most an excerpt of a long instance."""
    error = jsonschema.exceptions.best_match(_validator(schema, formats).iter_errors(data))
    if error is not None:
        quoted = repr(error.instance)
        if len(quoted) > _EXCERPT:
            excerpt = _Excerpt(f"{quoted[:_EXCERPT]}... ({len(quoted):,} characters)")
            error.message = error.message.replace(quoted, repr(excerpt))
            error.instance = excerpt
    return error


# How much of a failing value an error quotes: upstream quotes it whole,
# which for the bodies clients send is a few hundred characters; past this
# the text is cut (docs/conformance.md).
_EXCERPT = 4096


class _Excerpt(str):
    """The start of a long value's text, which an error quotes as it is."""

    def __repr__(self) -> str:
        return str(self)


def validate(data: Any, schema: dict) -> Any:
    """Return the body ``data`` if it matches ``schema``; otherwise raise 400.

    The message is upstream's: "JSON does not validate: " and jsonschema's
    full text (including "Failed validating ...").
    """
    error = validation_error(data, schema)
    if error is not None:
        raise errors.BadRequest(f"{BODY_LEAD}{error}")
    return data


def load_body(request: Request, schema: dict) -> Any:
    """Parse the JSON body of ``request`` and validate it against ``schema``."""
    return validate(request.json_body(), schema)


def single_query_values(request: Request) -> dict[str, str]:
    """The query string with each parameter's last value (most parameters)."""
    return {name: values[-1] for name, values in request.query.items()}


def validate_query(request: Request, schema: dict) -> dict[str, str]:
    """Validate the single-valued query parameters against ``schema``.

    The 400 reads "Invalid query string parameters: " and jsonschema's full
    text, as upstream's ``validate_query_params``.
    """
    query = single_query_values(request)
    validate_value(query, schema)
    return query


def validate_value(value: Any, schema: dict) -> None:
    """400 worded as ``validate_query``'s unless ``value`` (the query, or one
    parameter's value against that parameter's part of a query schema)
    matches ``schema``."""
    error = validation_error(value, schema, QUERY_FORMATS)
    if error is not None:
        raise errors.BadRequest(f"{QUERY_LEAD}{error}")
