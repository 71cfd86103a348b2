"""Run a seed against two services, group the differences, shrink and print them.

A seed's run starts both services fresh, sends every step to both (the
reference first: its answer steers the generator), and keeps the steps whose
answers differ. Differences are grouped into classes by ``signature``; the
first of each class is shrunk to a short sequence that still ends in the same
difference (``shrink``) and printed with every request and both answers.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tests.differential.compare import (
    Aspect,
    Normal,
    differences,
    limited_reference,
    normalise,
)
from tests.differential.generator import Generator
from tests.differential.services import Service
from tests.differential.steps import BINDING_HEADERS, Binding, Late, Raw, Step
from tests.differential.wire import Answer, WireRequest

_TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|CUSTOM_[A-Z0-9_]+")
_DIGITS = re.compile(r"\d+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Exchange:
    """One step as sent to both services, with both answers and their differences."""

    index: int
    step: Step
    requests: tuple[WireRequest, WireRequest]  # reference's, candidate's
    answers: tuple[Answer, Answer]
    aspects: list[Aspect]
    # A limit cut upstream's candidates: compared as any N of its unlimited ones.
    limited: bool = False

    @property
    def signature(self) -> tuple[Any, ...]:
        """What makes two differences the same one: route, both statuses, the
        generalised places that differ and, for error details, the shape of
        the reference's message."""
        wheres = tuple(sorted({aspect.general for aspect in self.aspects}))
        detail = ""
        for aspect in self.aspects:
            if aspect.general.endswith("/detail") and isinstance(aspect.reference, str):
                detail = _TOKEN.sub("…", _DIGITS.sub("N", aspect.reference))[:80]
        return (self.step.method, self.step.route, self.answers[0].status,
                self.answers[1].status, wheres, detail)

    @property
    def changed_state(self) -> bool:
        """Whether either service may have changed state (a write either accepted)."""
        return self.step.method != "GET" and any(200 <= answer.status < 300
                                                 for answer in self.answers)


class Session:
    """Both services, each with its own placeholder uuids."""

    def __init__(self, reference: Service, candidate: Service) -> None:
        self.reference = Binding(reference)
        self.candidate = Binding(candidate)

    @property
    def labels(self) -> tuple[str, str]:
        return self.reference.service.label, self.candidate.service.label

    def reset(self) -> None:
        self.reference.reset()
        self.candidate.reset()

    def exchange(self, index: int, step: Step) -> Exchange:
        reference_request, reference_answer = self.reference.send(step)
        candidate_request, candidate_answer = self.candidate.send(step)
        reference_normal = normalise(reference_answer, _inverse(self.reference.uuids)
                                     | _unasked(step, reference_request, reference_answer))
        candidate_normal = normalise(candidate_answer, _inverse(self.candidate.uuids)
                                     | _unasked(step, candidate_request, candidate_answer))
        limit = _cutting_limit(step, reference_normal, candidate_normal)
        if limit is not None:
            reference_normal = self._limited_reference(step, limit, reference_normal,
                                                       candidate_normal)
        aspects = differences(step.route, reference_normal, candidate_normal)
        return Exchange(index, step, (reference_request, candidate_request),
                        (reference_answer, candidate_answer), aspects, limit is not None)

    def _limited_reference(self, step: Step, limit: int, reference: Normal,
                           candidate: Normal) -> Normal:
        """Compare a cut candidates answer with upstream's unlimited one (see
        ``compare.limited_reference``); two more GETs to upstream, not compared."""
        generated = _inverse(self.reference.uuids)
        unlimited_step = replace(step, query=tuple(
            (name, value) for name, value in step.query if name != "limit"))
        _request, answer = self.reference.send(unlimited_step)
        unlimited = normalise(answer, generated)
        if unlimited.status != 200 or not isinstance(unlimited.body, dict) or len(
                unlimited.body.get("allocation_requests", [])) <= limit:
            return reference
        providers = normalise(self.reference.service.send(WireRequest(
            "GET", "/resource_providers", BINDING_HEADERS)), generated).body
        roots = {provider["uuid"]: provider["root_provider_uuid"]
                 for provider in providers["resource_providers"]}
        return limited_reference(reference, candidate, unlimited, roots)

    def replay(self, steps: list[Step]) -> list[Exchange]:
        """Reset both services and send ``steps``; every exchange returned."""
        self.reset()
        return [self.exchange(index, step) for index, step in enumerate(steps)]


