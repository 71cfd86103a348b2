"""HTTP spec: an operator's own policy file decides, rule by rule, over the
defaults; rules it does not name keep theirs."""
from __future__ import annotations

from stowage.api.app import create_app
from tests.support import Client, test_conf

AUDITOR = {"x-roles": "auditor"}


def app_with_policy(database, tmp_path, text: str):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text)
    return create_app(test_conf(oslo_policy={"policy_file": str(policy_file)}), database)


def test_a_rule_in_the_operators_file_replaces_the_default(database, tmp_path):
    app = app_with_policy(database, tmp_path,
                          '"placement:resource_providers:list": "role:auditor"\n')
    auditor = Client(app, token="auditor")
    assert auditor.get("/resource_providers", headers=AUDITOR).status == 200
    # Now only auditors list providers: the admin is refused, naming the rule.
    refused = Client(app).get("/resource_providers")
    assert refused.status == 403
    assert "placement:resource_providers:list" in refused.json()["errors"][0]["detail"]


def test_rules_the_file_does_not_name_keep_their_defaults(database, tmp_path):
    app = app_with_policy(database, tmp_path,
                          '"placement:resource_providers:list": "role:auditor"\n')
    auditor = Client(app, token="auditor")
    assert auditor.get("/traits", headers=AUDITOR).status == 403
    assert Client(app).get("/traits").status == 200
