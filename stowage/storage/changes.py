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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
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

from stowage.candidates.snapshot import Snapshot
from stowage.storage.common import CHANGES_KEPT
from stowage.storage.schema import (
    aggregates,
    allocations,
    changes,
    inventories,
    provider_aggregates,
    provider_traits,
    resource_classes,
    resource_providers,
    revision,
    traits,
    tree_revisions,
)
from stowage.storage.snapshot import Shared, inventories_of_rows, inventory_statement, providers_of_rows


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
    if root_ids is None:
        return _every_tree(connection)
    shared = Shared()
    traits_by_provider: dict[int, set[str]] = defaultdict(set)
    aggregates_by_provider: dict[int, set[str]] = defaultdict(set)
    trait_rank: dict[str, int] = {}
    provider_rows: list[Sequence[Any]] = []
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
    inventories_by_provider = inventories_of_rows(inventory_rows, shared)
    snapshot = Snapshot.of(
        providers_of_rows(provider_rows, inventories_by_provider, traits_by_provider, aggregates_by_provider, shared),
        trait_rank=trait_rank,
    )
    return LoadedTrees(snapshot, {uuid: provider_id for provider_id, uuid, _p, _r in provider_rows})


def _every_tree(connection: Connection) -> LoadedTrees:
    """``load_trees`` of every tree, streamed: each statement's rows come in
    provider id order and are folded provider by provider as they arrive,
    so that no per-row object lives on while others are made (a worker that
    loaded 400,000 providers that way kept a third of its memory in freed
    but fragmented arenas)."""
    shared = Shared()
    statements = _tree_statements()
    inventories_by_provider = inventories_of_rows(connection.execute(statements.inventories), shared)
    trait_rank: dict[str, int] = {}
    traits_by_provider: dict[int, frozenset[str]] = {}
    for provider_id, rows in itertools.groupby(connection.execute(statements.traits), itemgetter(0)):
        names = []
        for _provider_id, name, trait_id in rows:
            names.append(name)
            trait_rank[name] = trait_id
        traits_by_provider[provider_id] = shared.names(names)
    aggregates_by_provider = {
        provider_id: shared.names(aggregate for _provider_id, aggregate in rows)
        for provider_id, rows in itertools.groupby(connection.execute(statements.aggregates), itemgetter(0))
    }
    provider_ids: dict[str, int] = {}

    def provider_rows() -> Iterator[Sequence[Any]]:
        for row in connection.execute(statements.providers):
            provider_ids[shared(row[1])] = row[0]
            yield row

    snapshot = Snapshot.of(
        providers_of_rows(provider_rows(), inventories_by_provider, traits_by_provider, aggregates_by_provider, shared),
        trait_rank=trait_rank,
    )
    return LoadedTrees(snapshot, provider_ids)


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
    trait_query = (
        select(provider_traits.c.resource_provider_id, traits.c.name, traits.c.id)
        .join(traits, traits.c.id == provider_traits.c.trait_id)
        .order_by(provider_traits.c.resource_provider_id)
    )
    aggregate_query = (
        select(provider_aggregates.c.resource_provider_id, aggregates.c.uuid)
        .join(aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id)
        .order_by(provider_aggregates.c.resource_provider_id)
    )
    everyone = select(resource_providers.c.id)
    stock = inventory_statement(everyone).order_by(inventories.c.resource_provider_id)
    return _TreeStatements(providers, stock, trait_query, aggregate_query)


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

    The trees' providers are picked once, in a common table expression the
    four parts join, and each inventory's usage is summed by its own index
    lookup: PostgreSQL plans that in half the time of four ``IN``
    subqueries (it plans anew until it settles on a generic plan, and a
    refresh after a claim is this statement and ``changes_since``), and
    no part reads more rows than the trees have::

        WITH tree AS (SELECT id, uuid, parent_provider_id, root_provider_id
                        FROM resource_providers WHERE root_provider_id IN (:roots))
        SELECT 0, tree.id, tree.uuid, COALESCE(parent.uuid, ''), root.uuid, 0, ...
          FROM tree LEFT JOIN resource_providers parent ON parent.id = tree.parent_provider_id
          JOIN resource_providers root ON root.id = tree.root_provider_id
        UNION ALL
        SELECT 1, inv.resource_provider_id, rc.name, '', '', inv.total, ..., inv.allocation_ratio,
               (SELECT COALESCE(SUM(a.used), 0) FROM allocations a
                 WHERE a.resource_provider_id = inv.resource_provider_id
                   AND a.resource_class_id = inv.resource_class_id), 0
          FROM tree JOIN inventories inv ON inv.resource_provider_id = tree.id
          JOIN resource_classes rc ON rc.id = inv.resource_class_id
        UNION ALL SELECT 2, ... traits of the tree's providers
        UNION ALL SELECT 3, ... aggregates of the tree's providers
    """
    parent = aliased(resource_providers, name="parent")
    root = aliased(resource_providers, name="root")
    tree = (
        select(
            resource_providers.c.id, resource_providers.c.uuid,
            resource_providers.c.parent_provider_id, resource_providers.c.root_provider_id,
        )
        .where(resource_providers.c.root_provider_id.in_(bindparam("roots", expanding=True)))
        .cte("tree")
    )
    text, number, ratio = literal_column("''", String), literal_column("0", Integer), literal_column("0.0", Float)
    providers = select(
        literal_column(str(_PROVIDER), Integer), tree.c.id, tree.c.uuid,
        func.coalesce(parent.c.uuid, text), root.c.uuid,
        number, number, number, number, number, ratio, number, number,
    ).select_from(
        tree.outerjoin(parent, parent.c.id == tree.c.parent_provider_id)
        .join(root, root.c.id == tree.c.root_provider_id)
    )
    used = (
        select(func.coalesce(func.sum(allocations.c.used), 0))
        .where(
            allocations.c.resource_provider_id == inventories.c.resource_provider_id,
            allocations.c.resource_class_id == inventories.c.resource_class_id,
        )
        .scalar_subquery()
    )
    stock_rows = select(
        literal_column(str(_INVENTORY), Integer), inventories.c.resource_provider_id, resource_classes.c.name,
        text, text, inventories.c.total, inventories.c.reserved, inventories.c.min_unit,
        inventories.c.max_unit, inventories.c.step_size, inventories.c.allocation_ratio, used, number,
    ).select_from(
        tree.join(inventories, inventories.c.resource_provider_id == tree.c.id)
        .join(resource_classes, resource_classes.c.id == inventories.c.resource_class_id)
    )
    trait_rows = select(
        literal_column(str(_TRAIT), Integer), provider_traits.c.resource_provider_id, traits.c.name,
        text, text, number, number, number, number, number, ratio, number, traits.c.id,
    ).select_from(
        tree.join(provider_traits, provider_traits.c.resource_provider_id == tree.c.id)
        .join(traits, traits.c.id == provider_traits.c.trait_id)
    )
    aggregate_rows = select(
        literal_column(str(_AGGREGATE), Integer), provider_aggregates.c.resource_provider_id,
        aggregates.c.uuid, text, text, number, number, number, number, number, ratio, number, number,
    ).select_from(
        tree.join(provider_aggregates, provider_aggregates.c.resource_provider_id == tree.c.id)
        .join(aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id)
    )
    return union_all(providers, stock_rows, trait_rows, aggregate_rows)
