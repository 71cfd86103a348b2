"""docs/modelling.md, run: every example of the modelling guide against a live Stowage.

The guide is written in a few kinds of fenced block (its first section
describes them for readers):

- ``tree``: providers, one per line, children indented under their parent,
  each followed by more-indented lines for its inventories (``VCPU 16
  allocation_ratio=4.0``), ``traits: A, B`` and ``aggregates: name``. The test
  creates them through the API, in order.
- ``http``: one request. A request line (query parameters may continue on
  indented lines), optional headers, a blank line and a JSON body.
  ``$name`` stands for a uuid the test makes up per name, the same for the
  whole section; answers have the uuids turned back into ``$name``.
- ``answer``, right after an ``http`` block: the status line, then
  optionally JSON that the answer must contain (fields left out are not
  checked; lists must have the shown length).
- ``candidates``, right after an ``http`` block for allocation candidates:
  one line per allocation request, ``provider: CLASS amount, ...; other:
  ...``, compared in any order; ``none`` for an empty answer. A provider may
  carry its request groups in brackets, ``numa0 [_CPU]``; once one does, the
  whole block's mappings are compared.

An ``http`` block with no answer block after it must succeed (2xx). Each
``##`` section runs on a fresh, empty Stowage: once served (``stowage serve``
on SQLite, over HTTP) and once in process on every backend, where each
answer is also held to the OpenAPI description (``tests.support.Client``).
"""
from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stowage.api.app import create_app
from tests.clients.served import ServedStowages
from tests.support import Client, test_conf

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "modelling.md"
DEFAULT_VERSION = "1.39"
EXECUTED_KINDS = ("tree", "http", "answer", "candidates")
# Made-up uuids are derived from the names, so a failing run names the same
# uuids every time.
NAMESPACE = uuid.UUID("5e3c3a52-6d1f-4f43-9a3e-0c0f6d0d1e55")
NAME = re.compile(r"\$([a-z][a-z0-9_]*)")
PROVIDER_LINE = re.compile(r"^[a-z][a-z0-9_-]*$")
INVENTORY_FIELDS = {"reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"}

Sender = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]
"""Sends (method, path with query, headers, body) and returns (status, body)."""


class GuideError(AssertionError):
    """A block that does not parse, or an answer other than the one shown."""


# -- reading the guide -------------------------------------------------------


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    line: int  # of the opening fence, 1-based


@dataclass(frozen=True)
class Section:
    title: str
    line: int
    blocks: tuple[Block, ...]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def read_sections(text: str) -> list[Section]:
    """The ``##`` sections of a guide, each with its executed blocks in order."""
    sections: list[Section] = []
    title, title_line, blocks = None, 0, []
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.strip() == "```":
                kind, start, lines = fence
                if kind in EXECUTED_KINDS:
                    if title is None:
                        raise GuideError(f"line {start}: an executed block before the first section")
                    blocks.append(Block(kind, "\n".join(lines), start))
                fence = None
            else:
                fence[2].append(line)
        elif line.startswith("```"):
            fence = (line[3:].strip(), number, [])
        elif line.startswith("## "):
            if title is not None:
                sections.append(Section(title, title_line, tuple(blocks)))
            title, title_line, blocks = line[3:].strip(), number, []
    if fence is not None:
        raise GuideError(f"line {fence[1]}: a fence that is never closed")
    if title is not None:
        sections.append(Section(title, title_line, tuple(blocks)))
    return sections


def executed_sections() -> list[Section]:
    return [s for s in read_sections(GUIDE.read_text(encoding="utf-8")) if s.blocks]


# -- names for uuids ---------------------------------------------------------


class Names:
    """``$name`` ↔ uuid, for one section."""

    def __init__(self) -> None:
        self.uuid_of: dict[str, str] = {}
        self.name_of: dict[str, str] = {}

    def uuid(self, name: str) -> str:
        if name not in self.uuid_of:
            made_up = str(uuid.uuid5(NAMESPACE, name))
            self.uuid_of[name], self.name_of[made_up] = made_up, name
        return self.uuid_of[name]

    def substitute(self, text: str) -> str:
        return NAME.sub(lambda found: self.uuid(found[1]), text)

    def readable(self, value: Any) -> Any:
        """``value`` with every known uuid written back as ``$name``."""
        if isinstance(value, dict):
            return {self.readable(key): self.readable(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.readable(item) for item in value]
        if isinstance(value, str) and value in self.name_of:
            return "$" + self.name_of[value]
        return value

    def provider(self, uuid_text: str) -> str:
        return self.name_of.get(uuid_text, uuid_text)


# -- trees -------------------------------------------------------------------


@dataclass
class Provider:
    name: str
    parent: str | None
    inventories: dict[str, dict[str, Any]] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)