def _cutting_limit(step: Step, reference: Normal, candidate: Normal) -> int | None:
    """The ``limit`` of a candidates request when it may have cut upstream's answer."""
    if step.route != "/allocation_candidates" or reference.status != 200 or (
            candidate.status != 200) or not isinstance(reference.body, dict) or (
            not isinstance(candidate.body, dict)):
        return None
    limits = [value for name, value in step.query if name == "limit"]
    if not limits or not limits[-1].isdigit() or int(limits[-1]) < 1:
        return None
    limit = int(limits[-1])
    return limit if len(reference.body.get("allocation_requests", [])) == limit else None


def _unasked(step: Step, request: WireRequest, answer: Answer) -> dict[str, str]:
    """Uuids in a failed provider creation's answer that the request did not
    carry: the service picked them (upstream names one in its error detail)."""
    if step.route != "/resource_providers" or step.method != "POST" or answer.status < 400:
        return {}
    sent = request.body.decode("utf-8", "replace")
    return {found: "<generated>" for found in _UUID.findall(
        answer.body.decode("utf-8", "replace")) if found not in sent}


def _inverse(uuids: dict[str, str]) -> dict[str, str]:
    return {real: stand_in for stand_in, real in uuids.items()}


@dataclass
class Finding:
    """One class of difference, as first seen in a seed's run."""

    backend: str
    seed: int
    first: Exchange
    occurrences: int = 1
    reproduction: list[Exchange] | None = None
    shrunk: bool = False  # shrinking finished within its time

    @property
    def signature(self) -> tuple[Any, ...]:
        return self.first.signature


@dataclass
class SeedRun:
    backend: str
    seed: int
    steps: list[Step] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    allowed: int = 0  # differences the allow-list explains
    seconds: float = 0.0


def run_seed(session: Session, backend: str, seed: int, count: int,
             explained: Callable[[Exchange], bool] = lambda exchange: False) -> SeedRun:
    """Generate and send ``count`` steps of ``seed``; group the differences
    ``explained`` does not account for (the allow-list) into findings."""
    started = time.monotonic()
    run = SeedRun(backend, seed)
    session.reset()
    generator = Generator(seed)
    by_signature: dict[tuple[Any, ...], Finding] = {}
    for index in range(count):
        step, on_answer = generator.next()
        exchange = session.exchange(index, step)
        if on_answer is not None:
            on_answer(exchange.answers[0])
        run.steps.append(step)
        run.exchanges.append(exchange)
        if exchange.aspects and explained(exchange):
            run.allowed += 1
        elif exchange.aspects:
            finding = by_signature.get(exchange.signature)
            if finding is None:
                by_signature[exchange.signature] = finding = Finding(backend, seed, exchange)
                run.findings.append(finding)
            else:
                finding.occurrences += 1
    run.seconds = time.monotonic() - started
    return run


class _OutOfTime(Exception):
    pass


def shrink(session: Session, run: SeedRun, finding: Finding, seconds: float) -> None:
    """Find a short prefix that still ends in ``finding``'s difference.

    Tries, each from fresh services: the step alone; the earlier steps that
    mention the same objects (uuids, custom names), closed transitively; the
    earlier writes either service accepted; then delta debugging (ddmin)
    removes chunks of what is left. Stops after ``seconds`` with the
    shortest sequence found so far. Sets ``finding.reproduction`` to the
    replay of the result.
    """
    deadline = time.monotonic() + seconds
    failing = finding.first.step
    target = finding.signature
    prefix = run.steps[:finding.first.index]

    def reproduces(candidate: list[Step]) -> bool:
        if time.monotonic() > deadline:
            raise _OutOfTime
        exchanges = session.replay([*candidate, failing])
        return exchanges[-1].signature == target

    best = prefix
    verified = False
    try:
        if reproduces([]):
            best, verified = [], True
        else:
            writes = [step for step, exchange in zip(prefix, run.exchanges, strict=False)
                      if exchange.changed_state]
            related = _related(writes, failing)
            for candidate in (related, writes):
                if len(candidate) < len(best) and reproduces(candidate):
                    best, verified = candidate, True
                    break
            best, verified = _ddmin(best, reproduces, verified)
        finding.shrunk = True
    except _OutOfTime:
        pass
    if not verified and time.monotonic() > deadline:
        best = prefix  # the whole prefix: a seed replays exactly
    finding.reproduction = session.replay([*best, failing])


