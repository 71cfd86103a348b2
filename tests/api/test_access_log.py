"""Spec: every request leaves one access-log line, whatever its answer:
method, target, status, length, microversion, time, request id, user and
project; slow ones at WARNING."""
from __future__ import annotations

import logging

import pytest

from stowage.api.app import create_app
from tests.support import Client, test_conf


def access_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "stowage.access"]


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.INFO, logger="stowage.access")
    return caplog


def test_a_request_leaves_one_line_with_what_an_operator_traces(client, logged):
    answer = Client(client.app, token="alice:p1", version="1.20").get(
        "/resource_providers?name=cn1", headers={"x-roles": "admin"}
    )
    assert answer.status == 200
    (record,) = access_records(logged)
    assert record.levelno == logging.INFO
    request_id = answer.headers["x-openstack-request-id"]
    assert record.getMessage() == (
        f'- "GET /resource_providers?name=cn1" status: 200 len: {len(answer.body)} '
        f"microversion: 1.20 time: {record.access['duration_ms']:.1f} ms "
        f"request_id: {request_id} user: alice project: p1"
    )
    assert record.access["status"] == "200" and record.access["length"] == len(answer.body)


@pytest.mark.parametrize(
    ("token", "path", "status"),
    [
        ("admin", "/resource_providers/nowhere", 404),
        (None, "/resource_providers", 401),
        ("admin", "/no/such/route", 404),
    ],
)
def test_refusals_are_logged_too(client, logged, token, path, status):
    answer = Client(client.app, token=token).get(path)
    assert answer.status == status
    (record,) = access_records(logged)
    assert record.access["status"] == str(status)
    assert record.access["length"] == len(answer.body)
    assert record.access["request_id"] == answer.headers["x-openstack-request-id"]


def test_an_unexpected_error_is_logged_as_a_500(database, logged, monkeypatch):
    app = create_app(test_conf(), database)

    def broken_write(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(database, "write", broken_write)
    answer = Client(app).post("/resource_providers", {"name": "boom"})
    assert answer.status == 500
    (record,) = access_records(logged)
    assert record.access["status"] == "500"


def test_a_slow_request_is_a_warning(database, logged):
    client = Client(create_app(test_conf(stowage={"slow_request_seconds": 1e-9}), database))
    client.get("/resource_providers")
    (record,) = access_records(logged)
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith('slow request: - "GET /resource_providers" status: 200')


def test_slow_request_warnings_can_be_turned_off(database, logged):
    client = Client(create_app(test_conf(stowage={"slow_request_seconds": 0}), database))
    client.get("/resource_providers")
    (record,) = access_records(logged)
    assert record.levelno == logging.INFO
