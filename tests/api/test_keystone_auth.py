"""With [api] auth_strategy = keystone, keystonemiddleware guards every path but /.

No Keystone runs here: ``[keystone_authtoken]`` is complete (an auth plugin
and a service user's credentials) but points at a loopback port nobody
listens on. Requests without a token are turned away locally; a request
with one finds Keystone unreachable. A section that could never validate a
token (``www_authenticate_uri`` alone, say) builds no app at all.
tests/keystone runs the same against a real Keystone.
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stowage.api import auth
from stowage.api.app import create_app
from stowage.conf import build_conf
from tests.support import Client

# keystonemiddleware's own answer to a request it cannot authenticate.
KEYSTONEMIDDLEWARE_401 = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that refuses connections (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keystone_conf(directory: Path, authtoken: str):
    """The config of a placement.conf saying auth_strategy = keystone and ``authtoken``."""
    path = directory / "placement.conf"
    path.write_text(f"[api]\nauth_strategy = keystone\n[keystone_authtoken]\n{authtoken}")
    return build_conf(config_files=[str(path)])


def unreachable_keystone_section() -> str:
    """A complete [keystone_authtoken] for a Keystone that is not there."""
    keystone = f"http://127.0.0.1:{closed_loopback_port()}/v3"
    return (
        f"www_authenticate_uri = {keystone}\n"
        "auth_type = password\n"
        f"auth_url = {keystone}\n"
        "username = placement\n"
        "user_domain_name = Default\n"
        "password = secret\n"
        "project_name = service\n"
        "project_domain_name = Default\n"
        # One attempt per request, not keystoneauth's retries with backoff.
        "http_request_max_retries = 0\n"
    )


@pytest.fixture
def keystone_app(database, tmp_path):
    return create_app(keystone_conf(tmp_path, unreachable_keystone_section()), database)


def test_the_root_document_is_served_without_a_token(keystone_app):
    answer = Client(keystone_app, token=None).get("/")
    assert answer.status == 200
    assert answer.json()["versions"][0]["max_version"] == "1.39"


def test_the_apis_description_is_served_without_a_token(keystone_app):
    answer = Client(keystone_app, token=None, version=None).get("/stowage/openapi.json")
    assert answer.status == 200
    assert answer.json()["info"]["version"] == "1.39"


def test_a_request_without_a_token_gets_keystonemiddlewares_401(keystone_app):
    answer = Client(keystone_app, token=None).get("/resource_providers")
    assert answer.status == 401
    assert answer.json() == KEYSTONEMIDDLEWARE_401
    assert answer.headers["www-authenticate"].startswith('Keystone uri="http://127.0.0.1:')


def test_keystone_identity_headers_are_not_trusted_without_a_token(keystone_app):
    forged = {"x-user-id": "mallory", "x-project-id": "p", "x-roles": "admin", "x-identity-status": "Confirmed"}
    answer = Client(keystone_app, token=None).get("/resource_providers", headers=forged)
    assert answer.status == 401


def test_a_token_keystone_cannot_be_asked_about_gets_placements_503_not_a_500(keystone_app):
    answer = Client(keystone_app, token="a-token-nobody-can-check").get("/resource_providers")
    assert answer.status == 503
    assert answer.headers["content-type"] == "application/json"
    [error] = answer.json()["errors"]
    assert (error["status"], error["title"]) == (503, "Service Unavailable")
    assert auth.KEYSTONE_UNAVAILABLE in error["detail"]
    assert error["request_id"] == answer.headers["x-openstack-request-id"]


def test_www_authenticate_uri_alone_builds_no_app(database, tmp_path):
    conf = keystone_conf(tmp_path, "www_authenticate_uri = http://127.0.0.1:5000/v3\n")
    with pytest.raises(auth.KeystoneConfigError, match="auth_type is not set"):
        create_app(conf, database)
