"""Each role gets exactly what upstream's default policy gives it, legacy and secure RBAC.

The expectations are upstream's own: the rule defaults of the installed
openstack-placement 16.0.0 (``placement.policies``), in an oslo.policy
enforcer with the ``[oslo_policy]`` settings the Stowage under test is served
with, asked about the credentials in the caller's real Keystone token and
the target upstream's handler passes. Every operation those defaults
document is sent to that Stowage with that token: a 403 naming the rule is a
denial, any other answer from past the policy check (a 404 for the made-up
provider, a 400 for the empty body, a 200) an allowance. A 401 or a 5xx is
neither, and fails the test.

oslo.policy 6 always checks a rule's scope types (it no longer has
``enforce_scope``), so a system-scoped admin is turned away from Placement's
project-scoped rules in both modes; the legacy file still says
``enforce_scope = false``, as operators' files do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import requests
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_policy import policy
from placement import policies as upstream_policies

from tests.keystone.conftest import (
    ADMIN,
    POLICY_MODES,
    PROJECT_MEMBER,
    PROJECT_READER,
    SERVICE_USER,
    KeystoneCloud,
    PolicyMode,
)
from tests.keystone.served_keystone import REQUEST_TIMEOUT_SECONDS, Account, Token

# Who calls: an account and whether its token is system-scoped.
CALLERS: dict[str, tuple[Account, bool]] = {
    "project-admin": (ADMIN, False),
    "system-admin": (ADMIN, True),
    "project-member": (PROJECT_MEMBER, False),
    "project-reader": (PROJECT_READER, False),
    "service": (SERVICE_USER, False),
}

# What the made-up path segments of upstream's documented operations become.
PATH_VALUES = {
    "uuid": str(uuid.uuid4()),
    "consumer_uuid": str(uuid.uuid4()),
    "name": "CUSTOM_POLICY_PROBE",
    "resource_class": "VCPU",
}
# Upstream's GET /usages checks its rule against the project the query names
# (handlers/usage.py); every other handler uses the default target, the
# caller's own project and user.
QUERY_TARGETS = {upstream_policies.usage.TOTAL_USAGES: "project_id"}


@dataclass(frozen=True)
class Probe:
    """One request for one upstream rule: its method, path and query."""

    rule: str
    method: str
    path: str
    query: dict[str, str]

    def __str__(self) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.query.items())
        return f"{self.method} {self.path}{'?' + query if query else ''} ({self.rule})"


def probes_for(token: Token, other_project_id: str) -> list[Probe]:
    """A request per operation documented in upstream's rule defaults.

    A rule whose target comes from the query is asked about the caller's own
    project and about another one.
    """
    probes = []
    for rule in upstream_policies.list_rules():
        for operation in getattr(rule, "operations", None) or []:
            path = operation["path"].format(**PATH_VALUES)
            queries: list[dict[str, str]] = [{}]
            if rule.name in QUERY_TARGETS:
                own = token.project_id or other_project_id
                queries = [{QUERY_TARGETS[rule.name]: project} for project in (own, other_project_id)]
            probes += [Probe(rule.name, operation["method"], path, query) for query in queries]
    return probes


def upstream_enforcer(mode: PolicyMode) -> policy.Enforcer:
    """Upstream's rule defaults under ``mode``'s settings; no policy file."""
    conf = cfg.ConfigOpts()
    conf([], project="placement", default_config_files=[], default_config_dirs=[])
    enforcer = policy.Enforcer(conf)
    conf.set_override("enforce_new_defaults", mode.enforce_new_defaults, group="oslo_policy")
    # As upstream's placement.policy.init sets them; they only quieten logs.
    enforcer.suppress_default_change_warnings = True
    enforcer.suppress_deprecation_warnings = True
    enforcer.register_defaults(upstream_policies.list_rules())
    enforcer.load_rules()
    return enforcer


def upstream_allows(enforcer: policy.Enforcer, probe: Probe, token: Token) -> bool:
    """What upstream's ``context.can`` decides for ``probe`` with ``token``."""
    context = oslo_context.RequestContext(
        user_id=token.user_id,
        project_id=token.project_id,
        roles=token.roles,
        system_scope="all" if token.system_scoped else None,
    )
    target = {"project_id": token.project_id, "user_id": token.user_id}
    if probe.rule in QUERY_TARGETS:
        target = {"project_id": probe.query[QUERY_TARGETS[probe.rule]]}
    try:
        return bool(enforcer.authorize(probe.rule, target, context, do_raise=False))
    except policy.InvalidScope:  # upstream answers it with a 403 as well
        return False


def stowage_allows(endpoint: str, probe: Probe, token: Token) -> bool:
    """Whether Stowage let ``probe`` past the policy check."""
    headers = {"x-auth-token": token.id, "openstack-api-version": "placement latest"}
    body = {} if probe.method in ("POST", "PUT") else None
    answer = requests.request(
        probe.method,
        endpoint + probe.path,
        params=probe.query,
        json=body,
        headers=headers,
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    assert answer.status_code != 401 and answer.status_code < 500, (
        f"{probe}: {answer.status_code} {answer.text}"
    )
    if answer.status_code != 403:
        return True
    [error] = answer.json()["errors"]
    assert f"Policy does not allow {probe.rule} to be performed." in error["detail"], str(probe)
    return False


@pytest.fixture(scope="module", params=POLICY_MODES, ids=[mode.name for mode in POLICY_MODES])
def policy_mode(request) -> PolicyMode:
    return request.param


@pytest.mark.parametrize("caller", list(CALLERS))
def test_each_caller_is_allowed_exactly_what_upstreams_default_policy_allows(
    keystone_cloud: KeystoneCloud, policy_mode: PolicyMode, caller: str
):
    account, system_scope = CALLERS[caller]
    token = keystone_cloud.token(account, system_scope)
    enforcer = upstream_enforcer(policy_mode)
    endpoint = keystone_cloud.stowages[policy_mode.name].endpoint
    probes = probes_for(token, other_project_id=keystone_cloud.project_ids["service"])
    assert len(probes) > 30, "upstream's documented operations were not found"

    differences = [
        f"{probe}: upstream {'allows' if expected else 'denies'}, Stowage "
        f"{'allows' if actual else 'denies'}"
        for probe in probes
        if (expected := upstream_allows(enforcer, probe, token))
        != (actual := stowage_allows(endpoint, probe, token))
    ]
    assert not differences, "\n".join(differences)


def test_the_two_modes_expect_different_things_of_some_caller(keystone_cloud: KeystoneCloud):
    """The comparison above is not blind to the mode: upstream's deprecated
    rules, which legacy mode keeps, decide some request differently."""
    decisions = {}
    for mode in POLICY_MODES:
        enforcer = upstream_enforcer(mode)
        decisions[mode.name] = {
            (caller, str(probe)): upstream_allows(enforcer, probe, token)
            for caller, (account, system_scope) in CALLERS.items()
            for token in [keystone_cloud.token(account, system_scope)]
            for probe in probes_for(token, other_project_id=keystone_cloud.project_ids["service"])
        }
    legacy, secure = (decisions[mode.name] for mode in POLICY_MODES)
    assert legacy.keys() == secure.keys()
    assert legacy != secure
