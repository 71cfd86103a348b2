"""Load scenarios over HTTP, time candidate queries, run concurrent claims."""
from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.client import Client, Reply, RequestTimedOut
from bench.scenarios import CUSTOM_TRAITS, ProviderSpec, Query, depth_by_name

LOAD_CLIENTS = 4
CLAIM_CLIENTS = 8


class UnexpectedReply(Exception):
    def __init__(self, action: str, reply: Reply) -> None:
        super().__init__(f"{action}: HTTP {reply.status} {reply.body}")


def expect(reply: Reply, action: str, *statuses: int) -> Reply:
    if reply.status not in statuses:
        raise UnexpectedReply(action, reply)
    return reply


# --- loading ----------------------------------------------------------------

@dataclass(frozen=True)
class LoadResult:
    providers: int
    requests: int
    seconds: float


def create_provider(client: Client, provider: ProviderSpec) -> int:
    """POST the provider, then PUT its inventories, traits and aggregates; returns requests made."""
    body = {"uuid": provider.uuid, "name": provider.name}
    if provider.parent_uuid:
        body["parent_provider_uuid"] = provider.parent_uuid
    created = expect(client.post("/resource_providers", body), f"create {provider.name}", 200)
    generation = created.body["generation"]
    requests = 1
    base = f"/resource_providers/{provider.uuid}"
    updates = (
        ("inventories", {name: inventory.as_body()
                         for name, inventory in provider.inventories.items()}),
        ("traits", list(provider.traits)),
        ("aggregates", list(provider.aggregates)),
    )
    for resource, value in updates:
        if not value:
            continue
        reply = client.put(f"{base}/{resource}",
                           {"resource_provider_generation": generation, resource: value})
        generation = expect(reply, f"{resource} of {provider.name}", 200).body[
            "resource_provider_generation"]
        requests += 1
    return requests


def load(client: Client, providers: list[ProviderSpec]) -> LoadResult:
    """Create every provider with LOAD_CLIENTS concurrent clients, one tree level at a time."""
    started = time.perf_counter()
    for trait in CUSTOM_TRAITS:
        expect(client.put(f"/traits/{trait}", None), f"trait {trait}", 201, 204)
    requests = len(CUSTOM_TRAITS)
    depths = depth_by_name(providers)
    levels: dict[int, list[ProviderSpec]] = defaultdict(list)
    for provider in providers:
        levels[depths[provider.name]].append(provider)
    with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        for depth in sorted(levels):
            requests += sum(pool.map(lambda provider: create_provider(client, provider),
                                     levels[depth]))
    return LoadResult(len(providers), requests, time.perf_counter() - started)


# --- candidate queries ------------------------------------------------------

@dataclass
class Latency:
    """Timings of one query on one service; ``outcome`` is "ok", "timeout" or an error."""

    samples: list[float] = field(default_factory=list)
    candidates: int | None = None
    providers: int | None = None
    outcome: str = "ok"

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_query(
    clients: dict[str, Client],
    query: Query,
    repeat: int,
    seconds_per_query: float,
    on_timeout: Callable[[str], None],
) -> dict[str, Latency]:
    """``query`` on every service, interleaved: one untimed warm-up each,
    then rounds of one timed run per service, so that the machine's drift
    (other tenants, CPU frequency) weighs on every service alike and the
    ratios stay comparable.

    A service drops out at its first timeout (``on_timeout`` is called with
    its label, to restart it) or error. Rounds stop after ``repeat``, or
    once they took ``seconds_per_query`` per service and every remaining
    service has three timed runs.
    """
    latencies = {label: Latency() for label in clients}
    active = list(clients)

    def run(label: str, timed: bool) -> None:
        latency = latencies[label]
        try:
            reply = clients[label].get(query.path)
        except RequestTimedOut:
            latency.outcome = "timeout"
            active.remove(label)
            on_timeout(label)
            return
        if reply.status != 200:
            latency.outcome = f"HTTP {reply.status}"
            active.remove(label)
            return
        if timed:
            latency.samples.append(reply.seconds)
        else:
            body = reply.body
            # Candidates, or (for a provider listing) the providers listed.
            latency.candidates = len(body.get("allocation_requests", ()))
            latency.providers = len(body.get("provider_summaries", body.get("resource_providers", ())))

    for label in list(active):
        run(label, timed=False)
    started = time.monotonic()
    for round_ in range(repeat):
        for label in list(active):
            run(label, timed=True)
        if round_ >= 2 and time.monotonic() - started > seconds_per_query * len(clients):
            break
    return latencies


