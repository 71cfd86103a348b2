"""Differential spec: GET /resource_providers answered from the fast
engine's read model says exactly what the SQL listing says.

Hypothesis draws a forest of small trees built through the API (roots and
children, inventories with fractional ratios, reserved amounts, unit
limits and usage, traits, aggregates) and a set of listing queries mixing
every filter, known and unknown names, at several microversions. After
each write of a random sequence (new providers, inventory changes, claims,
traits, aggregates, renames, moves, deletions) every query gets the same
status and the same body, byte for byte, from an app listing from its read
model (``candidate_engine = fast``) and from one listing by SQL
(``reference``), both on the same database: same providers, same order,
same fields, same errors.
"""
from __future__ import annotations

import threading
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.api.app import create_app
from tests.support import Client, reset_database, test_conf

PROVIDERS = [str(uuid.UUID(int=0x1000 + number)) for number in range(8)]
UNKNOWN_PROVIDER = str(uuid.UUID(int=0x1FFF))
AGGREGATES = [str(uuid.UUID(int=0x2000 + number)) for number in range(3)]
TRAITS = ["CUSTOM_GOLD", "HW_CPU_X86_AVX", "STORAGE_DISK_SSD"]
CLASSES = ["VCPU", "DISK_GB", "CUSTOM_WIDGET"]
RATIOS = [1.0, 0.7, 1.5, 1.3333, 16.0]
VERSIONS = ["1.14", "1.18", "1.22", "1.32", "1.39"]


def clients(database) -> tuple[Client, Client]:
    def client(engine: str) -> Client:
        return Client(create_app(test_conf(stowage={"candidate_engine": engine}), database))

    return client("fast"), client("reference")


# --- writes -------------------------------------------------------------------------

provider_numbers = st.integers(0, len(PROVIDERS) - 1)
inventories = st.fixed_dictionaries({
    "total": st.integers(1, 12),
    "reserved": st.integers(0, 3),
    "min_unit": st.sampled_from([1, 1, 2]),
    "max_unit": st.sampled_from([4, 12]),
    "step_size": st.sampled_from([1, 1, 2, 3]),
    "allocation_ratio": st.sampled_from(RATIOS),
})
writes = st.one_of(
    st.tuples(st.just("create"), provider_numbers, st.one_of(st.none(), provider_numbers)),
    st.tuples(st.just("inventory"), provider_numbers,
              st.dictionaries(st.sampled_from(CLASSES), inventories, max_size=2)),
    st.tuples(st.just("claim"), provider_numbers, st.sampled_from(CLASSES), st.integers(1, 4)),
    st.tuples(st.just("traits"), provider_numbers, st.sets(st.sampled_from(TRAITS))),
    st.tuples(st.just("aggregates"), provider_numbers, st.sets(st.sampled_from(AGGREGATES))),
    st.tuples(st.just("rename"), provider_numbers, st.integers(0, 3)),
    st.tuples(st.just("move"), provider_numbers, st.one_of(st.none(), provider_numbers)),
    st.tuples(st.just("delete"), provider_numbers),
)


def apply(client: Client, write: tuple) -> None:
    """Make the write if it can be made; refusals (409s, 400s) are part of it."""
    kind, number, *rest = write
    uuid_ = PROVIDERS[number]
    path = f"/resource_providers/{uuid_}"
    shown = client.get(path)
    if kind == "create":
        parent = None if rest[0] is None else PROVIDERS[rest[0]]
        client.post("/resource_providers",
                    {"uuid": uuid_, "name": f"p{number}", "parent_provider_uuid": parent})
        return
    if shown.status != 200:
        return
    generation = shown.json()["generation"]
    if kind == "inventory":
        body = {name: {**inventory, "max_unit": max(inventory["max_unit"], inventory["min_unit"])}
                for name, inventory in rest[0].items()}
        client.put(f"{path}/inventories",
                   {"resource_provider_generation": generation, "inventories": body})
    elif kind == "claim":
        resource_class, amount = rest
        client.put(f"/allocations/{uuid.uuid4()}", {
            "allocations": {uuid_: {"resources": {resource_class: amount}}},
            "project_id": "p", "user_id": "u", "consumer_generation": None,
            "consumer_type": "INSTANCE",
        })
    elif kind == "traits":
        client.put(f"{path}/traits",
                   {"resource_provider_generation": generation, "traits": sorted(rest[0])})
    elif kind == "aggregates":
        client.put(f"{path}/aggregates",
                   {"resource_provider_generation": generation, "aggregates": sorted(rest[0])})
    elif kind == "rename":
        client.put(path, {"name": f"p{number}-{rest[0]}",
                          "parent_provider_uuid": shown.json()["parent_provider_uuid"]})
    elif kind == "move":
        parent = None if rest[0] is None else PROVIDERS[rest[0]]
        client.put(path, {"name": shown.json()["name"], "parent_provider_uuid": parent})
    else:
        for allocation in client.get(f"{path}/allocations").json()["allocations"]:
            client.delete(f"/allocations/{allocation}")
        client.delete(path)