def parse_tree(text: str) -> list[Provider]:
    """The providers of a ``tree`` block, parents before children."""
    providers: list[Provider] = []
    stack: list[tuple[int, Provider]] = []  # (indent, provider) of the open ancestors
    for offset, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent, line = len(raw) - len(raw.lstrip()), raw.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        owner = stack[-1][1] if stack else None
        if PROVIDER_LINE.match(line):
            provider = Provider(line, owner.name if owner else None)
            providers.append(provider)
            stack.append((indent, provider))
            continue
        if owner is None:
            raise GuideError(f"tree line {offset}: {line!r} belongs to no provider")
        key, colon, rest = line.partition(":")
        if colon and key in ("traits", "aggregates"):
            getattr(owner, key).extend(item for item in re.split(r"[,\s]+", rest) if item)
            continue
        owner.inventories.update(parse_inventory(line, offset))
    return providers


def parse_inventory(line: str, offset: int) -> dict[str, dict[str, Any]]:
    """``VCPU 16 allocation_ratio=4.0 reserved=2`` → ``{"VCPU": {"total": 16, ...}}``."""
    words = line.split()
    if len(words) < 2 or not words[0].isupper() or not words[1].isdigit():
        raise GuideError(f"tree line {offset}: {line!r} is neither a provider, an inventory nor traits/aggregates")
    inventory: dict[str, Any] = {"total": int(words[1])}
    for word in words[2:]:
        key, equals, value = word.partition("=")
        if not equals or key not in INVENTORY_FIELDS:
            raise GuideError(f"tree line {offset}: {word!r} is not one of {sorted(INVENTORY_FIELDS)}=value")
        inventory[key] = float(value) if key == "allocation_ratio" else int(value)
    return {words[0]: inventory}


# -- requests and answers ----------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def parse_request(text: str, names: Names) -> Request:
    lines = text.splitlines()
    if not lines or len(lines[0].split()) != 2:
        raise GuideError("an http block starts with 'METHOD /path'")
    method, path = lines[0].split()
    rest = lines[1:]
    while rest and rest[0][:1].isspace() and rest[0].strip():
        path += rest.pop(0).strip()  # a query continued on an indented line
    headers = {"X-Auth-Token": "admin", "OpenStack-API-Version": f"placement {DEFAULT_VERSION}",
               "Accept": "application/json"}
    while rest and rest[0].strip():
        name, colon, value = rest.pop(0).partition(":")
        if not colon:
            raise GuideError(f"{name!r} is not a 'Name: value' header")
        headers[name.strip()] = names.substitute(value.strip())
    body_text = "\n".join(rest).strip()
    body = b""
    if body_text:
        try:
            body = json.dumps(json.loads(names.substitute(body_text))).encode()
        except json.JSONDecodeError as error:
            raise GuideError(f"the request body is not JSON: {error}") from None
        headers["Content-Type"] = "application/json"
    return Request(method, names.substitute(path), headers, body)


def contains(shown: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``shown`` has (dict fields may be left out)."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(value, actual[key]) for key, value in shown.items()
        )
    if isinstance(shown, list):
        return (isinstance(actual, list) and len(shown) == len(actual)
                and all(contains(s, a) for s, a in zip(shown, actual, strict=True)))
    # 4 and 4.0 are the same number, but true is not 1.
    return shown == actual and isinstance(shown, bool) == isinstance(actual, bool)


def check_answer(text: str, status: int, body: bytes, names: Names) -> None:
    head, _newline, shown_text = text.strip().partition("\n")
    code = head.split()[0] if head.split() else ""
    if not code.isdigit():
        raise GuideError(f"an answer block starts with a status line such as '200 OK', not {head!r}")
    actual = names.readable(json.loads(body)) if body.strip() else None
    if int(code) != status:
        raise GuideError(f"the answer is {status}, the guide shows {code}: {json.dumps(actual)}")
    if not shown_text.strip():
        return
    try:
        shown = json.loads(shown_text)
    except json.JSONDecodeError as error:
        raise GuideError(f"the shown answer is not JSON: {error}") from None
    if not contains(shown, actual):
        raise GuideError(f"the answer does not contain what the guide shows; it is\n{json.dumps(actual, indent=2)}")


# -- candidates --------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One allocation request in the guide's notation: who gives what, for which groups."""

    allocations: frozenset[tuple[str, str, int]]
    mappings: frozenset[tuple[str, str]] | None

    def render(self) -> str:
        providers = sorted({name for name, _rc, _n in self.allocations}
                           | {name for _g, name in self.mappings or ()})
        parts = []
        for name in providers:
            groups = sorted(group for group, holder in self.mappings or () if holder == name)
            label = name + (" [" + " ".join(group or '""' for group in groups) + "]"
                            if self.mappings is not None else "")
            resources = ", ".join(f"{rc} {n}" for holder, rc, n in sorted(self.allocations) if holder == name)
            parts.append(f"{label}: {resources}" if resources else label)
        return "; ".join(parts)


