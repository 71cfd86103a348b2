"""Fixtures named by upstream Placement's gabbi files, built with Stowage.

This is the one module allowed to pass data through environment variables
and module state: the YAML files read ``$ENVIRON[...]`` and gabbi creates the
fixtures and the intercepted app without arguments.

Every topology is built through Stowage's own HTTP API, in process, exactly
as a client would build it.
"""
from __future__ import annotations

import os
import tempfile
import types
import uuid

import yaml
from gabbi import fixture

from stowage.api.app import create_app
from stowage.api.policy import list_rules
from tests.support import Client, open_test_database, reset_database, test_conf

# The app of the suite currently running; gabbi builds its intercept before
# any fixture starts, so the intercept looks here on every request.
_current_app = None
_databases: dict[str, object] = {}
_postgresql_url: str | None = None


def configure(postgresql_url: str | None) -> None:
    global _postgresql_url
    _postgresql_url = postgresql_url


class LazyApp:
    """The WSGI intercept: forwards to the app the running fixture built."""

    def __call__(self, environ, start_response):
        if _current_app is None:
            raise RuntimeError("no Stowage fixture is running")
        return _current_app(environ, start_response)


def setup_app():
    return LazyApp()


def _new_uuid() -> str:
    return str(uuid.uuid4())


class APIFixture(fixture.GabbiFixture):
    """A fresh, empty service with noauth2 and default policy."""

    backend = "sqlite"
    secure_rbac = False

    def start_fixture(self):
        global _current_app
        database = _databases.get(self.backend)
        if database is None:
            database = open_test_database(self.backend, _postgresql_url)
            _databases[self.backend] = database
        reset_database(database)
        self.policy_dir = tempfile.TemporaryDirectory(prefix="stowage-policy-")
        policy_file = os.path.join(self.policy_dir.name, "policy.yaml")
        with open(policy_file, "w") as handle:
            yaml.safe_dump(self.policy_rules(), handle)
        self.conf = test_conf(
            oslo_policy={
                "enforce_new_defaults": self.secure_rbac,
                "policy_file": policy_file,
            },
            **self.extra_conf(),
        )
        _current_app = create_app(self.conf, database)
        self.client = Client(_current_app)
        for name in (
            "RP_UUID",
            "RP_NAME",
            "RP_UUID1",
            "RP_NAME1",
            "RP_UUID2",
            "RP_NAME2",
            "PROJECT_ID",
            "ADMIN_PROJECT_ID",
            "SERVICE_PROJECT_ID",
            "USER_ID",
            "PROJECT_ID_ALT",
            "USER_ID_ALT",
            "INSTANCE_UUID",
            "MIGRATION_UUID",
            "CONSUMER_UUID",
            "PARENT_PROVIDER_UUID",
            "ALT_PARENT_PROVIDER_UUID",
        ):
            os.environ[name] = _new_uuid()
        os.environ["CUSTOM_RES_CLASS"] = "CUSTOM_IRON_NFV"
        os.environ["CUSTOM_RES_CLASS1"] = "CUSTOM_IRON_NFV1"
        os.environ["CUSTOM_RES_CLASS2"] = "CUSTOM_IRON_NFV2"
        self.build = Builder(self.client)

    def stop_fixture(self):
        global _current_app
        _current_app = None
        self.policy_dir.cleanup()

    def policy_rules(self) -> dict[str, str]:
        """Rules written to the policy file; none means the defaults apply."""
        return {}

    def extra_conf(self) -> dict[str, dict]:
        return {}


class LegacyRBACPolicyFixture(APIFixture):
    """Deprecated (admin-role) policy defaults, said explicitly."""

    secure_rbac = False


class SecureRBACPolicyFixture(APIFixture):
    """New role-and-scope policy defaults."""

    secure_rbac = True


class OpenPolicyFixture(APIFixture):
    """Every rule opened to any caller, through an operator policy file."""

    def policy_rules(self) -> dict[str, str]:
        return {rule.name: "@" for rule in list_rules() if rule.name != "admin_api"}


class CORSFixture(APIFixture):
    """CORS enabled for one origin, as an operator would configure it."""

    def extra_conf(self) -> dict[str, dict]:
        return {
            "cors": {
                "allowed_origin": ["http://valid.example.com"],
                "allow_headers": ["openstack-api-version"],
            }
        }


