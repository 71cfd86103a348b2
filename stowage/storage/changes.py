"""The change feed behind the fast engine's read model.

Triggers (migrations 0002 and 0004) note in ``stowage_changes`` the root
of every tree whose rows a transaction changes, and a transaction that
changed any bumps the single ``stowage_revision`` counter just before it
commits (``Database.write``): the revision follows from what was written,
and no write path can forget it. A worker compares the counter with the
revision its read model was loaded at; when it moved, it reloads only the
trees changed since, however far behind it is (the feed's pruned rows live
on, per tree, in ``stowage_tree_revisions``). All queries run in the
caller's (consistent) read transaction, so the model is exactly the data
at the revision read.
"""
from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Float,
    Integer,
    Select,
    String,
    bindparam,
    func,
    literal_column,
    select,
    union,
    union_all,
)
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
    tree_revisions,
)
from stowage.storage.snapshot import inventories_of_rows, inventory_statement


def current_revision(connection: Connection) -> int:
    """``SELECT revision FROM stowage_revision WHERE id = 1`` (0 if unset)."""
    value = connection.execute(_CURRENT_REVISION).scalar()
    return int(value or 0)


def _feed_tells(after: int, upto: int, oldest: int | None, roots: set[int | None]) -> set[int] | None:
    """``roots``, the trees changed in revisions ``after`` to ``upto``, if
    the feed alone can tell: every revision since ``after`` still kept
    (``oldest`` is the feed's oldest) and no "every tree" row (a NULL root,
    written for catalog changes before migration 0004) among them."""
    if upto - after >= CHANGES_KEPT or oldest is None or oldest > after + 1 or None in roots:
        return None
    return {root for root in roots if root is not None}


@dataclass(frozen=True)
class ChangesSince:
    """The current revision and the roots of the trees changed since a
    revision (None: they cannot be told, reload everything)."""

    revision: int
    roots: set[int] | None


def changes_since(connection: Connection, after: int) -> ChangesSince:
    """The current revision and the roots of the trees changed since
    ``after``: one statement, the one a read model's every use runs::

        SELECT r.revision, c.root_provider_id, COUNT(c.id),
               (SELECT MIN(revision) FROM stowage_changes)
          FROM stowage_revision r
          LEFT JOIN stowage_changes c ON c.revision > :after
               AND c.revision <= r.revision AND c.revision < :after + :kept
         WHERE r.id = 1 GROUP BY r.revision, c.root_provider_id

    A model further behind than the feed keeps takes a second statement,
    the trees' last revisions (``stowage_tree_revisions``) with what the
    feed still has::

        SELECT root_provider_id FROM stowage_tree_revisions WHERE revision > :after
        UNION SELECT COALESCE(root_provider_id, 0) FROM stowage_changes
         WHERE revision > :after AND revision <= :current

    Root 0 there means every tree (roots None). A revision at or before
    ``after`` (this transaction began before another thread's refresh)
    tells no roots.
    """
    rows = connection.execute(_CHANGES_SINCE, {"after": after, "bound": after + CHANGES_KEPT}).all()
    current = int(rows[0][0] or 0) if rows else 0
    if current <= after:
        return ChangesSince(current, set())
    roots = {root for _revision, root, matched, _oldest in rows if matched}
    told = _feed_tells(after, current, rows[0][3], roots)
    if told is None:
        lagging = set(connection.execute(_CHANGED_SINCE_FOLDED, {"after": after, "current": current}).scalars())
        told = None if 0 in lagging else lagging
    return ChangesSince(current, told)


_CURRENT_REVISION = select(revision.c.revision).where(revision.c.id == 1)
_OLDEST_CHANGE = select(func.min(changes.c.revision))
_CHANGED_SINCE_FOLDED = union(
    select(tree_revisions.c.root_provider_id).where(tree_revisions.c.revision > bindparam("after")),
    select(func.coalesce(changes.c.root_provider_id, 0)).where(
        changes.c.revision > bindparam("after"), changes.c.revision <= bindparam("current")
    ),
)
_CHANGES_SINCE = (
    select(
        revision.c.revision,
        changes.c.root_provider_id,
        func.count(changes.c.id),
        _OLDEST_CHANGE.scalar_subquery(),
    )
    .select_from(
        revision.outerjoin(
            changes,
            (changes.c.revision > bindparam("after"))
            & (changes.c.revision <= revision.c.revision)
            & (changes.c.revision < bindparam("bound")),
        )
    )
    .where(revision.c.id == 1)
    .group_by(revision.c.revision, changes.c.root_provider_id)
)