CANDIDATE_PART = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)\s*(?:\[(?P<groups>[^\]]*)\])?\s*(?::(?P<resources>.*))?$")


def parse_candidates(text: str) -> tuple[list[Candidate], bool]:
    """The candidates a block shows, and whether it shows mappings."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines == ["none"]:
        return [], False
    with_mappings = any("[" in line for line in lines)
    candidates = []
    for line in lines:
        allocations, mappings = set(), set()
        for part in line.split(";"):
            found = CANDIDATE_PART.match(part.strip())
            if not found:
                raise GuideError(f"{part.strip()!r} is not 'provider [groups]: CLASS amount, ...'")
            name = found["name"]
            for group in (found["groups"] or "").split():
                mappings.add(("" if group == '""' else group, name))
            for resource in (found["resources"] or "").split(","):
                if not resource.strip():
                    continue
                words = resource.split()
                if len(words) != 2 or not words[1].isdigit():
                    raise GuideError(f"{resource.strip()!r} is not 'CLASS amount'")
                allocations.add((name, words[0], int(words[1])))
        candidates.append(Candidate(frozenset(allocations), frozenset(mappings) if with_mappings else None))
    return candidates, with_mappings


def check_candidates(text: str, status: int, body: bytes, names: Names) -> None:
    shown, with_mappings = parse_candidates(text)
    if status != 200:
        raise GuideError(f"the answer is {status}, not 200: {body.decode(errors='replace')}")
    actual = []
    for request in json.loads(body)["allocation_requests"]:
        allocations = frozenset(
            (names.provider(holder), rc, amount)
            for holder, given in request["allocations"].items()
            for rc, amount in given["resources"].items()
        )
        mappings = None
        if with_mappings:
            mappings = frozenset((group, names.provider(holder))
                                 for group, holders in request["mappings"].items() for holder in holders)
        actual.append(Candidate(allocations, mappings))
    expected_lines = sorted(candidate.render() for candidate in shown)
    actual_lines = sorted(candidate.render() for candidate in actual)
    if expected_lines != actual_lines:
        raise GuideError("the candidates differ; the answer is\n" + ("\n".join(actual_lines) or "none")
                         + "\nthe guide shows\n" + ("\n".join(expected_lines) or "none"))


# -- running a section -------------------------------------------------------


def run_section(section: Section, send: Sender) -> int:
    """Run every block of ``section`` in order; returns how many requests the guide shows."""
    names = Names()
    requests = 0
    blocks = list(section.blocks)
    for index, block in enumerate(blocks):
        try:
            if block.kind == "tree":
                build_tree(parse_tree(block.text), send, names)
            elif block.kind == "http":
                requests += 1
                request = parse_request(block.text, names)
                status, body = send(request.method, request.path, request.headers, request.body)
                following = blocks[index + 1] if index + 1 < len(blocks) else None
                if following is None or following.kind not in ("answer", "candidates"):
                    if not 200 <= status < 300:
                        raise GuideError(f"the answer is {status} and the guide shows none: "
                                         f"{body.decode(errors='replace')}")
                elif following.kind == "answer":
                    check_answer(following.text, status, body, names)
                else:
                    check_candidates(following.text, status, body, names)
            elif index == 0 or blocks[index - 1].kind != "http":
                raise GuideError(f"a {block.kind} block follows no http block")
        except GuideError as error:
            at = blocks[index + 1] if block.kind == "http" and index + 1 < len(blocks) else block
            shown = f"the {block.kind} block at docs/modelling.md:{block.line}"
            if at is not block and at.kind in ("answer", "candidates"):
                shown += f" (answer at line {at.line})"
            raise GuideError(f"section {section.title!r}, {shown}: {error}") from None
    return requests


def build_tree(providers: list[Provider], send: Sender, names: Names) -> None:
    """Create ``providers`` with their classes, traits, inventories and aggregates."""

    def call(method: str, path: str, body: Any = None, expected: tuple[int, ...] = (200, 201, 204)) -> Any:
        headers = {"X-Auth-Token": "admin", "OpenStack-API-Version": f"placement {DEFAULT_VERSION}",
                   "Accept": "application/json"}
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, answer = send(method, path, headers, payload)
        if status not in expected:
            raise GuideError(f"{method} {path} while building the tree: {status} {answer.decode(errors='replace')}")
        return json.loads(answer) if answer.strip() else None

    for provider in providers:
        for resource_class in provider.inventories:
            if resource_class.startswith("CUSTOM_"):
                call("PUT", f"/resource_classes/{resource_class}")
        for trait in provider.traits:
            if trait.startswith("CUSTOM_"):
                call("PUT", f"/traits/{trait}")
        provider_uuid = names.uuid(provider.name)
        body = {"name": provider.name, "uuid": provider_uuid}
        if provider.parent:
            body["parent_provider_uuid"] = names.uuid(provider.parent)
        generation = call("POST", "/resource_providers", body)["generation"]
        base = f"/resource_providers/{provider_uuid}"
        if provider.inventories:
            generation = call("PUT", f"{base}/inventories", {
                "inventories": provider.inventories, "resource_provider_generation": generation,
            })["resource_provider_generation"]
        if provider.traits:
            generation = call("PUT", f"{base}/traits", {
                "traits": provider.traits, "resource_provider_generation": generation,
            })["resource_provider_generation"]
        if provider.aggregates:
            call("PUT", f"{base}/aggregates", {
                "aggregates": [names.uuid(name) for name in provider.aggregates],
                "resource_provider_generation": generation,
            })


def in_process(app) -> Sender:
    client = Client(app, token=None, version=None)

    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        answer = client.request(method, path, headers=headers, raw=body)
        return answer.status, answer.body

    return send


def over_http(port: int) -> Sender:
    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    return send


# -- the tests ---------------------------------------------------------------

SECTIONS = executed_sections()


def holds(section: Section, send: Sender) -> None:
    """Run ``section``; a difference fails the test with the guide's words only."""
    try:
        run_section(section, send)
    except GuideError as error:
        message = str(error)
    else:
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="module")
def served_stowages():
    """Fresh served SQLite Stowages, the next one booting while a section runs."""
    stowages = ServedStowages(postgresql_url=None)
    yield stowages
    stowages.close()


