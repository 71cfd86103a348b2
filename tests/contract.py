"""Every answer the tests get, held to the API's OpenAPI description.

``Described`` wraps a WSGI app: each answer's status must be one its
operation documents at the answer's microversion, and its JSON body must
match the documented schema. Wrapped around the apps of the gabbi
conformance suite and of ``tests.support.Client``, it checks the description
against several thousand real answers on every backend.
"""
from __future__ import annotations

import functools

import jsonschema
import orjson

from stowage.api import openapi
from stowage.api.openapi import answers
from stowage.api.routes import ROUTES, Router
from stowage.api.versions import Version

_ROUTER = Router(ROUTES)
_FORMATS = jsonschema.FormatChecker()


class ContractBroken(AssertionError):
    """An answer the description does not allow."""


@functools.cache
def _description(version: Version) -> dict:
    return openapi.describe(version)


@functools.cache
def _validator(key: tuple[Version, str, str, str]) -> jsonschema.protocols.Validator | None:
    version, template, method, status = key
    operation = _description(version)["paths"][template][method]
    response = operation["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        response = _description(version)["components"]["responses"][name]
    content = response.get("content")
    if content is None:
        return None
    if "application/json" not in content:
        # Text only (Prometheus' format): nothing to validate but its type.
        return _TEXT
    return jsonschema.Draft202012Validator(
        content["application/json"]["schema"], format_checker=_FORMATS
    )


# A validator standing for an answer described as text, not JSON.
_TEXT = jsonschema.Draft202012Validator({"type": "string"})


_ERROR_VALIDATOR = jsonschema.Draft202012Validator(answers.ERROR, format_checker=_FORMATS)
# A 401 comes before a microversion is negotiated, in its own form.
_UNAUTHORIZED_VALIDATOR = jsonschema.Draft202012Validator(
    answers.UNAUTHORIZED, format_checker=_FORMATS
)


def check_answer(
    method: str, path: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    """Raise ``ContractBroken`` unless the answer is one the description allows."""
    if method in ("HEAD", "OPTIONS"):
        # No body to check; OPTIONS is CORS middleware's, not the API's.
        return
    is_json = headers.get("content-type", "").startswith("application/json")
    version_header = headers.get("openstack-api-version", "")
    matched = _ROUTER.match(path)
    operation = None
    if matched and version_header.startswith("placement "):
        version = Version.parse(version_header.split()[1])
        item = _description(version)["paths"].get(matched[0].template, {})
        operation = item.get(method.lower())
    if operation is None or status == 500:
        # No route, method or microversion to describe the answer (or a
        # 500 a test provoked on purpose): it must be an error all the same.
        if status < 400:
            raise ContractBroken(f"{method} {path}: {status} from no described operation")
        if is_json:
            validator = _UNAUTHORIZED_VALIDATOR if status == 401 else _ERROR_VALIDATOR
            _validate(validator, body, method, path, status)
        return
    assert matched is not None
    if str(status) not in operation["responses"]:
        raise ContractBroken(
            f"{method} {path} at {version}: status {status} is not described "
            f"(described: {', '.join(operation['responses'])})"
        )
    validator = _validator((version, matched[0].template, method.lower(), str(status)))
    if validator is None:
        if body:
            raise ContractBroken(f"{method} {path} at {version}: {status} has a body")
        return
    if validator is _TEXT:
        if is_json:
            raise ContractBroken(f"{method} {path} at {version}: {status} is JSON, not text")
        return
    if not is_json:
        # An error in the HTML or plain text a client's Accept asked for.
        if status >= 400:
            return
        raise ContractBroken(f"{method} {path} at {version}: {status} is not JSON")
    _validate(validator, body, method, path, status)


def _validate(validator, body: bytes, method: str, path: str, status: int) -> None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ContractBroken(f"{method} {path}: {status} body is not JSON: {error}") from None
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise ContractBroken(f"{method} {path}: {status} body breaks the description: {error}")


class Described:
    """A WSGI app whose every answer is checked by ``check_answer``."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = {name.lower(): value for name, value in headers}
            return start_response(status, headers, exc_info)

        chunks = self.application(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        check_answer(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            captured["status"],
            captured["headers"],
            body,
        )
        return [body]
