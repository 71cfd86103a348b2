"""Bodies of the resource class endpoints (and the 1.7+ name in the path)."""
from __future__ import annotations

import json

from stowage import errors
from stowage.api.http import Request
from stowage.api.schemas import load_body, validate

# Only custom classes can be created or renamed.
CUSTOM_RESOURCE_CLASS_PATTERN = "^CUSTOM_[A-Z0-9_]+$"

# POST /resource_classes, PUT /resource_classes/{name} at 1.2 - 1.6, and
# the name in the path of the 1.7+ bodiless PUT.
NAMED = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": CUSTOM_RESOURCE_CLASS_PATTERN, "maxLength": 255},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def class_name_from_body(request: Request) -> str:
    return load_body(request, NAMED)["name"]


def class_name_from_path(name: str) -> str:
    """The 1.7+ bodiless PUT: the path's name is checked as a body would be.

    Upstream pastes the name into the JSON text ``{"name": "<name>"}`` and
    validates that, so the 400s read "JSON does not validate: ... Failed
    validating 'pattern'", and a name with a double quote is "Malformed
    JSON". A name whose JSON escapes decode to a valid one is still refused.
    """
    try:
        body = json.loads(f'{{"name": "{name}"}}')
    except ValueError as exc:
        raise errors.BadRequest(f"Malformed JSON: {exc}") from None
    validate(body, NAMED)
    if body["name"] != name:
        validate({"name": name}, NAMED)
    return name
