"""Stowage validates Keystone's tokens through keystonemiddleware.

Every user's real token gets past authentication on both served Stowages; a
token Keystone never issued, or one revoked through Keystone, gets
keystonemiddleware's own 401 with the ``WWW-Authenticate`` header naming
Keystone. When Keystone turns Stowage's service user away, each request is
Placement's 503, never a 500.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from stowage.api import auth
from stowage.api.app import create_app
from stowage.conf import build_conf
from tests.keystone.conftest import (
    ADMIN,
    CATALOG_MODE,
    PROJECT_MEMBER,
    PROJECT_READER,
    SERVICE_USER,
    KeystoneCloud,
    stowage_settings,
)
from tests.keystone.served_keystone import REQUEST_TIMEOUT_SECONDS, Account, Token
from tests.support import Client, open_test_database

KEYSTONEMIDDLEWARE_401 = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}
ACCOUNTS = {account.name: account for account in (ADMIN, PROJECT_MEMBER, PROJECT_READER, SERVICE_USER)}


def get(endpoint: str, path: str, token: str) -> requests.Response:
    return requests.get(
        endpoint + path,
        headers={"x-auth-token": token, "openstack-api-version": "placement latest"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_every_users_token_gets_past_authentication_on_both_stowages(
    keystone_cloud: KeystoneCloud, name: str
):
    token = keystone_cloud.token(ACCOUNTS[name])
    for mode, served in keystone_cloud.stowages.items():
        # Allowed or not by policy, but known: a 401 would mean not validated.
        answer = get(served.endpoint, f"/usages?project_id={token.project_id}", token.id)
        assert answer.status_code in (200, 403), (mode, answer.text)


def test_a_token_keystone_never_issued_gets_keystonemiddlewares_401(keystone_cloud: KeystoneCloud):
    answer = get(keystone_cloud.catalog_stowage.endpoint, "/resource_providers", "not-a-token")
    assert answer.status_code == 401
    assert answer.json() == KEYSTONEMIDDLEWARE_401
    assert answer.headers["www-authenticate"] == f'Keystone uri="{keystone_cloud.keystone.url}"'


def test_a_token_revoked_through_keystone_gets_keystonemiddlewares_401(keystone_cloud: KeystoneCloud):
    legacy, secure = keystone_cloud.stowages["legacy"], keystone_cloud.catalog_stowage
    token = keystone_cloud.fresh_token(PROJECT_READER)
    # Good until revoked. Asked of the legacy Stowage: the one that is asked
    # afterwards has not cached the token's validity (keystonemiddleware
    # keeps it for [keystone_authtoken] token_cache_time).
    assert get(legacy.endpoint, f"/usages?project_id={token.project_id}", token.id).status_code == 200

    keystone_cloud.identity.revoke(by=keystone_cloud.token(ADMIN), token=token)

    answer = get(secure.endpoint, f"/usages?project_id={token.project_id}", token.id)
    assert answer.status_code == 401
    assert answer.json() == KEYSTONEMIDDLEWARE_401
    assert answer.headers["www-authenticate"] == f'Keystone uri="{keystone_cloud.keystone.url}"'


@pytest.fixture(scope="module")
def sqlite_database():
    """SQLite, as for the served Stowages (see conftest)."""
    database = open_test_database("sqlite")
    yield database
    database.dispose()


def stowage_logging_in_as(tmp_path: Path, keystone_url: str, service_user: Account, database):
    """An in-process app whose [keystone_authtoken] logs in as ``service_user``."""
    path = tmp_path / "placement.conf"
    path.write_text(stowage_settings(keystone_url, CATALOG_MODE, service_user))
    return create_app(build_conf(config_files=[str(path)]), database)


@pytest.mark.parametrize(
    "service_user",
    [
        pytest.param(Account(SERVICE_USER.name, "a-wrong-password", SERVICE_USER.project), id="wrong-password"),
        # Keystone lets only a service (or a system reader) validate others' tokens.
        pytest.param(PROJECT_READER, id="a-user-without-the-service-role"),
    ],
)
def test_a_service_user_keystone_turns_away_makes_each_request_placements_503(
    keystone_cloud: KeystoneCloud, tmp_path, sqlite_database, service_user: Account
):
    app = stowage_logging_in_as(tmp_path, keystone_cloud.keystone.url, service_user, sqlite_database)
    token: Token = keystone_cloud.token(PROJECT_MEMBER)
    for _ in range(2):
        answer = Client(app, token=token.id).get("/resource_providers")
        assert answer.status == 503
        assert answer.headers["content-type"] == "application/json"
        [error] = answer.json()["errors"]
        assert (error["status"], error["title"]) == (503, "Service Unavailable")
        assert auth.KEYSTONE_UNAVAILABLE in error["detail"]