@pytest.mark.parametrize("section", SECTIONS, ids=[s.slug for s in SECTIONS])
def test_the_guide_section_holds_on_a_served_stowage(section, served_stowages):
    served = served_stowages.take("sqlite")
    try:
        holds(section, over_http(served.port))
    finally:
        # Killed, not stopped: nothing is left to drain, and a graceful
        # stop costs about two seconds per section.
        served.discard()


@pytest.mark.parametrize("section", SECTIONS, ids=[s.slug for s in SECTIONS])
def test_the_guide_section_holds_in_process_on_each_backend(section, database):
    holds(section, in_process(create_app(test_conf(), database)))


def test_every_modelling_section_asks_for_candidates():
    assert SECTIONS, "docs/modelling.md has no executed sections"
    for section in SECTIONS:
        assert any(block.kind == "candidates" for block in section.blocks), section.title


# -- the harness itself, on small made-up guides -----------------------------

ONE_HOST = """\
## One host

```tree
cn1
  VCPU 4
```

```http
GET /allocation_candidates?resources=VCPU:1
```

```candidates
{shown}
```
"""


def test_candidates_other_than_shown_fail_naming_the_section_and_the_block(database):
    (section,) = read_sections(ONE_HOST.format(shown="cn2: VCPU 1"))
    with pytest.raises(GuideError) as raised:
        run_section(section, in_process(create_app(test_conf(), database)))
    message = str(raised.value)
    assert "section 'One host', the http block at docs/modelling.md:8 (answer at line 12)" in message
    assert "the answer is\ncn1: VCPU 1\nthe guide shows\ncn2: VCPU 1" in message


def test_the_shown_candidates_pass_in_any_order(database):
    (section,) = read_sections(ONE_HOST.format(shown="cn1: VCPU 1"))
    assert run_section(section, in_process(create_app(test_conf(), database))) == 1


@pytest.mark.parametrize(("block", "complaint"), [
    ("```tree\ncn1\n  Vcpu 4\n```", "is neither a provider, an inventory nor traits/aggregates"),
    ("```tree\ncn1\n  VCPU 4 ratio=2\n```", "'ratio=2' is not one of"),
    ("```http\nGET\n```", "an http block starts with 'METHOD /path'"),
    ("```http\nPUT /traits/CUSTOM_A\n\n{not json\n```", "the request body is not JSON"),
    ("```answer\n204\n```", "a answer block follows no http block"),
    ("```http\nGET /\n```\n\n```answer\nOK\n```", "starts with a status line"),
    ("```http\nGET /allocation_candidates?resources=VCPU:1\n```\n\n```candidates\ncn1 VCPU 1\n```",
     "'cn1 VCPU 1' is not 'provider [groups]: CLASS amount, ...'"),
])
def test_a_block_that_does_not_parse_fails_naming_the_section_and_the_block(block, complaint):
    (section,) = read_sections(f"## Broken\n\n{block}\n")

    def send(method, path, headers, body):
        return 200, b'{"allocation_requests": []}'

    with pytest.raises(GuideError) as raised:
        run_section(section, send)
    assert str(raised.value).startswith("section 'Broken', the ")
    assert "docs/modelling.md:3" in str(raised.value)
    assert complaint in str(raised.value)
