"""Spec: GET /healthcheck answers as oslo.middleware's healthcheck does
(200 healthy, 503 not; plain text, or JSON when asked), without a token for
load balancers, and with which check failed and how long each took only
for administrators."""
from __future__ import annotations

import io

from stowage.api.app import create_app
from stowage.storage.database import Database
from tests.support import Client, test_conf

JSON = {"accept": "application/json"}


def call(
    app, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """A raw GET /healthcheck (its text answer is not JSON, which
    ``Client``'s contract check expects of answers it asked JSON of)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/healthcheck", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(b""), "SERVER_PROTOCOL": "HTTP/1.1"}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=int(status.split()[0]), headers=dict(headers))

    chunks = app(environ, start_response)
    body = b"".join(chunks)
    chunks.close()
    return captured["status"], {k.lower(): v for k, v in captured["headers"].items()}, body


def unreachable_app(tmp_path):
    """An app whose SQLite file lies in a directory that does not exist."""
    database = Database.from_url(f"sqlite:///{tmp_path}/missing/placement.sqlite")
    return create_app(test_conf(), database)


def test_a_healthy_service_answers_ok_in_plain_text_without_a_token(app):
    status, headers, body = call(app, {})
    assert (status, body) == (200, b"OK")
    assert headers["content-type"] == "text/plain; charset=UTF-8"


def test_a_caller_without_a_token_gets_the_simple_json_answer(client):
    answer = Client(client.app, token=None, version=None).get("/healthcheck")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"detailed": False, "reasons": ["OK"]}


def test_a_user_who_is_not_an_administrator_gets_the_simple_answer(client):
    answer = Client(client.app, token="someone").get("/healthcheck")
    assert answer.json() == {"detailed": False, "reasons": ["OK"]}


def test_an_administrator_sees_each_check_and_its_time(client):
    client.get("/allocation_candidates?resources=VCPU:1")
    answer = client.get("/healthcheck")
    assert answer.status == 200
    body = answer.json()
    assert body["detailed"] is True
    checks = {reason["check"]: reason for reason in body["reasons"]}
    assert set(checks) == {"database", "read_model"}
    assert all(check["available"] and check["reason"] == "OK" for check in checks.values())
    assert all(check["seconds"] >= 0 for check in checks.values())
    assert checks["database"]["details"].startswith("revision ")


def test_the_read_model_check_brings_the_model_to_the_databases_revision(client):
    client.get("/healthcheck")
    client.post("/resource_providers", {"name": "cn1"})
    checks = {reason["check"]: reason for reason in client.get("/healthcheck").json()["reasons"]}
    assert "(1 behind before this check)" in checks["read_model"]["details"]


def test_an_unreachable_database_is_a_503_that_says_only_unavailable_to_anonymous(tmp_path):
    app = unreachable_app(tmp_path)
    status, headers, body = call(app, {})
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert (status, body) == (503, b"Service Unavailable")
    answer = Client(app, token=None, version=None).get("/healthcheck")
    assert answer.status == 503
    assert answer.json() == {"detailed": False, "reasons": ["Service Unavailable"]}


def test_an_administrator_is_told_the_database_check_failed(tmp_path):
    answer = Client(unreachable_app(tmp_path)).get("/healthcheck")
    assert answer.status == 503
    checks = {reason["check"]: reason for reason in answer.json()["reasons"]}
    assert checks["database"]["available"] is False
    assert checks["database"]["reason"] == "Database unavailable"
    assert checks["read_model"]["available"] is False


def test_head_answers_by_status_alone_as_oslo_middleware_does(app, tmp_path):
    status, headers, body = call(app, {}, "HEAD")
    assert (status, body) == (204, b"")
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert "content-length" not in headers
    # Whatever Accept asks for, and with an administrator's token.
    assert call(app, {**JSON, "x-auth-token": "admin", "x-roles": "admin"}, "HEAD")[::2] == (
        204, b""
    )
    status, headers, body = call(unreachable_app(tmp_path), {}, "HEAD")
    assert (status, body) == (503, b"")
    assert (headers["content-type"], headers["content-length"]) == (
        "text/plain; charset=UTF-8", "0"
    )


def test_head_counts_an_unreachable_database_in_the_metrics(tmp_path):
    app = unreachable_app(tmp_path)
    call(app, {}, "HEAD")
    metrics = Client(app, token="admin").get("/metrics").body.decode()
    assert 'stowage_database_unavailable_total{route="/healthcheck"} 1.0' in metrics


def test_other_methods_are_405_in_placements_format(client):
    answer = client.post("/healthcheck", {})
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert answer.json()["errors"][0]["status"] == 405
