"""Spec: ``stowage serve`` logs as placement.conf's oslo.log options say:
``[DEFAULT] log_file`` (or ``log_dir``), ``debug``, ``use_json`` and
``log_config_append``, with one access-log line per request from every
worker."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clients.served import NOAUTH2_SETTINGS, ServedStowage


def get(service: ServedStowage, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        connection.request("GET", path, headers={"x-auth-token": "admin"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("x-openstack-request-id") or ""
    finally:
        connection.close()


def lines_with(path: Path, text: str) -> list[str]:
    """The lines of ``path`` holding ``text``, once the log has them (a worker's
    line follows its answer by a moment)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in path.read_text().splitlines() if text in line] if path.exists() else []
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def serve(tmp_path):
    started: list[ServedStowage] = []

    def start(default_section: str) -> ServedStowage:
        service = ServedStowage.boot("sqlite", None, settings=f"[DEFAULT]\n{default_section}" + NOAUTH2_SETTINGS,
                                     workers=2)
        started.append(service)
        service.wait_until_serving()
        return service

    yield start
    for service in started:
        service.stop()


def test_log_file_gets_an_access_line_per_request_and_debug_lines(serve, tmp_path):
    log_file = tmp_path / "placement.log"
    service = serve(f"log_file = {log_file}\ndebug = true\n")
    ids = [get(service, f"/resource_providers?name=n{index}")[1] for index in range(6)]
    for request_id in ids:
        (line,) = lines_with(log_file, f"request_id: {request_id}")
        assert "INFO stowage.access" in line and '"GET /resource_providers?name=n' in line
        assert "status: 200" in line and "microversion: 1.0" in line
    assert lines_with(log_file, " DEBUG ")
    # The file takes the log; standard output keeps only what precedes it.
    assert "stowage.access" not in service.log()


def test_without_debug_there_are_no_debug_lines(serve, tmp_path):
    log_file = tmp_path / "placement.log"
    service = serve(f"log_file = {log_file}\n")
    _, request_id = get(service, "/")
    assert lines_with(log_file, request_id)
    assert not [line for line in log_file.read_text().splitlines() if " DEBUG " in line]


def test_use_json_writes_one_json_object_per_line(serve, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    service = serve(f"log_dir = {log_dir}\nlog_file = api.log\nuse_json = true\n")
    _, request_id = get(service, "/resource_providers")
    (line,) = lines_with(log_dir / "api.log", request_id)
    record = json.loads(line)
    assert record["name"] == "stowage.access" and record["levelname"] == "INFO"
    assert record["extra"]["access"]["request_id"] == request_id
    assert record["extra"]["access"]["status"] == "200"


def test_log_config_append_hands_logging_to_the_operators_file(serve, tmp_path):
    access_file = tmp_path / "access.log"
    config = tmp_path / "logging.conf"
    config.write_text(
        "[loggers]\nkeys = root, access\n"
        "[handlers]\nkeys = null, access\n"
        "[formatters]\nkeys = plain\n"
        "[logger_root]\nlevel = WARNING\nhandlers = null\n"
        "[logger_access]\nlevel = INFO\nhandlers = access\nqualname = stowage.access\npropagate = 0\n"
        "[handler_null]\nclass = NullHandler\nargs = ()\n"
        f"[handler_access]\nclass = FileHandler\nformatter = plain\nargs = ('{access_file}',)\n"
        "[formatter_plain]\nformat = ACCESS %(message)s\n"
    )
    service = serve(f"log_config_append = {config}\n")
    _, request_id = get(service, "/")
    (line,) = lines_with(access_file, request_id)
    assert line.startswith('ACCESS 127.0.0.1 "GET /" status: 200')


def test_the_wsgi_entry_point_logs_as_configured_too(tmp_path):
    log_file = tmp_path / "placement.log"
    config = tmp_path / "placement.conf"
    config.write_text(f"[DEFAULT]\nlog_file = {log_file}\n{NOAUTH2_SETTINGS}"
                      f"[stowage]\nstate_dir = {tmp_path / 'state'}\n")
    # Its own process: setting up logging replaces the handlers of the process's root logger.
    script = (
        "from stowage import wsgi\n"
        f"application = wsgi.make_application(config_files=[{str(config)!r}])\n"
        "body = application({'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'QUERY_STRING': ''},"
        " lambda status, headers, exc_info=None: None)\n"
        # As a WSGI server does: read the body, then close it.
        "b''.join(body)\nbody.close()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    (line,) = lines_with(log_file, "stowage.access")
    assert '"GET /" status: 200' in line
