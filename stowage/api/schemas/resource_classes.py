"""Bodies of the resource class endpoints (and the 1.7+ name in the path)."""
from __future__ import annotations

from stowage.api.http import Request
from stowage.api.schemas import load_body, validate

# Only custom classes can be created or renamed.
CUSTOM_RESOURCE_CLASS_PATTERN = "^CUSTOM_[A-Z0-9_]+$"

# POST /resource_classes, and PUT /resource_classes/{name} at 1.2 - 1.6.
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

    Upstream validates ``{"name": <path name>}`` against the body schema, so
    the 400s read "JSON does not validate: ... Failed validating 'pattern'".
    """
    return validate({"name": name}, NAMED)["name"]