# --- claims -----------------------------------------------------------------

@dataclass
class ClaimResult:
    claims: int = 0
    conflicts: int = 0
    seconds: float = 0.0
    outcome: str = "ok"
    touched: set[str] = field(default_factory=set)
    consumers: list[str] = field(default_factory=list)
    over_capacity: list[str] = field(default_factory=list)
    # Seconds per PUT /allocations answered 204 or 409, and what each
    # acknowledged claim holds: {consumer: {provider: {class: amount}}}.
    put_seconds: list[float] = field(default_factory=list)
    held: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.claims / self.seconds if self.seconds else 0.0


def claim(client: Client | Sequence[Client], query: Query, target: int, seed: int = 0,
          claimers: int = CLAIM_CLIENTS) -> ClaimResult:
    """``claimers`` clients each: GET candidates, PUT one as a new consumer, retry on 409.

    Given several clients (one per service, e.g. per Galera node), claimer
    ``n`` talks to ``clients[n % len(clients)]`` for both its reads and its
    writes. Stops after ``target`` successful claims, when candidates run
    out, or at the first timeout or unexpected answer.
    """
    clients = [client] if isinstance(client, Client) else list(client)
    result = ClaimResult()
    lock = threading.Lock()
    stop = threading.Event()

    def claimer(number: int) -> None:
        chooser = random.Random(seed * 1000 + number)
        client = clients[number % len(clients)]
        while not stop.is_set():
            try:
                found = expect(client.get(query.path), "claim candidates", 200).body
                if not found["allocation_requests"]:
                    result.outcome = "candidates ran out"
                    stop.set()
                    return
                chosen = chooser.choice(found["allocation_requests"])
                body = {
                    "allocations": chosen["allocations"],
                    "project_id": str(uuid.UUID(int=number + 1)),
                    "user_id": str(uuid.UUID(int=number + 1)),
                    "consumer_generation": None,
                    "consumer_type": "INSTANCE",
                }
                consumer = str(uuid.uuid4())
                reply = client.put(f"/allocations/{consumer}", body)
            except (RequestTimedOut, UnexpectedReply) as error:
                result.outcome = f"{type(error).__name__}: {error}"[:200]
                stop.set()
                return
            with lock:
                if reply.status in (204, 409):
                    result.put_seconds.append(reply.seconds)
                if reply.status == 204:
                    # Claims already in flight may end a few above the target.
                    result.claims += 1
                    result.touched.update(chosen["allocations"])
                    result.consumers.append(consumer)
                    result.held[consumer] = {
                        provider: dict(held["resources"])
                        for provider, held in chosen["allocations"].items()
                    }
                    if result.claims >= target:
                        stop.set()
                elif reply.status == 409:
                    result.conflicts += 1
                else:
                    result.outcome = f"PUT /allocations: HTTP {reply.status} {reply.body}"[:200]
                    stop.set()

    started = time.perf_counter()
    threads = [threading.Thread(target=claimer, args=(number,)) for number in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def claims_not_read_back(client: Client, held: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """Consumers whose GET /allocations differs from what their acknowledged claim wrote."""
    differing = []
    for consumer, wanted in held.items():
        found = expect(client.get(f"/allocations/{consumer}"), "read a claim back", 200).body
        seen = {provider: dict(held["resources"])
                for provider, held in found["allocations"].items()}
        if seen != wanted:
            differing.append(consumer)
    return differing


def release(client: Client, consumers: list[str]) -> None:
    """Delete the claims' allocations, so the next run starts from the loaded state."""
    with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        for reply in pool.map(lambda consumer: client.delete(f"/allocations/{consumer}"),
                              consumers):
            expect(reply, "release a claim", 204)


def providers_over_capacity(client: Client, provider_uuids: set[str]) -> list[str]:
    """"uuid CLASS used>capacity" for each class whose usage exceeds (total - reserved) * ratio."""
    over = []
    for provider_uuid in sorted(provider_uuids):
        base = f"/resource_providers/{provider_uuid}"
        inventories = expect(client.get(f"{base}/inventories"), "inventories", 200).body
        usages = expect(client.get(f"{base}/usages"), "usages", 200).body["usages"]
        for resource_class, used in usages.items():
            inventory = inventories["inventories"].get(resource_class)
            if inventory is None:
                if used:
                    over.append(f"{provider_uuid} {resource_class} {used}>no inventory")
                continue
            capacity = (inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"]
            if used > capacity:
                over.append(f"{provider_uuid} {resource_class} {used}>{capacity:g}")
    return over
