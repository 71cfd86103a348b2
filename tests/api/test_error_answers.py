"""Error answers exactly as upstream's clients read them.

The texts, formats and headers are the ones upstream Placement 16.0.0 sends
(seen side by side); clients such as osc-placement print the last line of a
detail, and parse the version range out of a 406.
"""
from __future__ import annotations

import pytest

from tests.support import Client

PROVIDER = "9f6b67b5-3d4d-4b8d-9c4b-2a1cf20a1a11"
BAD_REQUEST = "The server could not comply with the request since it is either malformed or otherwise incorrect."


def only_error(answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    return error


def last_line(error: dict) -> str:
    """What osc-placement shows of an error."""
    return error["detail"].splitlines()[-1]


def test_a_schema_violation_is_explained_on_one_line(app):
    answer = Client(app, version="1.2").post("/resource_classes", {"name": "fake_class"})
    assert answer.status == 400
    explanation, detail = only_error(answer)["detail"].split("\n\n")
    assert explanation == BAD_REQUEST
    assert detail == (
        " JSON does not validate: 'fake_class' does not match '^CUSTOM_[A-Z0-9_]+$'  "
        "Failed validating 'pattern' in schema['properties']['name']:     "
        "{'type': 'string', 'pattern': '^CUSTOM_[A-Z0-9_]+$', 'maxLength': 255}  "
        "On instance['name']:     'fake_class'  "
    )


def test_an_aggregate_that_is_not_a_uuid_is_named_on_the_last_line(client):
    client.post("/resource_providers", {"name": "rp", "uuid": PROVIDER})
    answer = Client(client.app, version="1.1").put(
        f"/resource_providers/{PROVIDER}/aggregates", ["abc"]
    )
    assert answer.status == 400
    assert last_line(only_error(answer)).startswith(
        " JSON does not validate: 'abc' is not a 'uuid'"
    )


@pytest.mark.parametrize("asked", ["1.40", "2.0"])
def test_an_unacceptable_version_names_the_range_without_version_headers(app, asked):
    answer = Client(app, version=asked).get("/resource_providers")
    assert answer.status == 406
    assert "openstack-api-version" not in answer.headers
    assert "vary" not in answer.headers
    error = only_error(answer)
    assert (error["min_version"], error["max_version"]) == ("1.0", "1.39")
    assert "code" not in error
    assert error["detail"] == (
        "The resource could not be generated that was acceptable to your browser "
        "(content of type application/json. \n\n"
        f" Invalid microversion: Unacceptable version header: {asked}"
    )


def test_an_unparsable_version_is_400_without_version_headers(app):
    answer = Client(app, version="1.x").get("/resource_providers")
    assert answer.status == 400
    assert "openstack-api-version" not in answer.headers
    error = only_error(answer)
    assert "min_version" not in error
    assert error["detail"].endswith("Invalid microversion: invalid version string: 1.x; "
                                    "invalid literal for int() with base 10: 'x'  ")


def test_a_non_json_accept_gets_a_plain_text_406(client):
    answer = client.get("/resource_providers", headers={"accept": "text/plain"})
    assert answer.status == 406
    assert answer.headers["content-type"] == "text/plain; charset=UTF-8"
    assert answer.headers["vary"] == "openstack-api-version"
    assert answer.body.decode() == (
        "406 Not Acceptable\n\n"
        "The resource could not be generated that was acceptable to your browser "
        "(content of type text/plain. \n\n Only application/json is provided"
    )


def test_an_html_accept_gets_an_html_error(client):
    answer = client.get("/resource_providers", headers={"accept": "text/html"})
    assert answer.headers["content-type"] == "text/html; charset=UTF-8"
    assert answer.body.decode().startswith(
        "<html>\n <head>\n  <title>406 Not Acceptable</title>\n </head>\n <body>\n"
    )


def test_a_missing_token_under_noauth2_gets_webobs_json_401(app):
    answer = Client(app, token=None).get("/resource_providers")
    assert answer.status == 401
    assert "openstack-api-version" not in answer.headers
    assert answer.headers["x-openstack-request-id"].startswith("req-")
    assert answer.json() == {
        "message": "This server could not verify that you are authorized to access the "
        "document you requested. Either you supplied the wrong credentials (e.g., bad "
        "password), or your browser does not understand how to supply the credentials "
        "required.<br /><br />\n\n\n",
        "code": "401 Unauthorized",
        "title": "Unauthorized",
    }


# Where upstream's handler answers, errors carry vary; where an outer layer
# does (unknown paths, policy, lookups its handlers let escape), they do not.
@pytest.mark.parametrize(
    ("method", "path", "varies"),
    [
        ("GET", "/nothing/here", False),
        ("GET", f"/resource_providers/{PROVIDER}", False),
        ("PUT", f"/resource_providers/{PROVIDER}/traits", False),
        ("GET", "/resource_classes/CUSTOM_MISSING", False),
        ("DELETE", f"/resource_providers/{PROVIDER}", True),
        ("GET", f"/resource_providers/{PROVIDER}/inventories", True),
        ("GET", "/traits/CUSTOM_MISSING", True),
        ("PATCH", "/resource_providers", True),
    ],
)
def test_vary_follows_the_layer_that_answered(client, method, path, varies):
    body = {"traits": [], "resource_provider_generation": 0} if method == "PUT" else None
    answer = client.request(method, path, body)
    assert answer.status in (404, 405)
    assert answer.headers["openstack-api-version"] == "placement 1.39"
    assert ("vary" in answer.headers) is varies


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/inventories", "No resource provider with uuid {0} found : No resource provider with uuid {0} found"),
        ("/inventories/VCPU", "No resource provider with uuid {0} found : No resource provider with uuid {0} found"),
        ("/usages", "No resource provider with uuid {0} found: No resource provider with uuid {0} found"),
        ("/traits", "No resource provider with uuid {0} found: No resource provider with uuid {0} found"),
        ("/allocations", "Resource provider '{0}' not found: No resource provider with uuid {0} found"),
        ("", "No resource provider with uuid {0} found"),
    ],
)
def test_a_missing_provider_is_reported_in_each_readers_words(client, path, detail):
    answer = client.get(f"/resource_providers/{PROVIDER}{path}")
    assert answer.status == 404
    assert only_error(answer)["detail"] == (
        f"The resource could not be found.\n\n {detail.format(PROVIDER)}  "
    )