class Builder:
    """Builds topologies through the HTTP API, as upstream's fixtures do."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _check(self, answer, *expected: int):
        if answer.status not in expected:
            raise RuntimeError(f"fixture request failed: {answer.status} {answer.body[:500]!r}")
        return answer

    def create_provider(self, name: str, *aggregates: str, parent: str | None = None) -> str:
        body = {"name": name, "uuid": _new_uuid()}
        if parent:
            body["parent_provider_uuid"] = parent
        self._check(self.client.post("/resource_providers", body), 200)
        if aggregates:
            self.set_aggregates(body["uuid"], *aggregates)
        return body["uuid"]

    def generation(self, provider: str) -> int:
        return self._check(self.client.get(f"/resource_providers/{provider}"), 200).json()[
            "generation"
        ]

    def set_aggregates(self, provider: str, *aggregates: str) -> None:
        self._check(
            self.client.put(
                f"/resource_providers/{provider}/aggregates",
                {"aggregates": list(aggregates), "resource_provider_generation": self.generation(provider)},
            ),
            200,
        )

    def ensure_resource_class(self, name: str) -> None:
        if name.startswith("CUSTOM_"):
            self._check(self.client.put(f"/resource_classes/{name}"), 201, 204)

    def add_inventory(self, provider: str, resource_class: str, total: int, **fields) -> None:
        self.ensure_resource_class(resource_class)
        body = {"resource_class": resource_class, "total": total, **fields}
        body["resource_provider_generation"] = self.generation(provider)
        self._check(self.client.post(f"/resource_providers/{provider}/inventories", body), 201)

    def set_traits(self, provider: str, *traits: str) -> None:
        for trait in traits:
            if trait.startswith("CUSTOM_"):
                self._check(self.client.put(f"/traits/{trait}"), 201, 204)
        self._check(
            self.client.put(
                f"/resource_providers/{provider}/traits",
                {"traits": list(traits), "resource_provider_generation": self.generation(provider)},
            ),
            200,
        )

    def set_allocation(
        self, consumer: str, project: str, user: str, allocations: dict[str, dict[str, int]]
    ) -> None:
        """Give ``consumer`` these allocations: {provider uuid: {class: amount}}."""
        current = self._check(self.client.get(f"/allocations/{consumer}"), 200).json()
        body = {
            "allocations": {
                provider: {"resources": resources} for provider, resources in allocations.items()
            },
            "project_id": project,
            "user_id": user,
            "consumer_generation": current.get("consumer_generation"),
            "consumer_type": "INSTANCE",
        }
        self._check(self.client.put(f"/allocations/{consumer}", body), 204)


class AllocationFixture(APIFixture):
    """One provider and three consumers already holding allocations.

    ::

          consumer1      consumer2     alt_consumer (alt user)
        DISK_GB: 1000     VCPU: 6      VCPU: 1, DISK_GB: 20
               \\            |            /
                +------ rp: VCPU 10, DISK_GB 2048 ------+
    """

    def start_fixture(self):
        super().start_fixture()
        os.environ["ALT_USER_ID"] = _new_uuid()
        project, user, alt_user = (
            os.environ["PROJECT_ID"],
            os.environ["USER_ID"],
            os.environ["ALT_USER_ID"],
        )
        provider = os.environ["RP_UUID"]
        self._check_create(provider)
        self.build.add_inventory(provider, "DISK_GB", 2048, step_size=10, min_unit=10, max_unit=1000)
        self.build.add_inventory(provider, "VCPU", 10, max_unit=10)
        consumers = {"CONSUMER_0": _new_uuid(), "CONSUMER_ID": _new_uuid(), "ALT_CONSUMER_ID": _new_uuid()}
        os.environ.update(consumers)
        self.build.set_allocation(consumers["CONSUMER_0"], project, user, {provider: {"DISK_GB": 1000}})
        self.build.set_allocation(consumers["CONSUMER_ID"], project, user, {provider: {"VCPU": 6}})
        self.build.set_allocation(
            consumers["ALT_CONSUMER_ID"], project, alt_user, {provider: {"DISK_GB": 20, "VCPU": 1}}
        )
        os.environ["ALT_RP_UUID"] = _new_uuid()
        os.environ["ALT_RP_NAME"] = _new_uuid()

    def _check_create(self, provider: str) -> None:
        self.build._check(
            self.client.post(
                "/resource_providers", {"name": os.environ["RP_NAME"], "uuid": provider}
            ),
            200,
        )


class _PendingTopology(APIFixture):
    """A topology fixture not built yet: its files fail loudly, never skip."""

    def start_fixture(self):
        super().start_fixture()
        raise NotImplementedError(f"{type(self).__name__} is not built yet")


_PENDING = [
    type(name, (_PendingTopology,), {})
    for name in (
        "SharedStorageFixture",
        "NUMAAggregateFixture",
        "NUMANetworkFixture",
        "DeepNUMANetworkFixture",
        "NonSharedStorageFixture",
        "GranularFixture",
        "NeutronQoSMultiSegmentFixture",
    )
]

_FIXTURE_CLASSES = [
    APIFixture,
    LegacyRBACPolicyFixture,
    SecureRBACPolicyFixture,
    OpenPolicyFixture,
    CORSFixture,
    AllocationFixture,
    *_PENDING,
]


def fixture_module_for(backend: str) -> types.ModuleType:
    """A module of the fixture classes above, bound to ``backend``.

    gabbi looks fixtures up by name on a module; one module per backend lets
    the same YAML run against SQLite and PostgreSQL in one pytest session.
    """
    module = types.ModuleType(f"stowage_gabbi_fixtures_{backend}")
    for cls in _FIXTURE_CLASSES:
        setattr(module, cls.__name__, type(cls.__name__, (cls,), {"backend": backend}))
    return module
