"""Spec: the OpenAPI 3.1 description covers exactly the routes, methods and
microversions served, is a valid document at every microversion, is served
without a token, and is kept in docs/openapi.json.

That the description matches the answers themselves is checked on every
request the API tests and the gabbi suite make (``tests.contract``); the
last tests here show that check can fail.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate

from stowage.api import openapi
from stowage.api.openapi.operations import OPERATIONS
from stowage.api.routes import ROUTES
from stowage.api.versions import MAX_VERSION, MIN_VERSION, Version
from stowage.cmd.main import main
from tests.contract import ContractBroken
from tests.support import Client

DOCUMENT = Path(__file__).parents[2] / "docs" / "openapi.json"
VERSIONS = [Version(1, minor) for minor in range(MIN_VERSION.minor, MAX_VERSION.minor + 1)]


def test_every_route_and_method_is_described_once():
    served = {(route.template, method) for route in ROUTES for method in route.methods}
    assert set(OPERATIONS) == served


@pytest.mark.parametrize("version", VERSIONS, ids=str)
def test_each_microversion_has_a_valid_document_of_what_it_serves(version):
    document = openapi.describe(version)
    validate(document)
    described = {
        (template, method.upper()) for template, item in document["paths"].items() for method in item
    }
    served = {
        (route.template, method)
        for route in ROUTES
        for method, endpoint in route.methods.items()
        if version >= endpoint.min_version
    }
    assert described == served
    operation_ids = Counter(
        operation["operationId"] for item in document["paths"].values() for operation in item.values()
    )
    assert [name for name, count in operation_ids.items() if count > 1] == []
    assert document["info"]["version"] == str(version)


def test_microversion_specific_shapes_differ_where_the_api_does():
    old, new = openapi.describe(Version(1, 13)), openapi.describe(Version(1, 14))
    provider = "/resource_providers/{uuid}"
    old_answer = old["paths"][provider]["get"]["responses"]["200"]["content"]["application/json"]
    new_answer = new["paths"][provider]["get"]["responses"]["200"]["content"]["application/json"]
    assert "root_provider_uuid" not in old_answer["schema"]["properties"]
    assert "root_provider_uuid" in new_answer["schema"]["required"]
    # Query parameters appear with their microversions; granular request
    # groups (1.25) as suffixed ones.
    def names(version: Version) -> set[str]:
        operation = openapi.describe(version)["paths"]["/allocation_candidates"]["get"]
        return {parameter["name"] for parameter in operation["parameters"]}

    assert {"resources", "limit", "required"} <= names(Version(1, 17))
    assert "member_of" not in names(Version(1, 17))
    assert "member_of" in names(Version(1, 21))
    assert "resources1" not in names(Version(1, 24))
    assert {"resources1", "required1", "group_policy"} <= names(Version(1, 25))


def test_the_service_serves_its_description_without_a_token(client):
    anonymous = Client(client.app, token=None, version=None)
    answer = anonymous.get(openapi.PATH)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == openapi.describe(MAX_VERSION)
    # Any other path still needs one.
    assert anonymous.get("/resource_providers").status == 401


@pytest.mark.parametrize("version", ["1.0", "1.14", "1.39"])
def test_the_served_description_follows_the_asked_microversion(client, version):
    answer = Client(client.app, version=version).get(openapi.PATH)
    assert answer.status == 200
    assert answer.headers["openstack-api-version"] == f"placement {version}"
    assert answer.json() == openapi.describe(Version.parse(version))


def test_an_unserved_microversion_is_refused(client):
    answer = Client(client.app, version="1.99").get(openapi.PATH)
    assert answer.status == 406
    assert answer.json()["errors"][0]["max_version"] == str(MAX_VERSION)


def test_docs_openapi_json_is_the_newest_description():
    assert DOCUMENT.read_bytes() == openapi.document_text(MAX_VERSION), (
        "docs/openapi.json is stale: stowage openapi > docs/openapi.json"
    )


def test_the_command_prints_one_microversion(capsysbinary):
    assert main(["openapi", "--microversion", "1.20"]) == 0
    assert orjson.loads(capsysbinary.readouterr().out) == openapi.describe(Version(1, 20))


def test_the_command_refuses_an_unserved_microversion(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["openapi", "--microversion", "1.40"])
    assert exited.value.code == 2
    assert "1.40 is not served" in capsys.readouterr().err


def _answering(status: str, body: bytes):
    def application(environ, start_response):
        start_response(status, [
            ("content-type", "application/json"),
            ("openstack-api-version", "placement 1.39"),
        ])
        return [body]

    return application


PROVIDER = {
    "uuid": "2b7a4a35-3ba2-4b48-8bbc-0d2a1c2a9a11",
    "name": "cn1",
    "generation": 0,
    "links": [],
    "parent_provider_uuid": None,
    "root_provider_uuid": "2b7a4a35-3ba2-4b48-8bbc-0d2a1c2a9a11",
}


def test_the_contract_check_passes_a_described_answer():
    client = Client(_answering("200 OK", orjson.dumps(PROVIDER)))
    assert client.get(f"/resource_providers/{PROVIDER['uuid']}").status == 200


@pytest.mark.parametrize(
    ("status", "body", "complaint"),
    [
        ("200 OK", {**PROVIDER, "colour": "red"}, "Additional properties"),
        ("200 OK", {key: value for key, value in PROVIDER.items() if key != "generation"},
         "'generation' is a required property"),
        ("200 OK", {**PROVIDER, "uuid": "not-a-uuid"}, "is not a 'uuid'"),
        ("418 I'm a teapot", {"errors": []}, "status 418 is not described"),
        ("404 Not Found", {"error": "gone"}, "breaks the description"),
    ],
)
def test_the_contract_check_catches_an_undescribed_answer(status, body, complaint):
    client = Client(_answering(status, orjson.dumps(body)))
    with pytest.raises(ContractBroken, match=complaint):
        client.get(f"/resource_providers/{PROVIDER['uuid']}")

