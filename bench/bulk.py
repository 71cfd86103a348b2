"""Load a scenario straight into a database, for sizes where loading over
HTTP would take hours (100,000 roots are about a million requests).

The rows are what the HTTP API would have written for the same providers
(generations aside), in one transaction. Into Stowage's database they go
through Stowage's own storage layer: the triggers fill the change feed and
the revision moves once, as for any other write. Upstream's schema is the
same tables without the stowage_* ones, so ``upstream=True`` writes the
same rows in a plain transaction (there is no revision to take); upstream
must have started once before, so that its standard traits and resource
classes are in the database (it syncs them as its app loads).
"""
from __future__ import annotations

import time
from collections import defaultdict

from sqlalchemy import select, update

from bench.measure import LoadResult
from bench.scenarios import CUSTOM_TRAITS, ProviderSpec, depth_by_name
from stowage.storage import schema
from stowage.storage.common import insert_ignoring_duplicates, utcnow
from stowage.storage.database import Database

_CHUNK = 5000


def _insert(connection, table, rows: list[dict]) -> None:
    for start in range(0, len(rows), _CHUNK):
        connection.execute(table.insert(), rows[start:start + _CHUNK])


def load(url: str, providers: list[ProviderSpec], upstream: bool = False) -> LoadResult:
    """Insert every provider with its inventories, traits and aggregates
    into Stowage's database, or upstream's with ``upstream=True``."""
    started = time.perf_counter()
    database = Database.from_url(url.replace("+psycopg2", "+psycopg"))
    with database.engine.begin() if upstream else database.write() as connection:
        _insert_providers(connection, providers)
    database.engine.dispose()
    return LoadResult(len(providers), 0, time.perf_counter() - started)


def _insert_providers(connection, providers: list[ProviderSpec]) -> None:
    now = utcnow()
    stamps = {"created_at": now, "updated_at": now}
    insert_ignoring_duplicates(connection, schema.traits,
                               [{"name": name, **stamps} for name in CUSTOM_TRAITS])
    class_ids = dict(connection.execute(
        select(schema.resource_classes.c.name, schema.resource_classes.c.id)).all())
    trait_ids = dict(connection.execute(select(schema.traits.c.name, schema.traits.c.id)).all())
    aggregate_uuids = sorted({aggregate for provider in providers
                              for aggregate in provider.aggregates})
    _insert(connection, schema.aggregates,
            [{"uuid": aggregate, **stamps} for aggregate in aggregate_uuids])
    aggregate_ids = dict(connection.execute(
        select(schema.aggregates.c.uuid, schema.aggregates.c.id)).all())

    # Level by level, so that parents' ids are known; a root is its own root.
    depths = depth_by_name(providers)
    levels: dict[int, list[ProviderSpec]] = defaultdict(list)
    for provider in providers:
        levels[depths[provider.name]].append(provider)
    ids: dict[str, int] = {}
    roots: dict[str, int] = {}
    table = schema.resource_providers
    for depth in sorted(levels):
        _insert(connection, table, [
            {"uuid": provider.uuid, "name": provider.name, "generation": 0,
             "parent_provider_id": ids.get(provider.parent_uuid),
             "root_provider_id": roots.get(provider.parent_uuid), **stamps}
            for provider in levels[depth]])
        if depth == 0:
            connection.execute(update(table).where(table.c.parent_provider_id.is_(None))
                               .values(root_provider_id=table.c.id))
        ids.update(connection.execute(select(table.c.uuid, table.c.id)).all())
        for provider in levels[depth]:
            roots[provider.uuid] = roots.get(provider.parent_uuid, ids[provider.uuid])

    _insert(connection, schema.inventories, [
        {"resource_provider_id": ids[provider.uuid], "resource_class_id": class_ids[name],
         **inventory.as_body(), **stamps}
        for provider in providers for name, inventory in provider.inventories.items()])
    _insert(connection, schema.provider_traits, [
        {"resource_provider_id": ids[provider.uuid], "trait_id": trait_ids[trait], **stamps}
        for provider in providers for trait in provider.traits])
    _insert(connection, schema.provider_aggregates, [
        {"resource_provider_id": ids[provider.uuid],
         "aggregate_id": aggregate_ids[aggregate], **stamps}
        for provider in providers for aggregate in provider.aggregates])
