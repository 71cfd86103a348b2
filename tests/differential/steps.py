"""Steps: templated requests, and how each service turns one into bytes.

A step is what the generator means to send. Two things in it are filled in
per service just before sending, so a step means the same on both even when
their states differ slightly, and a shrunk sequence stays meaningful:

- ``Late`` values: a provider's or consumer's current generation (plus an
  offset, to send a wrong one on purpose), read by a GET on that service.
- placeholder uuids (``PLACEHOLDER_PREFIX``...), standing for the uuid a
  service picked itself for a provider created without one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.differential.wire import Answer, WireRequest

PLACEHOLDER_PREFIX = "99999999-9999-4999-8999-"
GENERATED_BASE = 900_000_000_000  # placeholders of uuids picked by a service unasked
BINDING_HEADERS = (("x-auth-token", "admin"), ("openstack-api-version", "placement latest"),
                   ("accept", "application/json"))


def placeholder(number: int) -> str:
    return f"{PLACEHOLDER_PREFIX}{number:012d}"


@dataclass(frozen=True)
class Late:
    """A generation each service fills in from its own state.

    ``kind`` is "provider" or "consumer"; ``offset`` 0 sends the current
    generation, anything else a wrong one. A consumer without allocations has
    generation ``None``; "wrong" then sends ``offset`` itself.
    """

    kind: str
    uuid: str
    offset: int = 0


@dataclass(frozen=True)
class Raw:
    """A body sent byte for byte (not JSON, or not what its type says)."""

    data: bytes


@dataclass
class Step:
    """One request of a sequence, before per-service binding."""

    label: str
    method: str
    route: str  # the path template, e.g. "/resource_providers/{uuid}"
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None  # None: no body; Raw; or JSON with Late values inside
    # A provider created without a uuid: the placeholder that stands for it.
    creates: str | None = None

    def target(self) -> str:
        if not self.query:
            return self.path
        pairs = "&".join(f"{quote(name, safe='')}={quote(value, safe=':,!')}"
                         for name, value in self.query)
        return f"{self.path}?{pairs}"

    def version(self) -> str | None:
        for name, value in self.headers:
            if name == "openstack-api-version":
                return value
        return None


@dataclass
class Binding:
    """One service's side of a sequence: its placeholder uuids."""

    service: Any  # services.Service
    uuids: dict[str, str] = field(default_factory=dict)  # placeholder -> real

    def wire(self, step: Step) -> WireRequest:
        """``step`` as this service is sent it."""
        body = b""
        if isinstance(step.body, Raw):
            body = step.body.data
        elif step.body is not None:
            body = self._real(json.dumps(self._bind(step.body))).encode()
        return WireRequest(step.method, self._real(step.target()), step.headers, body)

    def send(self, step: Step) -> tuple[WireRequest, Answer]:
        request = self.wire(step)
        answer = self.service.send(request)
        if step.route == "/resource_providers" and step.method == "POST" and (
                answer.status in (200, 201)):
            created = _created_uuid(answer)
            if created and created not in request.body.decode("utf-8", "replace"):
                # The service picked it: planned (``creates``), or the body
                # lost its uuid to a deliberate break. Both services count
                # such providers alike, so the counter names them alike.
                stand_in = step.creates or placeholder(GENERATED_BASE + len(self.uuids))
                self.uuids[stand_in] = created
        return request, answer

    def reset(self) -> None:
        self.service.reset()
        self.uuids.clear()

    def _real(self, text: str) -> str:
        for stand_in, real in self.uuids.items():
            text = text.replace(stand_in, real)
        return text

    def _bind(self, value: Any) -> Any:
        if isinstance(value, Late):
            return self._generation(value)
        if isinstance(value, dict):
            return {key: self._bind(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._bind(item) for item in value]
        return value

    def _generation(self, late: Late) -> int | None:
        uuid = self._real(late.uuid)
        if late.kind == "provider":
            answer = self.service.send(
                WireRequest("GET", f"/resource_providers/{uuid}", BINDING_HEADERS))
            current = answer.json()["generation"] if answer.status == 200 else 0
            return current + late.offset
        answer = self.service.send(WireRequest("GET", f"/allocations/{uuid}", BINDING_HEADERS))
        generation = answer.json().get("consumer_generation") if answer.status == 200 else None
        if late.offset == 0:
            return generation
        return late.offset if generation is None else generation + late.offset


def _created_uuid(answer: Answer) -> str | None:
    try:
        return str(answer.json()["uuid"])
    except (ValueError, KeyError, TypeError):
        pass
    location = answer.headers.get("location", "")
    return location.rstrip("/").rsplit("/", 1)[-1] or None
