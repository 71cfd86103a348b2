"""One Keystone cloud for the whole session, with Stowage as its placement service.

``keystone_cloud`` brings up, once per session::

    Keystone (gunicorn, SQLite)          Stowage "secure-rbac"   <- catalog's placement
      domain Default                       enforce_new_defaults = true
      ├── project admin:   admin (admin role; also on the system)
      ├── project demo:    project-member (member), project-reader (reader)
      └── project service: placement (service role)
                                         Stowage "legacy"
                                           enforce_new_defaults = false,
                                           enforce_scope = false

Both Stowages run ``stowage serve`` with ``[api] auth_strategy = keystone``
and a ``[keystone_authtoken]`` that logs in as ``placement``; they boot while
Keystone is set up. Only the secure-RBAC one is in the catalog; the policy
tests reach the legacy one by its address. Stowage serves SQLite here:
authentication and policy sit above the storage layer, which the rest of the
suite runs on both backends.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.clients import cli
from tests.clients.served import ServedStowage, free_loopback_port
from tests.keystone.served_keystone import Account, Deadline, IdentityApi, ServedKeystone, Token

HERE = Path(__file__).parent
# Keystone's setup takes about 15 s on an idle 2-core machine; past this the
# suite fails instead of waiting on.
SETUP_SECONDS = 120.0


@dataclass(frozen=True)
class PolicyMode:
    """An ``[oslo_policy]`` setting that Stowage is served with."""

    name: str
    enforce_new_defaults: bool
    enforce_scope: bool


LEGACY = PolicyMode("legacy", enforce_new_defaults=False, enforce_scope=False)
SECURE_RBAC = PolicyMode("secure-rbac", enforce_new_defaults=True, enforce_scope=True)
POLICY_MODES = (LEGACY, SECURE_RBAC)
CATALOG_MODE = SECURE_RBAC


def _password() -> str:
    # Never starting with "-", which command lines would take for an option.
    return "pw" + secrets.token_hex(8)


ADMIN = Account("admin", _password(), "admin")
PROJECT_MEMBER = Account("project-member", _password(), "demo")
PROJECT_READER = Account("project-reader", _password(), "demo")
SERVICE_USER = Account("placement", _password(), "service")


def stowage_settings(keystone_url: str, mode: PolicyMode, service_user: Account = SERVICE_USER) -> str:
    """The placement.conf of a Stowage that has Keystone at ``keystone_url``
    validate tokens, logging in as ``service_user``."""
    return f"""\
[api]
auth_strategy = keystone

[keystone_authtoken]
www_authenticate_uri = {keystone_url}
auth_url = {keystone_url}
auth_type = password
username = {service_user.name}
user_domain_name = Default
password = {service_user.password}
project_name = {service_user.project}
project_domain_name = Default
service_type = placement
service_token_roles_required = true

[oslo_policy]
enforce_new_defaults = {str(mode.enforce_new_defaults).lower()}
enforce_scope = {str(mode.enforce_scope).lower()}
"""


@dataclass
class KeystoneCloud:
    """The served Keystone and Stowages, the accounts, and their tokens."""

    keystone: ServedKeystone
    identity: IdentityApi
    stowages: dict[str, ServedStowage]
    project_ids: dict[str, str]
    _tokens: dict[tuple[str, bool], Token] = field(default_factory=dict)

    @property
    def catalog_stowage(self) -> ServedStowage:
        return self.stowages[CATALOG_MODE.name]

    def token(self, account: Account, system_scope: bool = False) -> Token:
        """A token of ``account``, issued once per session."""
        key = (account.name, system_scope)
        if key not in self._tokens:
            self._tokens[key] = self.identity.issue_token(account, system_scope)
        return self._tokens[key]

    def fresh_token(self, account: Account) -> Token:
        """A token no Stowage has seen yet (so none has it cached)."""
        return self.identity.issue_token(account)


def _populate(identity: IdentityApi, admin: Token, placement_url: str) -> dict[str, str]:
    """Create the projects and users drawn above; put Stowage in the catalog."""
    project_ids = {"admin": admin.body["project"]["id"]}
    for project in ("demo", "service"):
        project_ids[project] = identity.create_project(admin, project)
    identity.create_user(admin, PROJECT_MEMBER, "member")
    identity.create_user(admin, PROJECT_READER, "reader")
    # Keystone's bootstrap creates the service role.
    identity.create_user(admin, SERVICE_USER, "service")
    identity.register_service(admin, "placement", placement_url)
    return project_ids


@pytest.fixture(scope="session")
def keystone_cloud(tmp_path_factory) -> Iterator[KeystoneCloud]:
    deadline = Deadline(SETUP_SECONDS)
    keystone = ServedKeystone(tmp_path_factory.mktemp("keystone"), free_loopback_port())
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(keystone.stop)
        stowages: dict[str, ServedStowage] = {}
        for mode in POLICY_MODES:
            # Nothing asks Keystone anything until a token arrives, so the
            # services boot while Keystone is still being set up.
            served = ServedStowage.boot("sqlite", None, settings=stowage_settings(keystone.url, mode))
            cleanup.callback(served.stop)
            stowages[mode.name] = served
        keystone.start(ADMIN.password, deadline)
        identity = IdentityApi(keystone.url)
        cleanup.callback(identity.close)
        admin = identity.issue_token(ADMIN)
        project_ids = _populate(identity, admin, stowages[CATALOG_MODE.name].endpoint)
        for served in stowages.values():
            deadline.remaining("waiting for Stowage to serve")
            served.wait_until_serving()
        yield KeystoneCloud(keystone, identity, stowages, project_ids)


def pytest_collection_modifyitems(items):
    """Warnings are errors here too, less the clients' own (tests.clients.cli)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(cli.WARNING_POLICY)


@pytest.fixture(autouse=True)
def logging_restored():
    """Undo what an in-process ``openstack`` command does to logging."""
    with cli.logging_restored():
        yield