ROOTS_PER_STATEMENT = 2000


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
    (id) order: four set-based queries for every tree, however many
    providers; for chosen trees (a refresh, after every write) the same four
    in one statement (``_chosen_trees_statement``), one round trip per
    ``ROOTS_PER_STATEMENT`` trees (a worker far behind may reload thousands;
    SQLite takes at most 32,766 parameters a statement, and the roots are
    bound four times).

    ::

        SELECT rp.id, rp.uuid, parent.uuid, root.uuid FROM resource_providers rp
          LEFT JOIN resource_providers parent ON parent.id = rp.parent_provider_id
          JOIN resource_providers root ON root.id = rp.root_provider_id
        [WHERE rp.root_provider_id IN (:roots)]
         ORDER BY rp.id
        -- then inventories with summed usage, traits and aggregates of
        -- SELECT id FROM resource_providers [WHERE root_provider_id IN (:roots)]
    """
    traits_by_provider: dict[int, set[str]] = defaultdict(set)
    aggregates_by_provider: dict[int, set[str]] = defaultdict(set)
    trait_rank: dict[str, int] = {}
    provider_rows: list[Sequence[Any]] = []
    if root_ids is None:
        statements = _tree_statements()
        provider_rows = list(connection.execute(statements.providers))
        inventories_by_provider = inventories_of_rows(connection.execute(statements.inventories))
        for provider_id, name, trait_id in connection.execute(statements.traits):
            traits_by_provider[provider_id].add(name)
            trait_rank[name] = trait_id
        for provider_id, aggregate in connection.execute(statements.aggregates):
            aggregates_by_provider[provider_id].add(aggregate)
    else:
        inventory_rows: list[Sequence[Any]] = []
        roots = sorted(root_ids)
        chosen_rows = itertools.chain.from_iterable(
            connection.execute(_chosen_trees_statement(), {"roots": roots[start:start + ROOTS_PER_STATEMENT]})
            for start in range(0, len(roots), ROOTS_PER_STATEMENT)
        )
        for kind, provider_id, name, parent_uuid, root_uuid, *numbers, trait_id in chosen_rows:
            if kind == _PROVIDER:
                provider_rows.append((provider_id, name, parent_uuid or None, root_uuid))
            elif kind == _INVENTORY:
                inventory_rows.append((provider_id, name, *numbers))
            elif kind == _TRAIT:
                traits_by_provider[provider_id].add(name)
                trait_rank[name] = trait_id
            else:
                aggregates_by_provider[provider_id].add(name)
        provider_rows.sort(key=lambda row: row[0])
        inventories_by_provider = inventories_of_rows(inventory_rows)
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
        trait_rank=trait_rank,
    )
    return LoadedTrees(snapshot, {uuid: provider_id for provider_id, uuid, _p, _r in provider_rows})


@dataclass(frozen=True)
class _TreeStatements:
    providers: Select
    inventories: Select
    traits: Select
    aggregates: Select


@functools.cache
def _tree_statements() -> _TreeStatements:
    """``load_trees``' statements for every tree, built once."""
    parent = aliased(resource_providers, name="parent")
    root = aliased(resource_providers, name="root")
    providers = (
        select(resource_providers.c.id, resource_providers.c.uuid, parent.c.uuid, root.c.uuid)
        .select_from(resource_providers)
        .outerjoin(parent, parent.c.id == resource_providers.c.parent_provider_id)
        .join(root, root.c.id == resource_providers.c.root_provider_id)
        .order_by(resource_providers.c.id)
    )
    # SELECT pt.resource_provider_id, t.name, t.id FROM resource_provider_traits pt
    #   JOIN traits t ON t.id = pt.trait_id
    trait_query = select(provider_traits.c.resource_provider_id, traits.c.name, traits.c.id).join(
        traits, traits.c.id == provider_traits.c.trait_id
    )
    aggregate_query = select(provider_aggregates.c.resource_provider_id, aggregates.c.uuid).join(
        aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id
    )
    everyone = select(resource_providers.c.id)
    return _TreeStatements(providers, inventory_statement(everyone), trait_query, aggregate_query)


# Row kinds of ``_chosen_trees_statement``.
_PROVIDER, _INVENTORY, _TRAIT, _AGGREGATE = 0, 1, 2, 3


@functools.cache
def _chosen_trees_statement() -> CompoundSelect:
    """``load_trees``' four queries for the trees whose root ids the
    ``roots`` parameter lists, as one ``UNION ALL`` of rows tagged by kind::

        kind, provider id, name, parent uuid, root uuid,
        total, reserved, min_unit, max_unit, step_size, allocation_ratio, used, trait id

    ``name`` is the provider's uuid, the inventory's class, the trait or the
    aggregate uuid; columns a kind does not have hold zeros and ''.
    """
    parent = aliased(resource_providers, name="parent")
    root = aliased(resource_providers, name="root")
    in_trees = resource_providers.c.root_provider_id.in_(bindparam("roots", expanding=True))
    ids = select(resource_providers.c.id).where(in_trees)
    text, number, ratio = literal_column("''", String), literal_column("0", Integer), literal_column("0.0", Float)
    providers = (
        select(
            literal_column(str(_PROVIDER), Integer), resource_providers.c.id, resource_providers.c.uuid,
            func.coalesce(parent.c.uuid, text), root.c.uuid,
            number, number, number, number, number, ratio, number, number,
        )
        .select_from(resource_providers)
        .outerjoin(parent, parent.c.id == resource_providers.c.parent_provider_id)
        .join(root, root.c.id == resource_providers.c.root_provider_id)
        .where(in_trees)
    )
    stock = inventory_statement(ids).subquery("stock")
    stock_rows = select(
        literal_column(str(_INVENTORY), Integer), *list(stock.c)[:2], text, text,
        *list(stock.c)[2:], number,
    )
    trait_rows = (
        select(
            literal_column(str(_TRAIT), Integer), provider_traits.c.resource_provider_id, traits.c.name,
            text, text, number, number, number, number, number, ratio, number, traits.c.id,
        )
        .join(traits, traits.c.id == provider_traits.c.trait_id)
        .where(provider_traits.c.resource_provider_id.in_(ids))
    )
    aggregate_rows = (
        select(
            literal_column(str(_AGGREGATE), Integer), provider_aggregates.c.resource_provider_id,
            aggregates.c.uuid, text, text, number, number, number, number, number, ratio, number,
            number,
        )
        .join(aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id)
        .where(provider_aggregates.c.resource_provider_id.in_(ids))
    )
    return union_all(providers, stock_rows, trait_rows, aggregate_rows)
