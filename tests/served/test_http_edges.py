"""HTTP spec at the socket: bodies sent chunked, too large or never finished,
and what a stalled client does to everyone else."""
from __future__ import annotations

import http.client
import json
import socket
import time
import uuid

from tests.served.conftest import CLIENT_TIMEOUT_SECONDS

HEADERS = {"x-auth-token": "admin", "content-type": "application/json",
           "openstack-api-version": "placement 1.39"}


def answer(served, method: str, path: str, body=None, chunked: bool = False,
           timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout)
    try:
        connection.request(method, path, body=iter([body]) if chunked else body,
                           headers=HEADERS, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def error_of(headers: dict[str, str], body: bytes) -> dict:
    assert headers["content-type"] == "application/json"
    (error,) = json.loads(body)["errors"]
    return error


def raw_request(served, head: str, body: bytes = b"", timeout: float = 10) -> socket.socket:
    """A connection that has sent ``head``, a line break and ``body`` (a head
    of whole header lines ends there; one without its last stays unfinished)."""
    client = socket.create_connection(("127.0.0.1", served.port), timeout=timeout)
    client.sendall(head.encode() + b"\r\n" + body)
    return client


def assert_served_while_given_up_on(served, stalled: list[socket.socket]) -> None:
    """``GET /`` is answered while ``stalled`` wait, and each of them is
    answered 408 and disconnected."""
    started = time.monotonic()
    assert answer(served, "GET", "/", timeout=30)[0] == 200
    # Two rounds of stalled clients at most: each is dropped after the timeout.
    assert time.monotonic() - started < 3 * CLIENT_TIMEOUT_SECONDS + 2
    for client in stalled:
        given_up = client.makefile("rb").read()
        client.close()
        assert given_up.startswith(b"HTTP/1.1 408"), given_up[:200]
        assert b'"status": 408' in given_up


def test_a_chunked_body_is_read(served):
    name = f"chunked-{uuid.uuid4()}"
    status, _, body = answer(served, "POST", "/resource_providers",
                             json.dumps({"name": name}).encode(), chunked=True)
    assert status == 200, body
    assert json.loads(body)["name"] == name


def test_a_body_announced_too_large_is_413_at_once(served):
    started = time.monotonic()
    client = raw_request(served, "POST /resource_providers HTTP/1.1\r\nHost: x\r\n"
                         "x-auth-token: admin\r\ncontent-type: application/json\r\n"
                         "content-length: 104857600\r\n", b'{"name": "')
    response = http.client.HTTPResponse(client)
    try:
        response.begin()
        body = response.read()
        # The connection ends with the answer: its unread rest is not a request.
        client.settimeout(CLIENT_TIMEOUT_SECONDS)
        assert client.recv(1) == b""
    finally:
        response.close()
        client.close()
    assert time.monotonic() - started < CLIENT_TIMEOUT_SECONDS
    assert response.status == 413
    assert response.getheader("openstack-request-id")
    (error,) = json.loads(body)["errors"]
    assert "larger than 65536 bytes" in error["detail"]


def test_a_chunked_body_past_the_limit_is_413(served):
    status, headers, body = answer(served, "POST", "/resource_providers",
                                   json.dumps({"name": "x" * 70_000}).encode(), chunked=True)
    assert status == 413
    assert "larger than 65536 bytes" in error_of(headers, body)["detail"]


def test_a_long_value_is_quoted_only_in_part(served):
    status, headers, body = answer(served, "POST", "/resource_providers",
                                   json.dumps({"name": "y" * 60_000}))
    assert status == 400
    detail = error_of(headers, body)["detail"]
    assert "is too long" in detail and "60,002 characters" in detail
    assert len(detail) < 10_000


def test_stalled_bodies_are_given_up_on_and_hold_nobody_up_for_long(served):
    # More stalled clients than the worker has threads: each announces 100
    # bytes and sends 8, to a route that reads its body and to one that does
    # not (the server would read the rest after the answer).
    stalled = [
        raw_request(served, f"{route} HTTP/1.1\r\nHost: x\r\n"
                    "x-auth-token: admin\r\ncontent-type: application/json\r\n"
                    "content-length: 100\r\n", b'{"a": 1,')
        for route in ["POST /resource_providers", "PUT /traits/CUSTOM_STALLED"] * 4
    ]
    assert_served_while_given_up_on(served, stalled)


def test_a_query_naming_two_hundred_aggregates_is_served(served):
    aggregates = ",".join(str(uuid.uuid4()) for _ in range(200))
    status, _, body = answer(served, "GET", f"/resource_providers?member_of=in:{aggregates}")
    assert status == 200, body[:300]
    assert json.loads(body) == {"resource_providers": []}


def test_a_request_line_past_the_limit_is_refused_in_placements_format(served):
    aggregates = ",".join(str(uuid.uuid4()) for _ in range(300))
    status, headers, body = answer(served, "GET", f"/resource_providers?member_of=in:{aggregates}")
    assert status == 414
    assert headers["openstack-request-id"].startswith("req-")
    error = error_of(headers, body)
    assert error["status"] == 414 and error["title"] == "Request-URI Too Long"


def test_headers_past_the_limit_are_refused_in_placements_format(served):
    client = raw_request(served, "GET / HTTP/1.1\r\nHost: x\r\nx-big: " + "a" * 9000 + "\r\n")
    response = http.client.HTTPResponse(client)
    try:
        response.begin()
        body = response.read()
    finally:
        response.close()
        client.close()
    assert response.status == 431
    (error,) = json.loads(body)["errors"]
    assert error["status"] == 431


def test_head_is_not_allowed_and_sends_no_body(served):
    status, headers, body = answer(served, "HEAD", "/resource_providers")
    assert status == 405 and body == b""
    assert headers["allow"] == "GET, POST"
    assert "no-body response" not in served.log()


def test_stalled_request_heads_are_given_up_on_too(served):
    stalled = [raw_request(served, "GET / HTTP/1.1\r\nHost: x") for _ in range(8)]
    assert_served_while_given_up_on(served, stalled)
