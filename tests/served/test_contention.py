"""Contention spec: many clients racing for the last units of a few small
providers, through a served Stowage with several workers (SQLite: one
worker, several threads), never over-commit and never lose a write.

The providers, VCPU capacity ``int((total - reserved) * allocation_ratio)``::

    small-0  VCPU 4                          tree-0 ─── tree-0-child
    small-1  VCPU 5, reserved 1              tree-1 ─── tree-1-child
    small-2  VCPU 2, allocation_ratio 2.0      4 VCPU per tree, on the root at
    small-3  VCPU 8, reserved 2, ratio 0.5     first; reshapes move them
    (each also DISK_GB 100)                    between root and child

Each of ``CLIENTS`` threads runs ``OPERATIONS`` random steps on its own
consumers: claim a unit on one of the eight providers, move a held
consumer to another (POST /allocations with its consumer generation),
release one (DELETE /allocations/{consumer}). Meanwhile, until the
claimers are done:

- two threads change the small providers' DISK_GB inventories, which
  moves their generations under the claimers;
- one thread per tree reshapes it (POST /reshaper, as a service): one or
  two consumers of a side move to the other side with as much VCPU, or
  the whole class moves with every consumer on it;
- one decommissions a small provider: deletes the allocations of every
  consumer on it (racing their owners), then deletes the provider, or its
  VCPU inventory, and creates it again, while claims keep arriving;
- one samples usages between two reads of the same inventory generation.

Then:

- no 5xx, ever; every answer is one ``ANSWERS`` allows for its operation
  (refusals in Placement's format, with the codes upstream gives them);
- no sample ever saw a class used beyond its capacity;
- each consumer holds what its last acknowledged write left, one whose
  delete was acknowledged holds nothing, no two acknowledged writes left
  one consumer at the same generation, each provider's usage is the sum of
  the holdings and within its capacity, and each tree still has 4 VCPU.

The race found seven bugs, now fixed; the six that a lock of the test's
own can force are reproduced at the end of this module, each with its
interleaving (the seventh, MariaDB's deadlock on an AUTO-INC lock
reported as error 1467, is now retried: tests/storage/test_backends.py).

``STOWAGE_STRESS_OPERATIONS`` raises the steps per client for longer runs
(CI's budget: the default, 5 to 8 s of racing per backend). Whatever it is, the
race stops after ``TIME_LIMIT_SECONDS`` and no side thread takes more than
``SIDE_STEPS`` steps. With ``pytest -s`` each backend prints its tally of
answers by operation (the figures in docs/reliability.md).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import Executable, delete, insert, select, text

from stowage.api.app import create_app
from stowage.storage import schema
from stowage.storage.database import Database
from tests.conftest import _fresh_database
from tests.served.conftest import serve_on
from tests.support import Client, test_conf

CLIENTS = 32
OPERATIONS = int(os.environ.get("STOWAGE_STRESS_OPERATIONS", "30"))
# Bounds on the whole race, whatever OPERATIONS is; the default race stays
# far below both (5 to 10 s, and some 20 to 60 steps per side thread, on
# the 2-core development VM).
TIME_LIMIT_SECONDS = 30.0 + OPERATIONS
SIDE_STEPS = 20 * OPERATIONS
WORKERS = {"sqlite": 1, "postgresql": 3, "mysql": 3}
VERSION = "placement 1.39"

SMALL = [str(uuid.UUID(int=index + 1)) for index in range(4)]
SMALL_VCPU = [
    {"total": 4},
    {"total": 5, "reserved": 1},
    {"total": 2, "allocation_ratio": 2.0},
    {"total": 8, "reserved": 2, "allocation_ratio": 0.5},
]
DISK = {"DISK_GB": {"total": 100}}
# (root, child) of each tree; TREE_VCPU is split between them.
TREES = [(str(uuid.UUID(int=0x100 + index)), str(uuid.UUID(int=0x200 + index))) for index in range(2)]
TREE_VCPU = 4
PROVIDERS = SMALL + [provider for tree in TREES for provider in tree]


class Operation(StrEnum):
    CLAIM = "claim"  # PUT /allocations/{new consumer}
    MOVE = "move"  # POST /allocations, one consumer to another provider
    RELEASE = "release"  # DELETE /allocations/{own consumer}
    RESHAPE = "reshape"  # POST /reshaper
    INVENTORY_UPDATE = "inventory update"  # PUT .../inventories, DISK_GB changed
    EVICT = "evict"  # DELETE /allocations/{someone's consumer}
    PROVIDER_DELETE = "provider delete"
    PROVIDER_CREATE = "provider create"  # again, with its inventories
    INVENTORY_DELETE = "inventory delete"  # DELETE .../inventories/VCPU
    INVENTORY_RESTORE = "inventory restore"  # PUT .../inventories, with VCPU again
    READ = "read"
    SETUP = "setup"


CONCURRENT = "409 placement.concurrent_update"
# "Unable to allocate inventory: ...": over capacity, or no VCPU there (a
# tree side without it, an inventory deleted); upstream gives these no code.
DOES_NOT_FIT = "409 placement.undefined_code"
# "Allocation for resource provider ... that does not exist" (deleted):
# a 400, as upstream.
PROVIDER_GONE = "400 placement.undefined_code"
NOT_FOUND = "404 placement.undefined_code"
ANSWERS = {
    Operation.CLAIM: {"204", CONCURRENT, DOES_NOT_FIT, PROVIDER_GONE},
    Operation.MOVE: {"204", CONCURRENT, DOES_NOT_FIT, PROVIDER_GONE},
    # Its consumer evicted meanwhile.
    Operation.RELEASE: {"204", NOT_FOUND},
    # Upstream's three: a stale provider or consumer generation; inventory
    # to remove still in use; moved allocations that do not fit.
    Operation.RESHAPE: {"204", CONCURRENT, "409 placement.inventory.inuse", DOES_NOT_FIT},
    # The provider deleted since it was read.
    Operation.INVENTORY_UPDATE: {"200", CONCURRENT, NOT_FOUND},
    Operation.EVICT: {"204", NOT_FOUND},
    Operation.PROVIDER_DELETE: {"204", "409 placement.resource_provider.inuse"},
    Operation.PROVIDER_CREATE: {"200"},
    # In use: upstream answers this one with concurrent_update, not inventory.inuse.
    Operation.INVENTORY_DELETE: {"204", CONCURRENT},
    Operation.INVENTORY_RESTORE: {"200", CONCURRENT},
    Operation.READ: {"200", NOT_FOUND},
    Operation.SETUP: {"200"},
}

# Bugs the race found (PostgreSQL and MariaDB; SQLite runs one writer at a
# time), fixed; each is reproduced below, with its interleaving.
STALE_RESHAPE = (
    "a reshape carrying a provider generation that a claim moved after the reshape checked it "
    "is applied (it reads the generation again before writing), so inventory it shrinks is over-committed"
)
MOVE_OF_DELETED_CONSUMER = (
    "a move or reshape of a consumer deleted after the write read it is a 500 (a foreign key "
    "violation on allocations.consumer_id), not a 409 placement.concurrent_update"
)
DELETE_DURING_MOVE = (
    "DELETE /allocations/{consumer} waiting on a move of that consumer deletes nothing and answers "
    "404 (PostgreSQL: the rows it saw are gone, the moved ones it never saw), and the consumer keeps them"
)
PROVIDER_DELETE_RACE_CODE = (
    "DELETE /resource_providers/{uuid} refused because a claim landed while it ran answers "
    "placement.undefined_code, not placement.resource_provider.inuse"
)
WRITE_ONTO_DELETED_PROVIDER = (
    "a claim or move onto a provider deleted after the write read it is a 500 (a foreign key violation "
    "on allocations.resource_provider_id), not the 400 of a provider that does not exist"
)
# A log line that starts a record: the service's, or gunicorn's.
LOG_LINE = re.compile(r"\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def capacity(inventory: dict) -> int:
    return int((inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"])


def over_capacity(inventories: dict, usages: dict) -> dict[str, tuple[int, int]]:
    """{class: (used, capacity)} for each class used beyond its capacity (0 without inventory)."""
    over = {}
    for resource_class, used in usages.items():
        limit = capacity(inventories[resource_class]) if resource_class in inventories else 0
        if used > limit:
            over[resource_class] = (used, limit)
    return over


class Http:
    """Requests to one served Stowage, each on a connection of its own (a
    kept-alive one the server may close between requests would leave a
    write's fate unknown), with every answer counted by operation and
    outcome: the status, and the error code of a refusal."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.outcomes: Counter[tuple[Operation, str]] = Counter()
        # Refusals with their details (uuids elided), and 5xx with their request ids.
        self.refusals: Counter[tuple[Operation, str, str]] = Counter()
        self.server_errors: list[tuple[Operation, str]] = []

    def call(
        self, operation: Operation, method: str, path: str, body: Any = None, roles: str | None = None
    ) -> tuple[int, Any]:
        headers = {"x-auth-token": "admin", "openstack-api-version": VERSION}
        if roles is not None:
            headers["x-roles"] = roles
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["content-type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:  # not Placement's format: the outcome says so
            data = None
        outcome = str(response.status)
        with self.lock:
            if response.status >= 400:
                error = data["errors"][0] if data else {"code": "(not JSON)", "detail": raw[:200]}
                outcome += f" {error['code']}"
                self.refusals[(operation, outcome, UUID.sub("…", str(error["detail"])))] += 1
            if response.status >= 500:
                self.server_errors.append((operation, response.getheader("openstack-request-id", "")))
            self.outcomes[(operation, outcome)] += 1
        return response.status, data

    def unexpected(self) -> dict[tuple[Operation, str], str]:
        """Answers other than 5xx that ``ANSWERS`` does not allow, with a detail of each."""
        found = {}
        for operation, outcome in self.outcomes:
            if outcome.startswith("5") or outcome in ANSWERS[operation]:
                continue
            details = [detail for op, out, detail in self.refusals if (op, out) == (operation, outcome)]
            found[(operation, outcome)] = details[0] if details else ""
        return found

    def tally(self) -> str:
        """Per operation: sent, acknowledged (2xx), refused with 409, other; then each refusal's count."""
        lines = [f"{'operation':18} {'sent':>6} {'2xx':>6} {'409':>6} {'other':>6}  refusals"]
        for operation in Operation:
            counts = {outcome: n for (op, outcome), n in sorted(self.outcomes.items()) if op == operation}
            sent = sum(counts.values())
            acknowledged = sum(n for outcome, n in counts.items() if outcome.startswith("2"))
            refused = sum(n for outcome, n in counts.items() if outcome.startswith("409"))
            refusals = ", ".join(f"{outcome.replace('placement.', '')} {n}" for outcome, n in counts.items()
                                 if not outcome.startswith("2"))
            lines.append(f"{operation:18} {sent:6} {acknowledged:6} {refused:6} {sent - acknowledged - refused:6}"
                         f"  {refusals}")
        return "\n".join(lines)


def error_record(log: str, request_id: str) -> str:
    """The service's log record of the unexpected error in ``request_id``:
    its first line and the lines after it that start no other record."""
    start = log.find(f"Unexpected error in request {request_id}")
    if not request_id or start < 0:
        return ""
    first, *following = log[start:].splitlines()
    record = [first]
    for line in following:
        if LOG_LINE.match(line) and request_id not in line:
            break
        record.append(line)
    return "\n".join(record)


@dataclass(frozen=True)
class Holding:
    """One VCPU on ``provider``, as an acknowledged write left the consumer at ``generation``."""

    provider: str
    generation: int


@dataclass
class Ledger:
    """What every consumer holds, as the acknowledged writes left it.

    Answers may be recorded out of order (the decommissioner reads the
    consumers to evict from the service, so it may delete one whose claim
    is not recorded yet): the holding with the newest consumer generation
    wins, and a delete is final (consumers are never reused; a write
    acknowledged after it must have been serialised before it). Two
    acknowledged writes leaving one consumer at the same generation would
    be a lost update.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    holdings: dict[str, Holding] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    acknowledged: set[tuple[str, int]] = field(default_factory=set)
    lost_updates: list[str] = field(default_factory=list)

    def record(self, consumer: str, holding: Holding) -> None:
        with self.lock:
            if (consumer, holding.generation) in self.acknowledged:
                self.lost_updates.append(f"{consumer} acknowledged twice at generation {holding.generation}")
            self.acknowledged.add((consumer, holding.generation))
            current = self.holdings.get(consumer)
            if consumer not in self.deleted and (current is None or current.generation < holding.generation):
                self.holdings[consumer] = holding

    def record_deleted(self, consumer: str) -> None:
        with self.lock:
            self.deleted.add(consumer)
            self.holdings.pop(consumer, None)

    def holding(self, consumer: str) -> Holding | None:
        with self.lock:
            return self.holdings.get(consumer)


def resources_of(allocations: dict) -> dict:
    """{provider: {class: amount}} of a GET /allocations/{consumer} answer's ``allocations``."""
    return {provider: entry["resources"] for provider, entry in allocations.items()}


def claim_body(provider: str, generation: int | None, project: str = "p") -> dict:
    return {"allocations": {provider: {"resources": {"VCPU": 1}}}, "project_id": project,
            "user_id": "u", "consumer_generation": generation, "consumer_type": "INSTANCE"}


def small_inventories(index: int) -> dict:
    return {"VCPU": SMALL_VCPU[index], **DISK}


def create_provider(client: Http, operation: Operation, provider: str, name: str,
                    inventories: dict, parent: str | None = None) -> None:
    body = {"uuid": provider, "name": name}
    if parent is not None:
        body["parent_provider_uuid"] = parent
    assert client.call(operation, "POST", "/resource_providers", body)[0] == 200
    if inventories:
        assert client.call(operation, "PUT", f"/resource_providers/{provider}/inventories",
                           {"resource_provider_generation": 0, "inventories": inventories})[0] == 200


@pytest.fixture(params=list(WORKERS))
def served(request):
    with serve_on(request.param, request, workers=WORKERS[request.param]) as service:
        yield service


def test_racing_claims_moves_reshapes_and_deletes_never_over_commit_or_lose_a_write(served):
    client = Http(served.port)
    for index, provider in enumerate(SMALL):
        create_provider(client, Operation.SETUP, provider, f"small-{index}", small_inventories(index))
    for index, (root, child) in enumerate(TREES):
        create_provider(client, Operation.SETUP, root, f"tree-{index}", {"VCPU": {"total": TREE_VCPU}, **DISK})
        create_provider(client, Operation.SETUP, child, f"tree-{index}-child", {}, parent=root)
    ledger = Ledger()
    # Consumers a delete found gone: someone's delete of them must be acknowledged.
    found_gone: list[str] = []
    over_seen: list[str] = []
    samples: Counter[str] = Counter()
    claimers_done = threading.Event()
    deadline = time.monotonic() + TIME_LIMIT_SECONDS

    def side_steps() -> Iterator[None]:
        """A side thread's steps: while the claimers are busy, within the caps."""
        for _ in range(SIDE_STEPS):
            if claimers_done.is_set() or time.monotonic() > deadline:
                return
            yield

    def delete_allocations(operation: Operation, consumer: str) -> None:
        status, _ = client.call(operation, "DELETE", f"/allocations/{consumer}")
        if status == 204:
            ledger.record_deleted(consumer)
        elif status == 404:
            data = client.call(Operation.READ, "GET", f"/allocations/{consumer}")[1]
            if data["allocations"]:
                pytest.fail(f"DELETE /allocations/{consumer} answered 404, yet it holds {data['allocations']}")
            else:
                found_gone.append(consumer)

    def claimer(seed: int) -> None:
        chooser = random.Random(seed)
        mine: list[str] = []
        for _ in range(OPERATIONS):
            if time.monotonic() > deadline:
                return
            alive = [consumer for consumer in mine if ledger.holding(consumer) is not None]
            step = chooser.random()
            if step < 0.5 or not alive:
                consumer, provider = str(uuid.uuid4()), chooser.choice(PROVIDERS)
                status, _ = client.call(Operation.CLAIM, "PUT", f"/allocations/{consumer}",
                                        claim_body(provider, None))
                if status == 204:
                    mine.append(consumer)
                    ledger.record(consumer, Holding(provider, 1))
            elif step < 0.8:
                consumer = chooser.choice(alive)
                holding = ledger.holding(consumer)
                if holding is None:  # evicted a moment ago
                    continue
                target = chooser.choice([p for p in PROVIDERS if p != holding.provider])
                status, _ = client.call(Operation.MOVE, "POST", "/allocations",
                                        {consumer: claim_body(target, holding.generation)})
                if status == 204:
                    ledger.record(consumer, Holding(target, holding.generation + 1))
            else:
                delete_allocations(Operation.RELEASE, chooser.choice(alive))

    def inventory_changer(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in side_steps():
            provider = chooser.choice(SMALL)
            status, data = client.call(Operation.READ, "GET", f"/resource_providers/{provider}/inventories")
            if status != 200 or "DISK_GB" not in data["inventories"]:
                continue  # decommissioned just now
            inventories = data["inventories"]
            inventories["DISK_GB"]["total"] = chooser.randint(100, 200)
            client.call(Operation.INVENTORY_UPDATE, "PUT", f"/resource_providers/{provider}/inventories", {
                "resource_provider_generation": data["resource_provider_generation"],
                "inventories": inventories})

    def reshape_once(chooser: random.Random, tree: tuple[str, str], vcpu: dict[str, int]) -> dict[str, int]:
        """Move one or two consumers of a side of ``tree`` to the other side
        with a VCPU each, or the whole class with every consumer on it;
        returns the VCPU of each side after.

        Only this thread changes the tree's inventories, so it knows them
        (``vcpu``; the root also has DISK_GB). A claim or move on either
        side after the allocations were read makes the reshape 409.
        """
        generations, consumers = {}, {}
        for provider in tree:
            held = client.call(Operation.READ, "GET", f"/resource_providers/{provider}/allocations")[1]
            generations[provider], consumers[provider] = held["resource_provider_generation"], held["allocations"]
        sources = [provider for provider in tree if consumers[provider]]
        if not sources:
            return vcpu
        source = chooser.choice(sources)
        (target,) = (provider for provider in tree if provider != source)
        whole_class = chooser.random() < 0.3
        on_source = sorted(consumers[source])
        moving = on_source if whole_class else chooser.sample(on_source, min(len(on_source), chooser.randint(1, 2)))
        allocations = {}
        for consumer in moving:
            # Its generation as the ledger has it: stale, the reshape is a 409.
            holding = ledger.holding(consumer)
            if holding is None or holding.provider != source:
                return vcpu  # moved, released, or its claim not recorded yet
            allocations[consumer] = claim_body(target, holding.generation)
        moved = vcpu[source] if whole_class else len(moving)
        after = {source: vcpu[source] - moved, target: vcpu[target] + moved}
        inventories = {
            provider: {"resource_provider_generation": generations[provider],
                       "inventories": (DISK if provider == tree[0] else {})
                       | ({"VCPU": {"total": after[provider]}} if after[provider] else {})}
            for provider in tree
        }
        status, _ = client.call(Operation.RESHAPE, "POST", "/reshaper",
                                {"inventories": inventories, "allocations": allocations}, roles="service")
        if status != 204:
            return vcpu
        for consumer, body in allocations.items():
            ledger.record(consumer, Holding(target, body["consumer_generation"] + 1))
        return after

    def reshaper(seed: int, tree: tuple[str, str]) -> None:
        chooser = random.Random(seed)
        vcpu = {tree[0]: TREE_VCPU, tree[1]: 0}
        for _ in side_steps():
            vcpu = reshape_once(chooser, tree, vcpu)

    def decommission(index: int, whole_provider: bool) -> None:
        """Evict every consumer of a small provider, delete it (or its VCPU
        inventory) and create it again; claims keep arriving, so evict and
        delete up to three times."""
        provider = SMALL[index]
        path = f"/resource_providers/{provider}"
        for _attempt in range(3):
            for consumer in client.call(Operation.READ, "GET", f"{path}/allocations")[1]["allocations"]:
                delete_allocations(Operation.EVICT, consumer)
            if whole_provider:
                status, _ = client.call(Operation.PROVIDER_DELETE, "DELETE", path)
            else:
                status, _ = client.call(Operation.INVENTORY_DELETE, "DELETE", f"{path}/inventories/VCPU")
            if status == 204:
                break
        if status != 204:
            return
        if whole_provider:
            create_provider(client, Operation.PROVIDER_CREATE, provider, f"small-{index}", small_inventories(index))
            return
        # The inventory changers may move the generation: read it again until it takes.
        for _attempt in range(100):
            data = client.call(Operation.READ, "GET", f"{path}/inventories")[1]
            status, _ = client.call(Operation.INVENTORY_RESTORE, "PUT", f"{path}/inventories", {
                "resource_provider_generation": data["resource_provider_generation"],
                "inventories": {**data["inventories"], "VCPU": SMALL_VCPU[index]}})
            if status == 200:
                return
        pytest.fail(f"could not restore the VCPU inventory of {provider}")

    def decommissioner(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in side_steps():
            decommission(chooser.randrange(len(SMALL)), whole_provider=chooser.random() < 0.5)

    def sampler() -> None:
        for _ in side_steps():
            for provider in PROVIDERS:
                path = f"/resource_providers/{provider}"
                before = client.call(Operation.READ, "GET", f"{path}/inventories")
                usages = client.call(Operation.READ, "GET", f"{path}/usages")
                after = client.call(Operation.READ, "GET", f"{path}/inventories")
                answers = (before, usages, after)
                generations = {data["resource_provider_generation"] for status, data in answers if status == 200}
                if any(status != 200 for status, _ in answers) or len(generations) != 1:
                    samples["moving"] += 1
                    continue
                samples["consistent"] += 1
                over = over_capacity(before[1]["inventories"], usages[1]["usages"])
                if over:
                    over_seen.append(f"{provider}: {over}")

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS + 6) as pool:
        side = [pool.submit(inventory_changer, 1000 + n) for n in range(2)]
        side += [pool.submit(reshaper, 2000 + n, tree) for n, tree in enumerate(TREES)]
        side += [pool.submit(decommissioner, 3000), pool.submit(sampler)]
        claims = [pool.submit(claimer, seed) for seed in range(CLIENTS)]
        try:
            for future in claims:
                future.result()
        finally:
            claimers_done.set()
        for future in side:
            future.result()
    raced = time.monotonic() - started

    deleted_yet_holding = []
    for consumer in sorted(ledger.deleted):
        data = client.call(Operation.READ, "GET", f"/allocations/{consumer}")[1]
        if data["allocations"]:
            deleted_yet_holding.append(consumer)
    not_as_acknowledged = {}
    for consumer, holding in ledger.holdings.items():
        data = client.call(Operation.READ, "GET", f"/allocations/{consumer}")[1]
        found = (resources_of(data["allocations"]), data.get("consumer_generation"))
        if found != ({holding.provider: {"VCPU": 1}}, holding.generation):
            not_as_acknowledged[consumer] = (holding, found)
    expected = Counter(holding.provider for holding in ledger.holdings.values())
    usage_not_the_sum, over_at_the_end, vcpu = {}, {}, {}
    for provider in PROVIDERS:
        inventories = client.call(Operation.READ, "GET", f"/resource_providers/{provider}/inventories")[1]
        usages = client.call(Operation.READ, "GET", f"/resource_providers/{provider}/usages")[1]["usages"]
        if usages.get("VCPU", 0) != expected[provider]:
            usage_not_the_sum[provider] = (usages, expected[provider])
        if over_capacity(inventories["inventories"], usages):
            over_at_the_end[provider] = over_capacity(inventories["inventories"], usages)
        vcpu[provider] = capacity(inventories["inventories"]["VCPU"]) if "VCPU" in inventories["inventories"] else 0
    log = served.log()
    server_errors = [(operation, error_record(log, request_id) or request_id)
                     for operation, request_id in client.server_errors]
    print(f"\n{served.backend}: raced {raced:.1f} s; {samples['consistent']} consistent usage samples, "
          f"{samples['moving']} skipped (generation moved); {len(ledger.holdings)} consumers held, "
          f"{len(ledger.deleted)} deleted\n{client.tally()}\n")

    # Each guarantee is checked, so that a failure shows all that broke.
    broken = {
        "usage beyond capacity, sampled": over_seen,
        "5xx": server_errors,
        "answers not allowed": client.unexpected(),
        "acknowledged twice": ledger.lost_updates,
        "found gone, no delete acknowledged": sorted(set(found_gone) - ledger.deleted),
        "deleted, yet holding": deleted_yet_holding,
        "not as last acknowledged": not_as_acknowledged,
        "usage not the sum of holdings": usage_not_the_sum,
        "over capacity at the end": over_at_the_end,
        # Reshapes move VCPU within a tree, never add or lose any.
        "tree VCPU not conserved": [(root, vcpu[root], vcpu[child]) for root, child in TREES
                                    if vcpu[root] + vcpu[child] != TREE_VCPU],
        "never acknowledged": [operation for operation in (Operation.CLAIM, Operation.MOVE, Operation.RESHAPE)
                               if not client.outcomes[(operation, "204")]],
    }
    broken = {guarantee: found for guarantee, found in broken.items() if found}
    assert broken == {}, "\n".join([client.tally(), *(record for _operation, record in server_errors)])


# Reproductions of the bugs the race found, each one interleaving forced: a transaction
# of the test's own holds a lock that stops a request at a known statement,
# while another request commits. In process, on the database servers
# (SQLite runs one writer at a time).
#
#     ROOT (VCPU 4) ─── CHILD        OTHER (VCPU 4)
#     FIRST and SECOND hold a VCPU each on ROOT.

ROOT, CHILD, OTHER = (str(uuid.UUID(int=0x300 + index)) for index in range(3))
FIRST, SECOND, THIRD = (str(uuid.UUID(int=0x400 + index)) for index in range(3))
AS_SERVICE = {"x-roles": "service"}
# A project no one has yet: a write naming it stops where it creates it,
# while the blocker holds the same row uncommitted.
BLOCKED_PROJECT = "project-being-created"
# One session's id; a session waiting on a lock the blocker's session
# holds (WAITING[..][0]), or on a session that does (WAITING[..][1]).
SESSION_ID = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
WAITING = {
    "postgresql": (
        "SELECT count(*) FROM pg_stat_activity WHERE :blocker = ANY(pg_blocking_pids(pid))",
        "SELECT count(*) FROM pg_stat_activity waiter JOIN pg_stat_activity holder"
        " ON holder.pid = ANY(pg_blocking_pids(waiter.pid)) WHERE :blocker = ANY(pg_blocking_pids(holder.pid))",
    ),
    "mysql": (
        "SELECT count(*) FROM information_schema.innodb_lock_waits w JOIN information_schema.innodb_trx t"
        " ON t.trx_id = w.blocking_trx_id WHERE t.trx_mysql_thread_id = :blocker",
        "SELECT count(*) FROM information_schema.innodb_lock_waits w JOIN information_schema.innodb_lock_waits v"
        " ON v.requesting_trx_id = w.blocking_trx_id JOIN information_schema.innodb_trx t"
        " ON t.trx_id = v.blocking_trx_id WHERE t.trx_mysql_thread_id = :blocker",
    ),
}
# InnoDB refreshes its lock tables only if nobody read them in the last
# 100 ms: a blocker looking more often would never see a new wait.
POLL_SECONDS = 0.15


class Blocker:
    """A transaction holding the locks ``statement`` takes until ``release``
    (or the end of its ``with`` block: a failing test frees its requests)."""

    def __init__(self, database: Database, statement: Executable) -> None:
        self.database = database
        self.connection = database.engine.connect()
        self.session = self.connection.execute(text(SESSION_ID[database.engine.dialect.name])).scalar()
        self.connection.execute(statement)

    def __enter__(self) -> Blocker:
        return self

    def __exit__(self, *_exception: object) -> None:
        self.release()

    def wait_until_blocking(self, hops: int = 1) -> None:
        """Until a session waits on this one (``hops`` 2: on a session that does)."""
        query = text(WAITING[self.database.engine.dialect.name][hops - 1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.database.engine.connect() as probe:
                if probe.execute(query, {"blocker": self.session}).scalar():
                    return
            time.sleep(POLL_SECONDS)
        raise AssertionError("the request never waited on the blocker")

    def release(self, commit: bool = False) -> None:
        if self.connection.closed:
            return
        if commit:
            self.connection.commit()
        else:
            self.connection.rollback()
        self.connection.close()


def on_server(bug: str, *backends: str) -> pytest.MarkDecorator:
    """Run on PostgreSQL and MariaDB; on ``backends``, a strict xfail for ``bug``."""
    return pytest.mark.parametrize("backend", [
        pytest.param(backend, marks=pytest.mark.xfail(strict=True, reason=bug)) if backend in backends else backend
        for backend in ("postgresql", "mysql")])


@pytest.fixture
def in_process(backend, request) -> tuple[Client, Database]:
    database = _fresh_database(backend, request.config)
    client = Client(create_app(test_conf(), database))
    for provider, name, parent in ((ROOT, "root", None), (CHILD, "child", ROOT), (OTHER, "other", None)):
        body = {"uuid": provider, "name": name} | ({"parent_provider_uuid": parent} if parent else {})
        assert client.post("/resource_providers", body).status == 200
    for provider in (ROOT, OTHER):
        assert client.put(f"/resource_providers/{provider}/inventories", {
            "resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}).status == 200
    for consumer in (FIRST, SECOND):
        assert client.put(f"/allocations/{consumer}", claim_body(ROOT, None)).status == 204
    return client, database


def generation(client: Client, provider: str) -> int:
    return client.get(f"/resource_providers/{provider}").json()["generation"]


def project_being_created() -> Executable:
    return insert(schema.projects).values(external_id=BLOCKED_PROJECT)


def id_of(table, uuid_: str) -> Any:
    """``(SELECT id FROM table WHERE uuid = :uuid)``"""
    return select(table.c.id).where(table.c.uuid == uuid_).scalar_subquery()


@on_server(STALE_RESHAPE)
def test_a_reshape_is_refused_if_a_claim_moved_a_generation_it_carries(in_process):
    client, database = in_process
    # ROOT keeps 1 VCPU for SECOND, CHILD gets 3 and FIRST: right only if
    # nothing else lands on ROOT before the reshape is applied.
    reshape = {
        "inventories": {
            ROOT: {"resource_provider_generation": generation(client, ROOT), "inventories": {"VCPU": {"total": 1}}},
            CHILD: {"resource_provider_generation": generation(client, CHILD), "inventories": {"VCPU": {"total": 3}}},
        },
        "allocations": {FIRST: claim_body(CHILD, 1, project=BLOCKED_PROJECT)},
    }
    with ThreadPoolExecutor(1) as pool, Blocker(database, project_being_created()) as blocker:
        # Past its generation checks, the reshape waits for the project.
        reshaped: Future = pool.submit(client.post, "/reshaper", reshape, headers=AS_SERVICE)
        blocker.wait_until_blocking()
        assert client.put(f"/allocations/{THIRD}", claim_body(ROOT, None)).status == 204
        blocker.release()
        answer = reshaped.result()
    usages = client.get(f"/resource_providers/{ROOT}/usages").json()["usages"]
    inventories = client.get(f"/resource_providers/{ROOT}/inventories").json()["inventories"]
    assert (answer.status, over_capacity(inventories, usages)) == (409, {})
    assert answer.json()["errors"][0]["code"] == "placement.concurrent_update"


@on_server(MOVE_OF_DELETED_CONSUMER)
def test_a_move_of_a_consumer_deleted_meanwhile_is_a_409(in_process):
    client, database = in_process
    with ThreadPoolExecutor(1) as pool, Blocker(database, project_being_created()) as blocker:
        # Past its consumer generation check, the move waits for the project.
        moving = {FIRST: claim_body(OTHER, 1, project=BLOCKED_PROJECT)}
        moved: Future = pool.submit(client.post, "/allocations", moving)
        blocker.wait_until_blocking()
        assert client.delete(f"/allocations/{FIRST}").status == 204
        blocker.release()
        answer = moved.result()
    assert answer.status == 409
    assert answer.json()["errors"][0]["code"] == "placement.concurrent_update"
    assert client.get(f"/allocations/{FIRST}").json()["allocations"] == {}


@on_server(WRITE_ONTO_DELETED_PROVIDER)
def test_a_move_onto_a_provider_deleted_meanwhile_is_refused(in_process):
    client, database = in_process
    allocations, consumers = schema.allocations, schema.consumers
    # Having read OTHER and its inventory, the move waits to delete FIRST's allocations.
    first_allocations = select(allocations.c.id).where(allocations.c.consumer_id == id_of(consumers, FIRST))
    with ThreadPoolExecutor(1) as pool, Blocker(database, first_allocations.with_for_update()) as blocker:
        moved: Future = pool.submit(client.post, "/allocations", {FIRST: claim_body(OTHER, 1)})
        blocker.wait_until_blocking()
        assert client.delete(f"/resource_providers/{OTHER}").status == 204
        blocker.release()
        answer = moved.result()
    assert answer.status in (400, 409)
    assert resources_of(client.get(f"/allocations/{FIRST}").json()["allocations"]) == {ROOT: {"VCPU": 1}}


@on_server(DELETE_DURING_MOVE)
def test_a_delete_waiting_on_a_move_of_its_consumer_deletes_what_the_move_left(in_process):
    client, database = in_process
    # The move waits to write OTHER's generation (MariaDB: to insert the
    # allocation, which reads OTHER's row), having deleted FIRST's
    # allocations; the delete waits on those rows.
    providers = schema.resource_providers
    other = select(providers.c.id).where(providers.c.uuid == OTHER)
    with ThreadPoolExecutor(2) as pool, Blocker(database, other.with_for_update()) as blocker:
        moved: Future = pool.submit(client.post, "/allocations", {FIRST: claim_body(OTHER, 1)})
        blocker.wait_until_blocking()
        deleted: Future = pool.submit(client.delete, f"/allocations/{FIRST}")
        blocker.wait_until_blocking(hops=2)
        blocker.release()
        assert moved.result().status == 204
        answer = deleted.result()
    assert (answer.status, client.get(f"/allocations/{FIRST}").json()["allocations"]) == (204, {})


@on_server(PROVIDER_DELETE_RACE_CODE)
def test_a_provider_delete_losing_to_a_claim_says_the_provider_is_in_use(in_process):
    client, database = in_process
    inventories, providers = schema.inventories, schema.resource_providers
    # Having found no allocations, the delete waits to delete OTHER's inventory.
    other_inventory = select(inventories.c.id).where(inventories.c.resource_provider_id == id_of(providers, OTHER))
    with ThreadPoolExecutor(1) as pool, Blocker(database, other_inventory.with_for_update()) as blocker:
        deleted: Future = pool.submit(client.delete, f"/resource_providers/{OTHER}")
        blocker.wait_until_blocking()
        assert client.put(f"/allocations/{THIRD}", claim_body(OTHER, None)).status == 204
        blocker.release()
        answer = deleted.result()
    assert answer.status == 409
    assert answer.json()["errors"][0]["code"] == "placement.resource_provider.inuse"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_consumer_read_during_its_delete_shows_its_generation_or_nothing(in_process):
    client, database = in_process
    consumers, allocations = schema.consumers, schema.allocations
    # The read's second statement (the consumer, with its user) waits for
    # the users table; its first (the allocations) does not. PostgreSQL
    # only: MariaDB's lock that stops plain reads (LOCK TABLES ... WRITE)
    # keeps its session off the tables the delete below writes.
    users_locked = text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    with ThreadPoolExecutor(1) as pool, Blocker(database, users_locked) as blocker:
        read: Future = pool.submit(client.get, f"/allocations/{FIRST}")
        blocker.wait_until_blocking()
        # What DELETE /allocations/{FIRST} does, committed with the blocker.
        blocker.connection.execute(delete(allocations).where(allocations.c.consumer_id == id_of(consumers, FIRST)))
        blocker.connection.execute(delete(consumers).where(consumers.c.uuid == FIRST))
        blocker.release(commit=True)
        answer = read.result().json()
    assert answer == {"allocations": {}} or answer.get("consumer_generation") == 1
