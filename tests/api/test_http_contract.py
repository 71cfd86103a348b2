"""The HTTP contract every endpoint shares: versions, errors, headers, auth."""
from __future__ import annotations

import pytest

from stowage.api.app import create_app
from tests.support import Client, test_conf


def error_of(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def test_root_document_needs_no_token_and_names_the_version_range(app):
    answer = Client(app, token=None).get("/")
    assert answer.status == 200
    (version,) = answer.json()["versions"]
    assert (version["min_version"], version["max_version"]) == ("1.0", "1.39")
    assert answer.headers["openstack-api-version"] == "placement 1.39"
    assert answer.headers["vary"] == "openstack-api-version"


def test_no_version_header_means_the_minimum_version(app):
    answer = Client(app, version=None).request("GET", "/", headers={})
    assert answer.headers["openstack-api-version"].startswith("placement ")


@pytest.mark.parametrize("header", ["placement 0.5", "placement 1.40", "placement 2.0"])
def test_a_version_outside_the_range_is_406(app, header):
    answer = Client(app).get("/", headers={"openstack-api-version": header})
    assert answer.status == 406
    assert "Unacceptable version header" in error_of(answer)["detail"]


@pytest.mark.parametrize("header", ["placement pony.horse", "placement 1.2.3", "placement 1"])
def test_a_malformed_version_is_400(app, header):
    answer = Client(app).get("/", headers={"openstack-api-version": header})
    assert answer.status == 400
    assert error_of(answer)["title"] == "Bad Request"


@pytest.mark.parametrize(
    "legacy", ["x-openstack-placement-api-version", "openstack-placement-api-version"]
)
def test_a_pre_standard_version_header_is_ignored_as_upstream_does(app, legacy):
    answer = Client(app, version=None).get("/", headers={legacy: "1.15"})
    assert answer.headers["openstack-api-version"] == "placement 1.0"
    assert "last-modified" not in answer.headers


def test_an_unknown_path_is_a_json_404_with_a_request_id(client):
    error = error_of(client.get("/barnabas"))
    assert error["status"] == 404
    assert error["request_id"].startswith("req-")
    assert error["code"] == "placement.undefined_code"


def test_error_codes_appear_only_from_1_23(app):
    before = error_of(Client(app, version="1.22").get("/barnabas"))
    after = error_of(Client(app, version="1.23").get("/barnabas"))
    assert "code" not in before
    assert after["code"] == "placement.undefined_code"


def test_a_method_the_route_lacks_is_405_with_allow_from_the_route_table(client):
    answer = client.delete("/resource_providers")
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, POST"
    assert "The method DELETE is not allowed" in error_of(answer)["detail"]


def test_a_path_below_its_first_microversion_is_404(app):
    assert Client(app, version="1.1").get("/resource_classes").status == 404


def test_requests_without_a_token_are_401_in_webobs_json_form(app):
    answer = Client(app, token=None).get("/resource_providers")
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["title"] == "Unauthorized"


def test_a_plain_user_is_forbidden_by_default_policy(app):
    answer = Client(app, token="someone").get("/resource_providers")
    assert answer.status == 403
    assert "placement:resource_providers:list" in error_of(answer)["detail"]


def test_an_accept_header_without_json_is_406_in_plain_text(client):
    answer = client.get("/resource_providers", headers={"accept": "text/plain"})
    assert answer.status == 406
    assert answer.headers["content-type"] == "text/plain; charset=UTF-8"
    assert answer.body.decode().endswith("Only application/json is provided")


def test_a_body_that_is_not_json_typed_is_415(client):
    answer = client.post(
        "/resource_providers", raw=b"name=x", headers={"content-type": "text/plain"}
    )
    assert answer.status == 415


def test_a_body_without_content_type_is_400(client):
    answer = client.request("POST", "/resource_providers", raw=b"{}", headers={"content-type": ""})
    assert answer.status == 400
    assert "content-type header required" in error_of(answer)["detail"]


def test_a_non_integer_content_length_is_400(client):
    answer = client.request(
        "POST", "/resource_providers", raw=b"{}", headers={"content-length": "hi mom"}
    )
    assert answer.status == 400
    assert "content-length header must be an integer" in error_of(answer)["detail"]


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'{"name": }'])
def test_malformed_json_is_400_and_creates_nothing(client, body):
    answer = client.post("/resource_providers", raw=body)
    assert answer.status == 400
    assert "Malformed JSON" in error_of(answer)["detail"]
    assert client.get("/resource_providers").json()["resource_providers"] == []


def test_a_query_string_that_is_not_utf8_is_400_with_the_codecs_words(client):
    answer = client.get("/resource_providers?name=%ff")
    assert answer.status == 400
    assert answer.json()["errors"][0]["detail"].endswith(
        "Invalid query string parameters: 'utf-8' codec can't decode byte 0xff "
        "in position 0: invalid start byte  "
    )


def test_a_query_string_that_is_not_utf8_is_ignored_where_no_query_is_read(client):
    assert client.get("/?x=%ff").status == 200


def test_an_unexpected_exception_becomes_a_json_500_with_the_request_id(database):
    app = create_app(test_conf(), database)
    database.dispose()

    def broken_write(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    database.write = broken_write  # the one failure injected, local to this app
    answer = Client(app).post("/resource_providers", {"name": "boom"})
    database.write = type(database).write.__get__(database)
    assert answer.status == 500
    error = error_of(answer)
    assert error["title"] == "Internal Server Error"
    assert "disk on fire" not in error["detail"]
    # Every answer carries these, a 500 too.
    assert error["code"] == "placement.undefined_code"
    assert answer.headers["openstack-api-version"] == "placement 1.39"
    assert answer.headers["vary"] == "openstack-api-version"
    assert answer.headers["openstack-request-id"] == error["request_id"]
