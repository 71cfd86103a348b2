"""The ``openstack`` CLI and openstacksdk log in with passwords and find Stowage in the catalog.

Neither is told where Placement is: each authenticates against Keystone
with a username and password and takes the placement endpoint from the
token's catalog, where the secure-RBAC Stowage is registered. The CLI runs
as the cloud's admin, the SDK as the placement service user (the way a
compute service would). Each runs a short session asserted on what it
parses; the catalog's Stowage then shows what they wrote, seen directly.
The CLI takes no request timeout on its command line; a request that hung
would be cut off by the servers' gunicorn worker timeout (30 s).
"""

from __future__ import annotations

import uuid

import openstack
import pytest
import requests

from tests.clients.cli import OpenStackCli, fresh_client_per_command
from tests.keystone.conftest import ADMIN, SERVICE_USER, KeystoneCloud
from tests.keystone.served_keystone import DOMAIN, REGION, REQUEST_TIMEOUT_SECONDS, Account


def password_arguments(keystone_url: str, account: Account) -> list[str]:
    return [
        "--os-auth-type",
        "password",
        "--os-auth-url",
        keystone_url,
        "--os-identity-api-version",
        "3",
        "--os-username",
        account.name,
        "--os-password",
        account.password,
        "--os-user-domain-name",
        DOMAIN,
        "--os-project-name",
        str(account.project),
        "--os-project-domain-name",
        DOMAIN,
        "--os-region-name",
        REGION,
        "--os-interface",
        "public",
    ]


def provider_seen_by_the_catalogs_stowage(keystone_cloud: KeystoneCloud, provider_uuid: str) -> int:
    """The status of GET /resource_providers/{uuid} asked of the catalog's Stowage directly."""
    return requests.get(
        f"{keystone_cloud.catalog_stowage.endpoint}/resource_providers/{provider_uuid}",
        headers={"x-auth-token": keystone_cloud.token(ADMIN).id},
        timeout=REQUEST_TIMEOUT_SECONDS,
    ).status_code


@pytest.fixture
def cli(keystone_cloud: KeystoneCloud, monkeypatch) -> OpenStackCli:
    """``openstack`` as the admin, with a password and no endpoint given."""
    fresh_client_per_command(monkeypatch)
    return OpenStackCli(password_arguments(keystone_cloud.keystone.url, ADMIN))


def test_the_openstack_cli_runs_a_session_against_the_catalogs_placement(cli, keystone_cloud):
    name = f"cli-host-{uuid.uuid4().hex[:12]}"
    project, user, consumer = (str(uuid.uuid4()) for _ in range(3))

    host = cli.json(f"resource provider create {name}")
    assert (host["name"], host["generation"]) == (name, 0)
    assert provider_seen_by_the_catalogs_stowage(keystone_cloud, host["uuid"]) == 200

    inventories = cli.json(
        f"resource provider inventory set {host['uuid']} --resource VCPU=8 --resource MEMORY_MB=4096"
    )
    assert {row["resource_class"]: row["total"] for row in inventories} == {"VCPU": 8, "MEMORY_MB": 4096}
    assert [row["uuid"] for row in cli.json(f"resource provider list --name {name}")] == [host["uuid"]]

    cli.json(
        f"resource provider allocation set {consumer} --allocation rp={host['uuid']},VCPU=2 "
        f"--project-id {project} --user-id {user} --consumer-type INSTANCE"
    )
    usages = cli.json(f"resource provider usage show {host['uuid']}")
    assert {row["resource_class"]: row["usage"] for row in usages} == {"VCPU": 2, "MEMORY_MB": 0}
    [by_type] = cli.json(f"resource usage show {project}")
    assert by_type["usage"] == {"consumer_count": 1, "VCPU": 2}

    cli.ok(f"resource provider allocation delete {consumer}")
    cli.ok(f"resource provider delete {host['uuid']}")
    assert cli.json(f"resource provider list --name {name}") == []
    assert provider_seen_by_the_catalogs_stowage(keystone_cloud, host["uuid"]) == 404


def test_a_wrong_password_stops_the_cli_at_keystone(keystone_cloud):
    wrong = Account(ADMIN.name, "not-the-password", ADMIN.project)
    outcome = OpenStackCli(password_arguments(keystone_cloud.keystone.url, wrong)).run(
        "resource provider list -f json"
    )
    assert outcome.exit_code == 1
    assert "The request you have made requires authentication. (HTTP 401)" in outcome.stderr


@pytest.fixture
def placement(keystone_cloud: KeystoneCloud):
    """openstacksdk's ``connection.placement``, as the service user; no clouds.yaml, no OS_*."""
    connection = openstack.connect(
        auth_type="password",
        auth={
            "auth_url": keystone_cloud.keystone.url,
            "username": SERVICE_USER.name,
            "password": SERVICE_USER.password,
            "user_domain_name": DOMAIN,
            "project_name": SERVICE_USER.project,
            "project_domain_name": DOMAIN,
        },
        region_name=REGION,
        interface="public",
        api_timeout=REQUEST_TIMEOUT_SECONDS,
        load_yaml_config=False,
        load_envvars=False,
    )
    yield connection.placement
    connection.close()


def test_openstacksdk_runs_a_session_against_the_catalogs_placement(placement, keystone_cloud):
    assert placement.get_endpoint().rstrip("/") == keystone_cloud.catalog_stowage.endpoint
    name = f"sdk-host-{uuid.uuid4().hex[:12]}"
    project, user, consumer = (str(uuid.uuid4()) for _ in range(3))

    host = placement.create_resource_provider(name=name)
    assert (host.name, host.generation) == (name, 0)
    assert provider_seen_by_the_catalogs_stowage(keystone_cloud, host.id) == 200

    placement.set_resource_provider_inventories(
        host, {"VCPU": {"total": 8}, "DISK_GB": {"total": 100}}, resource_provider_generation=0
    )
    assert [found.id for found in placement.resource_providers(name=name)] == [host.id]
    placement.update_allocation(
        consumer,
        allocations={host.id: {"resources": {"DISK_GB": 10}}},
        project_id=project,
        user_id=user,
        consumer_generation=None,
        consumer_type="INSTANCE",
    )
    assert placement.fetch_resource_provider_usages(host).usages == {"VCPU": 0, "DISK_GB": 10}
    [usage] = placement.usages(project)
    assert (usage.consumer_type, usage.consumer_count, usage.resources) == ("INSTANCE", 1, {"DISK_GB": 10})

    placement.delete_allocation(consumer)
    placement.delete_resource_provider(host, ignore_missing=False)
    assert list(placement.resource_providers(name=name)) == []
    assert provider_seen_by_the_catalogs_stowage(keystone_cloud, host.id) == 404
