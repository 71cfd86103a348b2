"""Trait names, the ``GET /traits`` query and the provider-traits body."""
from __future__ import annotations

from dataclasses import dataclass

from stowage import errors
from stowage.api.http import Request
from stowage.api.schemas import load_body, validate_query, validation_error
from stowage.domain.traits import TraitFilter

MAX_NAME_LENGTH = 255

TRAIT_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}
# PUT /traits/{name}: the path's name, checked as upstream checks it (so a
# trailing newline passes the pattern, as with every jsonschema pattern).
CUSTOM_TRAIT_NAME = {**TRAIT_NAME, "pattern": "^CUSTOM_[A-Z0-9_]+$"}

LIST_QUERY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "associated": {"type": "string"}},
    "additionalProperties": False,
}

PROVIDER_TRAITS_BODY = {
    "type": "object",
    "properties": {
        "traits": {"type": "array", "items": TRAIT_NAME},
        "resource_provider_generation": {"type": "integer"},
    },
    "required": ["traits", "resource_provider_generation"],
    "additionalProperties": False,
}

_NAME_FILTER_FORM = "?name=[in|startswith]:[name1,name2|prefix]"


@dataclass(frozen=True)
class ProviderTraitsUpdate:
    """``PUT /resource_providers/{uuid}/traits``: the new set and the generation seen."""

    names: list[str]
    generation: int


def custom_trait_name(name: str) -> str:
    """``name`` if it may name a custom trait; ``InvalidTraitName`` otherwise."""
    if validation_error(name, CUSTOM_TRAIT_NAME) is not None:
        raise errors.InvalidTraitName(name)
    return name


def trait_filter(request: Request) -> TraitFilter:
    """The filters of ``GET /traits``.

    ``name=in:A,B`` keeps the named traits, ``name=startswith:CUSTOM_`` those
    with the prefix; ``associated=true|false`` (any case) those some / no
    provider has.
    """
    query = validate_query(request, LIST_QUERY)
    names = prefix = associated = None
    if "name" in query:
        operator, separator, value = query["name"].partition(":")
        if not separator or operator not in ("in", "startswith"):
            # Upstream ignores an unknown operator and lists everything; a
            # typo silently widening the result is worse than a 400.
            raise errors.BadRequest(
                "Badly formatted name parameter. Expected name query string "
                f'parameter in form: {_NAME_FILTER_FORM}. Got: "{query["name"]}"'
            )
        if operator == "in":
            names = tuple(value.split(","))
        else:
            prefix = value
    if "associated" in query:
        flag = query["associated"].lower()
        if flag not in ("true", "false"):
            raise errors.BadRequest('The query parameter "associated" only accepts "true" or "false"')
        associated = flag == "true"
    return TraitFilter(names=names, prefix=prefix, associated=associated)


def provider_traits_update(request: Request) -> ProviderTraitsUpdate:
    body = load_body(request, PROVIDER_TRAITS_BODY)
    return ProviderTraitsUpdate(body["traits"], body["resource_provider_generation"])
