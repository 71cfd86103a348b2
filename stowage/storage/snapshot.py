"""Loads the providers in play for a candidate request into a ``Snapshot``.

Five set-based queries, whatever the number of providers: the roots in play
(a subquery reused by the others), then the providers, inventories with
usage, traits and aggregates of those trees.

A tree is in play if any of its providers has inventory of a requested
class, or if it can use or is a sharing provider. Whole trees are loaded,
because traits, aggregates and ``same_subtree`` look at providers that give
nothing, and summaries list every provider of a tree.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Connection, Select, func, select, union
from sqlalchemy.orm import aliased

from stowage.candidates.snapshot import SHARING_TRAIT, Inventory, Provider, Snapshot
from stowage.storage.schema import (
    aggregates,
    allocations,
    inventories,
    provider_aggregates,
    provider_traits,
    resource_classes,
    resource_providers,
    traits,
)


def _sharing_provider_ids() -> Select:
    """``SELECT pt.resource_provider_id FROM resource_provider_traits pt
    JOIN traits t ON t.id = pt.trait_id WHERE t.name = 'MISC_SHARES_VIA_AGGREGATE'``"""
    return (
        select(provider_traits.c.resource_provider_id)
        .join(traits, traits.c.id == provider_traits.c.trait_id)
        .where(traits.c.name == SHARING_TRAIT)
    )


def roots_in_play(resource_class_names: Collection[str]) -> CompoundSelect:
    """Ids of the roots of every tree that may take part in a candidate.

    ::

        SELECT rp.root_provider_id FROM resource_providers rp
          JOIN inventories inv ON inv.resource_provider_id = rp.id
          JOIN resource_classes rc ON rc.id = inv.resource_class_id
         WHERE rc.name IN (:classes)
        UNION
        SELECT rp.root_provider_id FROM resource_providers rp
         WHERE rp.id IN (<sharing providers>)
        UNION
        SELECT member.root_provider_id
          FROM resource_provider_aggregates shared
          JOIN resource_provider_aggregates peer ON peer.aggregate_id = shared.aggregate_id
          JOIN resource_providers member ON member.id = peer.resource_provider_id
         WHERE shared.resource_provider_id IN (<sharing providers>)
    """
    provider = resource_providers
    with_inventory = (
        select(provider.c.root_provider_id)
        .join(inventories, inventories.c.resource_provider_id == provider.c.id)
        .join(resource_classes, resource_classes.c.id == inventories.c.resource_class_id)
        .where(resource_classes.c.name.in_(sorted(resource_class_names)))
    )
    sharing = select(provider.c.root_provider_id).where(provider.c.id.in_(_sharing_provider_ids()))
    shared = aliased(provider_aggregates, name="shared")
    peer = aliased(provider_aggregates, name="peer")
    member = aliased(provider, name="member")
    sharing_with = (
        select(member.c.root_provider_id)
        .select_from(shared)
        .join(peer, peer.c.aggregate_id == shared.c.aggregate_id)
        .join(member, member.c.id == peer.c.resource_provider_id)
        .where(shared.c.resource_provider_id.in_(_sharing_provider_ids()))
    )
    return union(with_inventory, sharing, sharing_with)


def load_snapshot(connection: Connection, resource_class_names: Collection[str]) -> Snapshot:
    """Every tree in play for a request of these classes, with usage, traits
    and aggregates, in provider creation order."""
    roots = roots_in_play(resource_class_names).subquery("roots_in_play")
    in_play = resource_providers.c.root_provider_id.in_(select(roots.c.root_provider_id))
    parent = aliased(resource_providers, name="parent")
    root = aliased(resource_providers, name="root")

    # SELECT rp.id, rp.uuid, parent.uuid, root.uuid FROM resource_providers rp
    #   LEFT JOIN resource_providers parent ON parent.id = rp.parent_provider_id
    #   JOIN resource_providers root ON root.id = rp.root_provider_id
    #  WHERE rp.root_provider_id IN (<roots in play>) ORDER BY rp.id
    provider_rows = connection.execute(
        select(resource_providers.c.id, resource_providers.c.uuid, parent.c.uuid, root.c.uuid)
        .select_from(resource_providers)
        .outerjoin(parent, parent.c.id == resource_providers.c.parent_provider_id)
        .join(root, root.c.id == resource_providers.c.root_provider_id)
        .where(in_play)
        .order_by(resource_providers.c.id)
    ).all()

    ids_in_play = select(resource_providers.c.id).where(in_play)
    inventories_by_provider = _inventories(connection, ids_in_play)
    trait_rows = connection.execute(
        select(provider_traits.c.resource_provider_id, traits.c.name, traits.c.id)
        .join(traits, traits.c.id == provider_traits.c.trait_id)
        .where(provider_traits.c.resource_provider_id.in_(ids_in_play))
    ).all()
    traits_by_provider: dict[int, set[str]] = defaultdict(set)
    for provider_id, name, _trait_id in trait_rows:
        traits_by_provider[provider_id].add(name)
    aggregates_by_provider = _names(
        connection,
        select(provider_aggregates.c.resource_provider_id, aggregates.c.uuid)
        .join(aggregates, aggregates.c.id == provider_aggregates.c.aggregate_id)
        .where(provider_aggregates.c.resource_provider_id.in_(ids_in_play)),
    )
    return Snapshot.of(
        providers_of_rows(provider_rows, inventories_by_provider, traits_by_provider, aggregates_by_provider),
        trait_rank={name: trait_id for _provider, name, trait_id in trait_rows},
    )


def providers_of_rows(
    provider_rows: Iterable[Sequence[Any]],
    inventories_by_provider: Mapping[int, Mapping[str, Inventory]],
    traits_by_provider: Mapping[int, Iterable[str]],
    aggregates_by_provider: Mapping[int, Iterable[str]],
    shared: Shared | None = None,
) -> Iterator[Provider]:
    """``Provider``s of (id, uuid, parent uuid, root uuid) rows, with their
    inventories, traits and aggregates by provider id; equal values stored
    once (``Shared``)."""
    share = shared or Shared()
    no_inventory: dict[str, Inventory] = {}
    for provider_id, uuid, parent_uuid, root_uuid in provider_rows:
        yield Provider(
            uuid=share(uuid),
            root_uuid=share(root_uuid),
            parent_uuid=None if parent_uuid is None else share(parent_uuid),
            inventories=inventories_by_provider.get(provider_id, no_inventory),
            traits=share.names(traits_by_provider.get(provider_id, ())),
            aggregates=share.names(aggregates_by_provider.get(provider_id, ())),
        )


def _inventories(connection: Connection, provider_ids: Select) -> dict[int, dict[str, Inventory]]:
    """Inventories of the providers, each with its summed usage
    (``inventory_statement``)."""
    return inventories_of_rows(connection.execute(inventory_statement(provider_ids)))


def inventory_statement(provider_ids: Select) -> Select:
    """Inventories of the providers, each with its summed usage.

    ::

        SELECT inv.*, rc.name, COALESCE(usage.used, 0)
          FROM inventories inv JOIN resource_classes rc ON rc.id = inv.resource_class_id
          LEFT JOIN (SELECT resource_provider_id, resource_class_id, SUM(used) AS used
                       FROM allocations WHERE resource_provider_id IN (:providers)
                      GROUP BY resource_provider_id, resource_class_id) usage
            ON usage.resource_provider_id = inv.resource_provider_id
           AND usage.resource_class_id = inv.resource_class_id
         WHERE inv.resource_provider_id IN (:providers)
    """
    usage = (
        select(
            allocations.c.resource_provider_id,
            allocations.c.resource_class_id,
            func.sum(allocations.c.used).label("used"),
        )
        .where(allocations.c.resource_provider_id.in_(provider_ids))
        .group_by(allocations.c.resource_provider_id, allocations.c.resource_class_id)
        .subquery("usage")
    )
    return (
        select(
            inventories.c.resource_provider_id,
            resource_classes.c.name,
            inventories.c.total,
            inventories.c.reserved,
            inventories.c.min_unit,
            inventories.c.max_unit,
            inventories.c.step_size,
            inventories.c.allocation_ratio,
            func.coalesce(usage.c.used, 0),
        )
        .join(resource_classes, resource_classes.c.id == inventories.c.resource_class_id)
        .outerjoin(
            usage,
            (usage.c.resource_provider_id == inventories.c.resource_provider_id)
            & (usage.c.resource_class_id == inventories.c.resource_class_id),
        )
        .where(inventories.c.resource_provider_id.in_(provider_ids))
    )


class Shared:
    """One object for each distinct value a load reads, so that a read
    model of 400,000 providers stores each only once: the uuid of a root
    (its own, and the root and parent of each of its providers), a class
    name, an inventory (a rack of hosts in the same state has the same
    ones), a provider's whole inventory mapping, a set of traits or of
    aggregates. Lives for one load: equal values read by later loads (a
    refresh) are new objects, so nothing accumulates across writes.
    """

    __slots__ = ("_stocks", "_values")

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._stocks: dict[tuple[Inventory, ...], dict[str, Inventory]] = {}

    def __call__(self, value: _Value) -> _Value:
        return self._values.setdefault(value, value)

    def names(self, names: Iterable[str]) -> frozenset[str]:
        # Through a set: a frozenset copied from one is sized to fit.
        return self(frozenset(set(names)))

    def stock(self, found: dict[str, Inventory]) -> dict[str, Inventory]:
        """``found`` or an equal mapping already read (never changed later:
        ``Provider.inventories``)."""
        return self._stocks.setdefault(tuple(found.values()), found)


_Value = TypeVar("_Value", bound=Hashable)


def inventories_of_rows(
    rows: Iterable[Sequence[Any]], shared: Shared | None = None
) -> dict[int, dict[str, Inventory]]:
    """``inventory_statement``'s rows by provider id and class. Rows in
    provider order (a whole load's) are folded provider by provider, so that
    no per-row object outlives its provider's turn."""
    share = shared or Shared()
    found: dict[int, dict[str, Inventory]] = {}
    provider_id: int | None = None
    stock: dict[str, Inventory] = {}
    for row_id, name, total, reserved, min_unit, max_unit, step, ratio, used in rows:
        if row_id != provider_id:
            if provider_id is not None:
                found[provider_id] = share.stock(stock)
            provider_id = row_id
            stock = dict(found.get(row_id, ()))
        name = share(name)
        stock[name] = share(
            Inventory(
                resource_class=name,
                total=total,
                reserved=reserved,
                min_unit=min_unit,
                max_unit=max_unit,
                step_size=step,
                allocation_ratio=float(ratio),
                used=int(used),
            )
        )
    if provider_id is not None:
        found[provider_id] = share.stock(stock)
    return found


def _names(connection: Connection, query: Select) -> dict[int, set[str]]:
    """(provider id, name) rows grouped by provider."""
    found: dict[int, set[str]] = defaultdict(set)
    for provider_id, name in connection.execute(query):
        found[provider_id].add(name)
    return found
