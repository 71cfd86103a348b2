"""The change feed behind the fast engine's read model.

Every write transaction bumps the single ``stowage_revision`` counter just
before it commits (``Database.write``), and triggers (migration 0002) note
in ``stowage_changes`` the root of every tree whose rows it changed. A
worker compares the counter with the revision its read model was loaded
at; when it moved, it reloads only the trees changed since (or everything,
when the feed cannot tell). All queries run in the caller's (consistent)
read transaction, so the model is exactly the data at the revision read.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from stowage.candidates.snapshot import Provider, Snapshot
from stowage.storage.common import CHANGES_KEPT
from stowage.storage.schema import (
    aggregates,
    changes,
    provider_aggregates,
    provider_traits,
    resource_providers,
    revision,
    traits,
)
from stowage.storage.snapshot import _inventories, _names


def current_revision(connection: Connection) -> int:
    """``SELECT revision FROM stowage_revision WHERE id = 1`` (0 if unset)."""
    value = connection.execute(select(revision.c.revision).where(revision.c.id == 1)).scalar()
    return int(value or 0)


def changed_roots(connection: Connection, after: int, upto: int) -> set[int] | None:
    """Ids of the roots whose trees changed in revisions ``after`` (excluded)
    to ``upto``; None when the feed cannot tell (a catalog change, or
    revisions already pruned), and the caller must reload everything.

    ::

        SELECT MIN(revision) FROM stowage_changes
        SELECT DISTINCT root_provider_id FROM stowage_changes
         WHERE revision > :after AND revision <= :upto
    """
    if upto < after or upto - after >= CHANGES_KEPT:
        return None
    oldest = connection.execute(select(func.min(changes.c.revision))).scalar()
    if oldest is None or oldest > after + 1:
        return None
    roots = connection.execute(
        select(changes.c.root_provider_id)
        .where(changes.c.revision > after, changes.c.revision <= upto)
        .distinct()
    ).scalars().all()
    if None in roots:
        return None
    return set(roots)


@dataclass(frozen=True)
class LoadedTrees:
    """Providers of some trees (or of all), with their storage ids."""

    snapshot: Snapshot
    provider_ids: dict[str, int]


def load_all_providers(connection: Connection) -> Snapshot:
    """Every provider, with inventories and usage, traits and aggregates, in
    creation (id) order."""
    return load_trees(connection, None).snapshot


def load_trees(connection: Connection, root_ids: Collection[int] | None) -> LoadedTrees:
    """The providers of the trees rooted at ``root_ids`` (None: of every
    tree), with inventories and usage, traits and aggregates, in creation
    (id) order: five set-based queries, however many providers.

    ::

        SELECT rp.id, rp.uuid, parent.uuid, root.uuid FROM resource_providers rp
          LEFT JOIN resource_providers parent ON parent.id = rp.parent_provider_id
          JOIN resource_providers root ON root.id = rp.root_provider_id
        [WHERE rp.root_provider_id IN (:roots)]
         ORDER BY rp.id
        -- then inventories with summed usage, traits and aggregates of
        -- SELECT id FROM resource_providers [WHERE root_provider_id IN (:roots)]
    """
    parent = aliased(resource_providers, name="parent")
    root = aliased(resource_providers, name="root")
    query = (
        select(resource_providers.c.id, resource_providers.c.uuid, parent.c.uuid, root.c.uuid)
        .select_from(resource_providers)
        .outerjoin(parent, parent.c.id == resource_providers.c.parent_provider_id)
        .join(root, root.c.id == resource_providers.c.root_provider_id)
        .order_by(resource_providers.c.id)
    )
    chosen = select(resource_providers.c.id)
    if root_ids is not None:
        in_trees = resource_providers.c.root_provider_id.in_(sorted(root_ids))
        query = query.where(in_trees)
        chosen = chosen.where(in_trees)
    provider_rows = connection.execute(query).all()
    inventories_by_provider = _inventories(connection, chosen)
    # SELECT pt.resource_provider_id, t.name, t.id FROM resource_provider_traits pt
    #   JOIN traits t ON t.id = pt.trait_id [WHERE pt.resource_provider_id IN (<chosen>)]
    trait_query = select(provider_traits.c.resource_provider_id, traits.c.name, traits.c.id).join(
        traits, traits.c.id == provider_traits.c.trait_id
    )
    aggregate_query = select(provider_aggregates.c.resource_provider_id, aggregates.c.uuid).join(
        aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id
    )
    if root_ids is not None:
        trait_query = trait_query.where(provider_traits.c.resource_provider_id.in_(chosen))
        aggregate_query = aggregate_query.where(
            provider_aggregates.c.resource_provider_id.in_(chosen)
        )
    trait_rows = connection.execute(trait_query).all()
    traits_by_provider: dict[int, set[str]] = defaultdict(set)
    for provider_id, name, _trait_id in trait_rows:
        traits_by_provider[provider_id].add(name)
    aggregates_by_provider = _names(connection, aggregate_query)
    # Interned names: 100,000 providers share a handful of trait and
    # aggregate sets, so equal frozensets are stored once.
    interned: dict[frozenset[str], frozenset[str]] = {}

    def intern(names) -> frozenset[str]:
        key = frozenset(names)
        return interned.setdefault(key, key)

    snapshot = Snapshot.of(
        (
            Provider(
                uuid=uuid,
                root_uuid=root_uuid,
                parent_uuid=parent_uuid,
                inventories=inventories_by_provider.get(provider_id, {}),
                traits=intern(traits_by_provider.get(provider_id, ())),
                aggregates=intern(aggregates_by_provider.get(provider_id, ())),
            )
            for provider_id, uuid, parent_uuid, root_uuid in provider_rows
        ),
        trait_rank={name: trait_id for _provider, name, trait_id in trait_rows},
    )
    return LoadedTrees(snapshot, {uuid: provider_id for provider_id, uuid, _p, _r in provider_rows})