def _ddmin(steps: list[Step], reproduces: Any, verified: bool) -> tuple[list[Step], bool]:
    """Zeller's ddmin over complements: remove chunks while the difference stays."""
    granularity = 2
    while len(steps) >= 1:
        size = max(1, -(-len(steps) // granularity))
        for start in range(0, len(steps), size):
            complement = steps[:start] + steps[start + size:]
            if reproduces(complement):
                steps, verified = complement, True
                granularity = max(granularity - 1, 2)
                break
        else:
            if size == 1:
                break
            granularity = min(granularity * 2, len(steps))
    return steps, verified


def _tokens(step: Step) -> set[str]:
    text = step.target() + " " + _show_body(step.body)
    return set(_TOKEN.findall(text))


def _related(writes: list[Step], failing: Step) -> list[Step]:
    """The writes connected to ``failing`` through shared uuids and custom names."""
    tokens = _tokens(failing)
    chosen: set[int] = set()
    grew = True
    while grew:
        grew = False
        for index, step in enumerate(writes):
            if index not in chosen and _tokens(step) & tokens:
                chosen.add(index)
                tokens |= _tokens(step)
                grew = True
    return [step for index, step in enumerate(writes) if index in chosen]


# --- printing -----------------------------------------------------------------


def _show_body(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, Raw):
        return repr(body.data)
    return json.dumps(_show_late(body), ensure_ascii=False)


def _show_late(value: Any) -> Any:
    if isinstance(value, Late):
        offset = f"{value.offset:+d}" if value.offset else ""
        return f"<current {value.kind} generation of {value.uuid}{offset}>"
    if isinstance(value, dict):
        return {key: _show_late(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_show_late(item) for item in value]
    return value


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def show_answer(answer: Answer, limit: int) -> str:
    from tests.differential.compare import COMPARED_HEADERS

    headers = ", ".join(f"{name}: {answer.headers[name]}" for name in COMPARED_HEADERS
                        if name in answer.headers)
    body = answer.body.decode("utf-8", "backslashreplace")
    return f"{answer.status} [{headers}] {_clip(body, limit)}"


def show_exchange(number: int, exchange: Exchange, labels: tuple[str, str], last: bool) -> str:
    step = exchange.step
    limit = 3000 if last else 300
    request = exchange.requests[0]
    lines = [f"  {number}. {step.method} {request.target}    ({step.label})"]
    lines.append("     headers: " + ", ".join(f"{name}: {value}" for name, value in step.headers))
    if step.body is not None:
        lines.append("     body: " + _clip(_show_body(step.body), limit))
    if request.body and not isinstance(step.body, Raw):
        lines.append("     sent to " + labels[0] + ": " + _clip(request.body.decode(), limit))
        if exchange.requests[1].body != request.body:
            lines.append("     sent to " + labels[1] + ": "
                         + _clip(exchange.requests[1].body.decode(), limit))
    for label, answer in zip(labels, exchange.answers, strict=False):
        lines.append(f"     {label}: {show_answer(answer, limit)}")
    if exchange.limited:
        lines.append("     (limit cut upstream's candidates: compared with any such number of "
                     "its unlimited candidates and their trees' summaries)")
    if exchange.aspects and last:
        lines.append("     differs in: " + "; ".join(
            f"{aspect.where}: {_clip(json.dumps(aspect.reference, ensure_ascii=False), 400)}"
            f" ≠ {_clip(json.dumps(aspect.candidate, ensure_ascii=False), 400)}"
            for aspect in exchange.aspects))
    return "\n".join(lines)


def show_finding(finding: Finding, labels: tuple[str, str]) -> str:
    first = finding.first
    head = (f"[{finding.backend} seed {finding.seed} step {first.index}] {first.step.method} "
            f"{first.step.route}: {labels[0]} {first.answers[0].status}, {labels[1]} "
            f"{first.answers[1].status}; differs in "
            + ", ".join(sorted({aspect.general for aspect in first.aspects}))
            + f" (seen {finding.occurrences} time(s) in this seed)")
    exchanges = finding.reproduction or [first]
    if finding.reproduction is None:
        note = "not shrunk (out of time); the last step only:"
    elif finding.shrunk:
        note = f"minimal reproduction, {len(exchanges)} step(s) from empty databases:"
    else:
        note = f"reproduction (shrinking ran out of time), {len(exchanges)} step(s):"
    last = exchanges[-1]
    if finding.reproduction is not None and last.signature != finding.signature:
        note += " (NOTE: the replay ended differently; the services may be non-deterministic)"
    body = [show_exchange(number, exchange, labels, exchange is last)
            for number, exchange in enumerate(exchanges, 1)]
    return "\n".join([head, "  " + note, *body])


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count N (seeds 1..N), or a comma-separated list of seeds
    and ranges (``7,11``, ``7,`` for one seed, ``100-119``, ``3,10-12``)."""
    text = text.strip()
    if "," not in text and "-" not in text:
        return list(range(1, int(text) + 1))
    seeds: list[int] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        low, _sep, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds
