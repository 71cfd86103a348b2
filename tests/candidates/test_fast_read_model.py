"""The fast engine's read model stays equal to the database, on both backends.

Writes go through the HTTP API (random, but seeded: every run makes the
same writes); after each one the read model a worker holds must equal a
freshly loaded snapshot of every provider, and candidates must match the
reference engine's. A second app, on its own ``Database`` (as a second
worker process would have), must see the first one's writes on its next
candidates request.
"""
from __future__ import annotations

import logging
import random
import threading
import uuid

import pytest
from sqlalchemy import delete, select, text, update

from stowage.api.app import create_app
from stowage.domain.candidates import ReadModelCache
from stowage.storage import schema
from stowage.storage.changes import changes_since, current_revision, load_all_providers
from stowage.storage.common import CHANGES_KEPT, fold_pruned_changes
from stowage.storage.database import Database
from tests.conformance.fixtures import Builder
from tests.support import Client, test_conf

PROJECT = str(uuid.UUID(int=1))
USER = str(uuid.UUID(int=2))
AGGREGATES = [str(uuid.UUID(int=10)), str(uuid.UUID(int=11))]
TRAITS = ["CUSTOM_FAST_A", "CUSTOM_FAST_B", "MISC_SHARES_VIA_AGGREGATE"]
QUERIES = [
    "/allocation_candidates?resources=VCPU:1",
    "/allocation_candidates?resources=VCPU:1,DISK_GB:10",
    "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&group_policy=none",
    "/allocation_candidates?resources=DISK_GB:10&required=CUSTOM_FAST_A",
    "/allocation_candidates?resources=VCPU:1&limit=2",
]


def fast_client(database: Database) -> Client:
    return Client(create_app(test_conf(stowage={"candidate_engine": "fast"}), database))


def reference_client(database: Database) -> Client:
    return Client(create_app(test_conf(stowage={"candidate_engine": "reference"}), database))


def candidate_set(answer) -> set[str]:
    assert answer.status == 200, answer.body
    return {repr(sorted(request["allocations"].items())) for request in answer.json()["allocation_requests"]}


def random_write(rng: random.Random, build: Builder, providers: list[str], consumers: list[str]) -> None:
    """One write of a random kind: provider, inventory, traits, aggregates,
    allocation, or deletion."""
    kind = rng.choice(
        ["provider", "child", "inventory", "traits", "aggregates", "allocate", "free", "delete"]
        if providers
        else ["provider"]
    )
    if kind == "provider":
        providers.append(build.create_provider(f"rp-{uuid.uuid4().hex[:8]}"))
    elif kind == "child":
        providers.append(
            build.create_provider(f"rp-{uuid.uuid4().hex[:8]}", parent=rng.choice(providers))
        )
    elif kind == "inventory":
        provider = rng.choice(providers)
        resource_class = rng.choice(["VCPU", "DISK_GB"])
        answer = build.client.get(f"/resource_providers/{provider}/inventories")
        if resource_class not in answer.json()["inventories"]:
            build.add_inventory(provider, resource_class, rng.randint(1, 100))
    elif kind == "traits":
        build.set_traits(rng.choice(providers), *rng.sample(TRAITS, rng.randint(0, 2)))
    elif kind == "aggregates":
        build.set_aggregates(rng.choice(providers), *rng.sample(AGGREGATES, rng.randint(0, 2)))
    elif kind == "allocate":
        offers = build.client.get("/allocation_candidates?resources=VCPU:1&limit=5").json()
        if offers["allocation_requests"]:
            consumer = str(uuid.uuid4())
            chosen = rng.choice(offers["allocation_requests"])["allocations"]
            build.set_allocation(
                consumer, PROJECT, USER, {rp: body["resources"] for rp, body in chosen.items()}
            )
            consumers.append(consumer)
    elif kind == "free" and consumers:
        consumer = consumers.pop(rng.randrange(len(consumers)))
        assert build.client.delete(f"/allocations/{consumer}").status == 204
    elif kind == "delete":
        provider = rng.choice(providers)
        if build.client.delete(f"/resource_providers/{provider}").status == 204:
            providers.remove(provider)


@pytest.mark.parametrize("seed", [1, 2])
def test_after_every_write_the_read_model_equals_a_fresh_load_and_candidates_match(
    database, seed
):
    rng = random.Random(seed)
    fast, oracle = fast_client(database), reference_client(database)
    build = Builder(fast)
    for trait in TRAITS[:2]:
        assert fast.put(f"/traits/{trait}").status == 201
    cache = ReadModelCache()
    providers: list[str] = []
    consumers: list[str] = []
    for _step in range(25):
        random_write(rng, build, providers, consumers)
        with database.read(consistent=True) as connection:
            model = cache.current(connection)
            assert list(model.snapshot.providers) == list(load_all_providers(connection).providers)
        for query in QUERIES[:-1]:
            assert candidate_set(fast.get(query)) == candidate_set(oracle.get(query)), query
        limited = candidate_set(fast.get(QUERIES[-1]))
        assert len(limited) == min(2, len(candidate_set(oracle.get(QUERIES[0]))))
        assert limited <= candidate_set(oracle.get(QUERIES[0]))


def second_database(database: Database) -> Database:
    """Another engine on the same data, as another worker process opens."""
    url = database.engine.url.render_as_string(hide_password=False)
    if database.backend.name != "postgresql":  # the URL names the whole database
        return Database.from_url(url)
    with database.read() as connection:
        search_path = connection.execute(text("SHOW search_path")).scalar()
    return Database.from_url(url, connect_args={"options": f"-csearch_path={search_path}"})


def test_a_write_through_one_worker_is_seen_by_another_workers_next_request(database):
    other_database = second_database(database)
    try:
        writer, reader = fast_client(database), fast_client(other_database)
        build = Builder(writer)
        query = "/allocation_candidates?resources=VCPU:2"
        assert reader.get(query).json()["allocation_requests"] == []
        host = build.create_provider("host")
        build.add_inventory(host, "VCPU", 2)
        assert list(reader.get(query).json()["provider_summaries"]) == [host]
        build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {host: {"VCPU": 1}})
        assert reader.get(query).json()["allocation_requests"] == []
        assert len(reader.get("/allocation_candidates?resources=VCPU:1").json()["allocation_requests"]) == 1
    finally:
        other_database.dispose()


def test_a_serving_worker_builds_its_read_model_before_the_first_request(database, caplog, monkeypatch):
    build = Builder(fast_client(database))
    host = build.create_provider("host")
    build.add_inventory(host, "VCPU", 2)
    caplog.set_level(logging.INFO, logger="stowage.domain.candidates")
    # The threads the app starts, caught as they start: looking for the
    # builder among running threads misses it when it has already finished.
    started: list[threading.Thread] = []

    class Recorded(threading.Thread):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Thread", Recorded)
    serving = Client(create_app(test_conf(), database, prepare_engine=True))
    (builder,) = [thread for thread in started if thread.name == "stowage-read-model"]
    builder.join(timeout=60)
    built = [r.getMessage() for r in caplog.records if "Read model" in r.getMessage()]
    assert len(built) == 1 and "of 1 providers" in built[0]
    caplog.clear()
    answer = serving.get("/allocation_candidates?resources=VCPU:2")
    assert list(answer.json()["provider_summaries"]) == [host]
    # The request used the model built ahead of it.
    assert not [r for r in caplog.records if "Read model" in r.getMessage()]


def test_the_fast_engine_reports_an_unknown_resource_class_as_the_reference_does(database):
    answer = fast_client(database).get("/allocation_candidates?resources=CUSTOM_NOPE:1")
    assert answer.status == 400
    assert "No such resource class CUSTOM_NOPE" in answer.json()["errors"][0]["detail"]


def test_an_allocation_reloads_only_the_tree_it_touched(database):
    client = fast_client(database)
    build = Builder(client)
    touched, untouched = build.create_provider("touched"), build.create_provider("untouched")
    for provider in (touched, untouched):
        build.add_inventory(provider, "VCPU", 4)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        before = cache.current(connection)
    revision_before, untouched_before = before.revision, before.snapshot.by_uuid[untouched]
    build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {touched: {"VCPU": 3}})
    with database.read(consistent=True) as connection:
        after = cache.current(connection)
        assert list(after.snapshot.providers) == list(load_all_providers(connection).providers)
    # Patched in place: the same model, one tree replaced.
    assert after is before
    assert after.revision > revision_before
    assert after.snapshot.by_uuid[untouched] is untouched_before
    assert after.snapshot.by_uuid[touched].inventories["VCPU"].used == 3
    assert after.free_by_root[touched] == {"VCPU": 1}


def test_renaming_a_resource_class_patches_only_the_trees_using_it(database):
    """A catalog change is patched in, not rebuilt: the renamed class's
    trees are reloaded and the model stays the same object."""
    client = fast_client(database)
    build = Builder(client)
    version = {"OpenStack-API-Version": "placement 1.2"}
    assert client.post("/resource_classes", {"name": "CUSTOM_GOLD"}, headers=version).status == 201
    user, bystander = build.create_provider("user"), build.create_provider("bystander")
    build.add_inventory(user, "CUSTOM_GOLD", 4)
    build.add_inventory(bystander, "VCPU", 4)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        before = cache.current(connection)
    bystander_before = before.snapshot.by_uuid[bystander]
    renamed = client.put("/resource_classes/CUSTOM_GOLD", {"name": "CUSTOM_PLATINUM"}, headers=version)
    assert renamed.status == 200, renamed.body
    with database.read(consistent=True) as connection:
        after = cache.current(connection)
        assert list(after.snapshot.providers) == list(load_all_providers(connection).providers)
    assert after is before
    assert set(after.snapshot.by_uuid[user].inventories) == {"CUSTOM_PLATINUM"}
    assert after.snapshot.by_uuid[bystander] is bystander_before
    answer = client.get("/allocation_candidates?resources=CUSTOM_PLATINUM:2")
    assert [list(request["allocations"]) for request in answer.json()["allocation_requests"]] == [[user]]


def test_a_worker_further_behind_than_the_feed_keeps_patches_what_changed(database):
    """The feed keeps 10,000 revisions; a worker idle for longer is told the
    changed trees from stowage_tree_revisions and patches them in."""
    client = fast_client(database)
    build = Builder(client)
    touched, untouched = build.create_provider("touched"), build.create_provider("untouched")
    for provider in (touched, untouched):
        build.add_inventory(provider, "VCPU", 4)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        before = cache.current(connection)
    untouched_before = before.snapshot.by_uuid[untouched]
    build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {touched: {"VCPU": 3}})
    with database.write() as connection:
        # As if 10,000 more revisions had passed and the prune had run.
        written = current_revision(connection)
        fold_pruned_changes(connection, written)
        connection.execute(delete(schema.changes))
        connection.execute(update(schema.revision).values(revision=written + CHANGES_KEPT))
    with database.read(consistent=True) as connection:
        assert changes_since(connection, before.revision).roots == {
            connection.execute(
                select(schema.resource_providers.c.id).where(schema.resource_providers.c.uuid == touched)
            ).scalar_one()
        }
        after = cache.current(connection)
        assert list(after.snapshot.providers) == list(load_all_providers(connection).providers)
    assert after is before
    assert after.revision == written + CHANGES_KEPT
    assert after.snapshot.by_uuid[untouched] is untouched_before
    assert after.free_by_root[touched] == {"VCPU": 1}


def test_trees_created_reshaped_and_deleted_are_patched_without_a_rebuild(database, caplog):
    """Each step is applied to the indexes the model has, never copied nor
    built again: every later model shares them."""
    client = fast_client(database)
    build = Builder(client)
    host = build.create_provider("host")
    build.add_inventory(host, "VCPU", 4)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        first = cache.current(connection)
    caplog.set_level(logging.INFO, logger="stowage.domain.candidates")

    def refreshed() -> None:
        with database.read(consistent=True) as connection:
            model = cache.current(connection)
            assert list(model.snapshot.providers) == list(load_all_providers(connection).providers)
        assert model.snapshot.by_uuid is first.snapshot.by_uuid

    build.create_provider("other")
    refreshed()
    child = build.create_provider("child", parent=host)
    refreshed()
    made_root = client.put(f"/resource_providers/{child}", {"name": "child", "parent_provider_uuid": None},
                           headers={"OpenStack-API-Version": "placement 1.37"})
    assert made_root.status == 200, made_root.body
    refreshed()
    latest = cache.latest
    assert latest is not None and child in {root.uuid for root in latest.snapshot.roots}
    for deleted in (child, host):
        assert client.delete(f"/resource_providers/{deleted}").status == 204
        refreshed()
    assert not [r for r in caplog.records if "Read model" in r.getMessage()]


def test_deleting_a_provider_removes_its_tree_from_the_read_model(database):
    client = fast_client(database)
    build = Builder(client)
    host = build.create_provider("host")
    child = build.create_provider("child", parent=host)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        assert set(cache.current(connection).snapshot.by_uuid) == {host, child}
    assert client.delete(f"/resource_providers/{child}").status == 204
    assert client.delete(f"/resource_providers/{host}").status == 204
    with database.read(consistent=True) as connection:
        assert list(cache.current(connection).snapshot.providers) == []


def test_threads_reading_while_another_writes_all_get_whole_models(database):
    client = fast_client(database)
    build = Builder(client)
    hosts = [build.create_provider(f"host{index}") for index in range(4)]
    for host in hosts:
        build.add_inventory(host, "VCPU", 100)
    problems: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            answer = client.get("/allocation_candidates?resources=VCPU:1")
            if answer.status != 200 or len(answer.json()["allocation_requests"]) != len(hosts):
                problems.append(f"{answer.status} {answer.body[:200]!r}")

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for index in range(10):
            build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {hosts[index % 4]: {"VCPU": 1}})
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert problems == []
    summaries = client.get("/allocation_candidates?resources=VCPU:1").json()["provider_summaries"]
    assert sorted(summary["resources"]["VCPU"]["used"] for summary in summaries.values()) == [2, 2, 3, 3]


def test_a_refresh_that_lost_the_race_never_takes_the_model_back(server_database, monkeypatch):
    """Thread A reads the feed at revision R+1; before it takes the lock,
    thread B patches the model in place to R+2. A must answer from the
    model at R+2, not patch it back to what its older snapshot saw."""
    from stowage.domain import candidates as domain

    database = server_database
    build = Builder(fast_client(database))
    host = build.create_provider("host")
    build.add_inventory(host, "VCPU", 8)
    cache = ReadModelCache()
    with database.read(consistent=True) as connection:
        cache.current(connection)
    build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {host: {"VCPU": 1}})
    real = domain.changes_since
    raced = []

    def changes_then_race(connection, after):
        found = real(connection, after)
        if not raced:
            raced.append(True)
            build.set_allocation(str(uuid.uuid4()), PROJECT, USER, {host: {"VCPU": 2}})
            with database.read(consistent=True) as other:
                cache.current(other)
        return found

    monkeypatch.setattr(domain, "changes_since", changes_then_race)
    with database.read(consistent=True) as older:
        older.execute(text("SELECT 1"))  # the snapshot: one allocation
        model = cache.current(older)
    assert raced
    assert model.snapshot.by_uuid[host].inventories["VCPU"].used == 3