def test_the_allow_header_lists_methods_in_upstreams_order(client):
    answer = client.request("POST", f"/resource_providers/{PROVIDER}", {})
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, DELETE, PUT"
    assert only_error(answer)["detail"] == (
        "The method POST is not allowed for this resource. \n\n"
        " The method specified is not allowed for this resource."
    )


def test_delete_of_all_inventory_before_1_5_is_405_without_allow(app):
    answer = Client(app, version="1.4").delete(f"/resource_providers/{PROVIDER}/inventories")
    assert answer.status == 405
    assert "allow" not in answer.headers


def test_a_415_names_the_content_type_sent(client):
    answer = client.post(
        "/resource_providers", raw=b"{}", headers={"content-type": "text/plain; x=y"}
    )
    assert answer.status == 415
    assert only_error(answer)["detail"] == (
        "The request media type text/plain; x=y is not supported by this server. \n\n"
        " The media type text/plain is not supported, use application/json"
    )


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"name": ', "Malformed JSON: Expecting value: line 1 column 10 (char 9)"),
        # NaN is JSON to upstream's parser: the schema refuses it instead.
        (b'{"name": NaN}', "JSON does not validate: nan is not of type 'string'"),
    ],
)
def test_bodies_are_read_as_upstreams_json_parser_reads_them(client, raw, detail):
    answer = client.post("/resource_providers", raw=raw)
    assert answer.status == 400
    assert only_error(answer)["detail"].startswith(f"{BAD_REQUEST}\n\n {detail}")


@pytest.mark.parametrize("path", ["/", "/resource_providers"])
def test_a_head_request_is_a_bare_405(client, path):
    answer = client.request("HEAD", path)
    assert (answer.status, answer.body) == (405, b"")
    assert answer.headers["content-type"] == "text/html; charset=UTF-8"
    assert answer.headers["content-length"] == "0"
    assert answer.headers["allow"] in ("GET", "GET, POST")


def test_every_answer_carries_upstreams_request_id_header(client):
    for answer in (client.get("/"), client.get("/resource_providers"), client.get("/nothing")):
        assert answer.headers["x-openstack-request-id"].startswith("req-")
