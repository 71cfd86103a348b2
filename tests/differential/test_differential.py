"""Stowage answers every request of a seeded random sequence as upstream 16.0.0 does.

Each test runs one seed on one backend: ``--steps`` requests (default 500)
sent to Stowage in-process and to upstream Placement in a subprocess, both
from empty databases. A difference fails the test unless the "Differential
allow-list" of docs/conformance.md explains it; the failure lists each class
of difference once, shrunk to a short reproduction when time allows.
"""
from __future__ import annotations

import time

import pytest

from tests.differential.allowlist import allow_list, allowance_for
from tests.differential.compare import normalise
from tests.differential.generator import Generator
from tests.differential.runner import Session, run_seed, show_finding, shrink
from tests.differential.services import StowageService, UpstreamService
from tests.differential.steps import Binding
from tests.differential.wire import WireRequest
from tests.support import BACKENDS

# Shrinking replays from fresh services many times; bounded so that a
# failing run still ends within a minute or so per test.
SHRINK_SECONDS_PER_TEST = 30.0
SHRINK_SECONDS_PER_FINDING = 10.0


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_stowage_answers_every_request_as_upstream_does(database, upstream, seed, steps):
    backend = database.backend.name
    session = Session(upstream, StowageService(database))
    rows = allow_list()
    run = run_seed(session, backend, seed, steps,
                   explained=lambda exchange: allowance_for(exchange, rows) is not None)
    if not run.findings:
        return
    deadline = time.monotonic() + SHRINK_SECONDS_PER_TEST
    for finding in run.findings:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        shrink(session, run, finding, min(left, SHRINK_SECONDS_PER_FINDING))
    summary = (f"{len(run.findings)} class(es) of difference between upstream 16.0.0 and "
               f"Stowage on {backend}, seed {seed}, {steps} steps ({run.allowed} allowed by "
               f"docs/conformance.md). Replay: pytest tests/differential --seeds {seed}, "
               f"--steps {steps} -k {backend}")
    report = [summary, ""]
    report += [show_finding(finding, session.labels) + "\n" for finding in run.findings]
    pytest.fail("\n".join(report), pytrace=False)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_seed_replays_exactly(database, upstream):
    """The same seed makes the same requests and gets the same answers twice."""
    session = Session(upstream, StowageService(database))
    first, second = (run_seed(session, "sqlite", 5, 80) for _ in range(2))
    assert [step.target() for step in first.steps] == [step.target() for step in second.steps]
    assert [step.body for step in first.steps] == [step.body for step in second.steps]
    assert [normalise(exchange.answers[0], {}) for exchange in first.exchanges] == [
        normalise(exchange.answers[0], {}) for exchange in second.exchanges]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_reset_upstream_is_a_fresh_start(database, upstream: UpstreamService):
    """After a reset upstream answers listings exactly as when it first started."""
    binding = Binding(upstream)
    binding.reset()
    listings = ["/resource_classes", "/traits", "/resource_providers",
                "/usages?project_id=p", "/allocation_candidates?resources=VCPU:1"]
    headers = (("x-auth-token", "admin"), ("openstack-api-version", "placement latest"),
               ("accept", "application/json"))

    def snapshot() -> list[object]:
        return [normalise(upstream.send(WireRequest("GET", path, headers)), {}).body
                for path in listings]

    fresh = snapshot()
    generator = Generator(11)
    for _ in range(60):
        step, on_answer = generator.next()
        _request, answer = binding.send(step)
        if on_answer is not None:
            on_answer(answer)
    assert snapshot() != fresh
    binding.reset()
    assert snapshot() == fresh