# --- queries ------------------------------------------------------------------------

providers_named = st.sampled_from(PROVIDERS + [UNKNOWN_PROVIDER])
aggregate_sets = st.lists(st.sampled_from(AGGREGATES + [UNKNOWN_PROVIDER]), min_size=1, max_size=2)
member_of = st.one_of(
    aggregate_sets.map(lambda uuids: uuids[0]),
    aggregate_sets.map(lambda uuids: "in:" + ",".join(uuids)),
    aggregate_sets.map(lambda uuids: "!" + uuids[0]),
    aggregate_sets.map(lambda uuids: "!in:" + ",".join(uuids)),
)
trait_names = st.sampled_from(TRAITS + ["CUSTOM_NO_SUCH_TRAIT"])
required = st.one_of(
    st.lists(trait_names, min_size=1, max_size=2).map(",".join),
    trait_names.map(lambda name: "!" + name),
    st.lists(trait_names, min_size=1, max_size=2).map(lambda names: "in:" + ",".join(names)),
)
amounts = st.tuples(st.sampled_from(CLASSES + ["CUSTOM_NO_SUCH_CLASS"]), st.integers(1, 13))
resources = st.lists(amounts, min_size=1, max_size=2).map(
    lambda items: ",".join(f"{name}:{amount}" for name, amount in items)
)
parameters = st.lists(st.one_of(
    st.tuples(st.just("member_of"), member_of),
    st.tuples(st.just("required"), required),
    st.tuples(st.just("resources"), resources),
    st.tuples(st.just("in_tree"), providers_named),
    st.tuples(st.just("uuid"), providers_named),
    st.tuples(st.just("name"), st.sampled_from(["p0", "p1", "p2-1", "nobody"])),
), max_size=3)
queries = st.tuples(st.sampled_from(VERSIONS), parameters).map(
    lambda drawn: (drawn[0], "/resource_providers" + ("?" if drawn[1] else "")
                   + "&".join(f"{name}={value}" for name, value in drawn[1]))
)


def assert_same_answer(fast: Client, oracle: Client, version: str, path: str) -> None:
    fast.version = oracle.version = version
    ours, theirs = fast.get(path), oracle.get(path)
    assert ours.status == theirs.status, (version, path, ours.body, theirs.body)
    if ours.status != 200:
        # The bodies name each request's own id.
        assert ours.json()["errors"][0]["detail"] == theirs.json()["errors"][0]["detail"]
        return
    assert ours.body == theirs.body, (version, path)
    if ours.json()["resource_providers"] and version >= "1.15":
        assert ours.headers["last-modified"] == theirs.headers["last-modified"]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    forest=st.lists(st.tuples(st.just("create"), provider_numbers, st.one_of(st.none(), provider_numbers)),
                    min_size=1, max_size=8),
    program=st.lists(writes, min_size=1, max_size=10),
    asked=st.lists(queries, min_size=6, max_size=6),
)
def test_the_read_model_lists_what_sql_lists_after_every_write(database, forest, program, asked):
    reset_database(database)
    fast, oracle = clients(database)
    fast.version = "latest"
    for trait in TRAITS:
        fast.put(f"/traits/{trait}")
    fast.put("/resource_classes/CUSTOM_WIDGET")
    for write in forest:
        apply(fast, write)
    for write in program:
        fast.version = "latest"
        apply(fast, write)
        for version, path in asked:
            assert_same_answer(fast, oracle, version, path)


def test_listings_during_concurrent_tree_changes_are_never_errors(database):
    """Trees created and deleted by another client while one lists: every
    listing answers 200 with providers that each existed at some point."""
    fast, _oracle = clients(database)
    writer = Client(fast.app)
    fast.get("/resource_providers")  # the read model, built before the writes
    made: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        for number in range(40):
            root, child = str(uuid.uuid4()), str(uuid.uuid4())
            made.extend((root, child))
            writer.post("/resource_providers", {"uuid": root, "name": f"r{number}"})
            writer.post("/resource_providers",
                        {"uuid": child, "name": f"c{number}", "parent_provider_uuid": root})
            if number % 2:
                writer.delete(f"/resource_providers/{child}")
                writer.delete(f"/resource_providers/{root}")
        stop.set()

    thread = threading.Thread(target=write)
    thread.start()
    listings = 0
    while not stop.is_set() or listings < 5:
        tree = made[-1] if made else PROVIDERS[0]
        for path in ("/resource_providers", f"/resource_providers?in_tree={tree}"):
            answer = fast.get(path)
            listings += 1
            if answer.status != 200:
                failures.append(f"{path}: {answer.status} {answer.body!r}")
            elif not {p["uuid"] for p in answer.json()["resource_providers"]} <= set(made):
                failures.append(f"{path}: a provider never made")
    thread.join()
    assert not failures
    # Read your writes: the last state, as written.
    listed = {p["name"] for p in fast.get("/resource_providers").json()["resource_providers"]}
    assert listed == {f"{kind}{number}" for number in range(0, 40, 2) for kind in "rc"}
