"""With [api] auth_strategy = keystone, keystonemiddleware guards every path but /."""
from __future__ import annotations

from stowage.api.app import create_app
from tests.support import Client, test_conf


def keystone_app(database):
    conf = test_conf(
        api={"auth_strategy": "keystone"},
        keystone_authtoken={"www_authenticate_uri": "http://127.0.0.1:5000/v3"},
    )
    # An operator's [keystone_authtoken] section; no Keystone is reachable
    # here, so only token-less requests (rejected locally) are exercised.
    return create_app(conf, database)


def test_the_root_document_is_served_without_a_token(database):
    answer = Client(keystone_app(database), token=None).get("/")
    assert answer.status == 200
    assert answer.json()["versions"][0]["max_version"] == "1.39"


def test_a_request_without_a_token_is_rejected_with_401(database):
    answer = Client(keystone_app(database), token=None).get("/resource_providers")
    assert answer.status == 401
    assert "www-authenticate" in answer.headers


def test_keystone_identity_headers_are_not_trusted_without_a_token(database):
    forged = {"x-user-id": "mallory", "x-project-id": "p", "x-roles": "admin", "x-identity-status": "Confirmed"}
    answer = Client(keystone_app(database), token=None).get("/resource_providers", headers=forged)
    assert answer.status == 401
