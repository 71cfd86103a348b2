"""A keystone configuration that cannot validate tokens is refused before anything is served.

keystonemiddleware asks Keystone about each token as a service user, so
``[keystone_authtoken]`` needs an auth plugin and that user's credentials.
Without them every request would fail; instead ``stowage serve`` exits with
status 2 and one paragraph naming what is missing, before it opens the
database or binds, and the WSGI entry point answers 503 in Placement's
format. Keystone itself is not asked at start (it may start later), so a
complete section is accepted whether or not Keystone is up. None of these
tests needs the served Keystone.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from stowage import wsgi
from stowage.api import auth
from stowage.cmd.main import main
from stowage.conf import build_conf
from tests.keystone.served_keystone import REPO_ROOT

COMPLETE = """\
www_authenticate_uri = http://127.0.0.1:5000/v3
auth_type = password
auth_url = http://127.0.0.1:5000/v3
username = placement
user_domain_name = Default
password = secret
project_name = service
project_domain_name = Default
"""


def without(section: str, *names: str) -> str:
    return "".join(line + "\n" for line in section.splitlines() if line.split(" = ")[0] not in names)


def write_config(directory: Path, authtoken: str, extra: str = "") -> Path:
    path = directory / "placement.conf"
    path.write_text(
        "[api]\nauth_strategy = keystone\n"
        f"[stowage]\nstate_dir = {directory / 'state'}\n"
        f"[keystone_authtoken]\n{authtoken}{extra}"
    )
    return path


def problems_of(directory: Path, authtoken: str, extra: str = "") -> list[str]:
    conf = build_conf(config_files=[str(write_config(directory, authtoken, extra))])
    try:
        auth.check_auth_config(conf)
    except auth.KeystoneConfigError as refused:
        return refused.problems
    return []


@pytest.mark.parametrize(
    ("authtoken", "problems"),
    [
        pytest.param("", ["auth_type is not set"], id="an-empty-section"),
        pytest.param(
            "www_authenticate_uri = http://127.0.0.1:5000/v3\n",
            ["auth_type is not set"],
            id="www_authenticate_uri-alone",
        ),
        pytest.param(
            "auth_type = password\n",
            [
                "auth_url is not set",
                "username (or user_id) is not set",
                "password is not set",
                "project_name (or project_id, or a domain or system scope) is not set",
            ],
            id="a-plugin-without-credentials",
        ),
        pytest.param(without(COMPLETE, "auth_url"), ["auth_url is not set"], id="no-auth_url"),
        pytest.param(without(COMPLETE, "password"), ["password is not set"], id="no-password"),
        pytest.param(
            without(COMPLETE, "user_domain_name", "project_domain_name"),
            [
                "user_domain_name (or user_domain_id) is not set",
                "project_domain_name (or project_domain_id) is not set",
            ],
            id="names-without-their-domains",
        ),
        pytest.param(
            without(COMPLETE, "project_name", "project_domain_name"),
            ["project_name (or project_id, or a domain or system scope) is not set"],
            id="no-scope",
        ),
        pytest.param(
            without(COMPLETE, "auth_type") + "auth_type = kerberos-maybe\n",
            ["auth_type = kerberos-maybe names no keystoneauth plugin"],
            id="an-unknown-plugin",
        ),
        pytest.param(
            "auth_type = v3applicationcredential\nauth_url = http://127.0.0.1:5000/v3\n",
            ["application_credential_secret is not set"],
            id="an-application-credential-without-its-secret",
        ),
    ],
)
def test_a_section_that_cannot_validate_tokens_is_refused_naming_what_is_missing(
    tmp_path, authtoken, problems
):
    assert problems_of(tmp_path, authtoken) == problems


@pytest.mark.parametrize(
    "authtoken",
    [
        pytest.param(COMPLETE, id="password-with-names-and-domains"),
        pytest.param(
            "auth_type = v3password\nauth_url = http://127.0.0.1:5000/v3\n"
            "user_id = 0123abcd\npassword = secret\nproject_id = 4567ef\n",
            id="v3password-with-ids",
        ),
        pytest.param(
            without(COMPLETE, "project_name", "project_domain_name") + "system_scope = all\n",
            id="a-system-scoped-service-user",
        ),
    ],
)
def test_a_section_with_a_plugin_and_credentials_is_accepted_without_asking_keystone(tmp_path, authtoken):
    # Nothing listens on 127.0.0.1:5000 here; the check reads the config only.
    assert problems_of(tmp_path, authtoken) == []


def test_credentials_in_the_group_auth_section_names_are_read_from_there(tmp_path):
    extra = "auth_section = service_user\n[service_user]\n"
    assert problems_of(tmp_path, "", extra + COMPLETE) == []
    conf = build_conf(config_files=[str(write_config(tmp_path, "", extra + "auth_type = password\n"))])
    with pytest.raises(auth.KeystoneConfigError, match=r"through auth_section, \[service_user\]"):
        auth.check_auth_config(conf)


def test_noauth2_needs_no_keystone_section(tmp_path):
    path = tmp_path / "placement.conf"
    path.write_text("[api]\nauth_strategy = noauth2\n[keystone_authtoken]\nauth_type = password\n")
    auth.check_auth_config(build_conf(config_files=[str(path)]))


def test_stowage_serve_refuses_to_start_with_one_paragraph_before_the_database_and_the_bind(
    tmp_path, capsys
):
    config = write_config(tmp_path, "www_authenticate_uri = http://127.0.0.1:5000/v3\n")
    assert main(["serve", "--config-file", str(config), "--port", "1"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("stowage serve: refusing to start: [api] auth_strategy = keystone, but ")
    assert "[keystone_authtoken] cannot validate tokens: auth_type is not set." in message
    assert message.count("\n") == 1  # one paragraph, one line
    # Port 1 would need root's bind; nothing got that far, nor to the database.
    assert not (tmp_path / "state").exists()


def test_the_installed_command_exits_with_status_2(tmp_path):
    config = write_config(tmp_path, "auth_type = password\n")
    finished = subprocess.run(
        [sys.executable, "-m", "stowage.cmd.main", "serve", "--config-file", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "auth_url is not set; username (or user_id) is not set; password is not set" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_wsgi_entry_point_answers_placements_503_and_logs_why(tmp_path, caplog):
    config = write_config(tmp_path, "auth_type = password\n")
    with caplog.at_level(logging.CRITICAL, logger="stowage.wsgi"):
        application = wsgi.make_application(config_files=[str(config)], configure_logging=False)
    assert "auth_url is not set" in caplog.text
    statuses = []
    body = b"".join(
        application(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/resource_providers", "QUERY_STRING": ""},
            lambda status, headers, *_: statuses.append((status, dict(headers))),
        )
    )
    [(status, headers)] = statuses
    assert status == "503 Service Unavailable"
    assert headers["content-type"] == "application/json"
    [error] = json.loads(body)["errors"]
    assert (error["status"], error["detail"].strip()) == (
        503,
        f"The server is currently unavailable. Please try again at a later time.\n\n {wsgi.NOT_SERVING}",
    )
    assert not (tmp_path / "state").exists()
