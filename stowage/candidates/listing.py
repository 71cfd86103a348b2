"""GET /resource_providers filtered in the fast engine's read model.

The listing's conditions are those of upstream's provider query, over the
model's providers (names, not ids):

* ``in_tree``: every provider of the tree the named provider is in (any
  provider of the tree may be named); an unknown one matches nothing;
* ``member_of``: in at least one aggregate of each ``any_of`` set, in none
  of ``forbidden_aggregates``;
* ``required``: at least one trait of each ``any_of`` set, none of
  ``forbidden_traits``;
* ``resources``: the provider *itself* could take each amount now (the fit
  rules of ``stowage.rules``), not its tree.

The model holds neither names nor generations: the caller reads those for
the matched ids. Nothing here is kept between requests, so the model may
be patched (or replaced) meanwhile: the providers are read from a copy of
its list taken at the start, and each index is read with ``get``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stowage.candidates.readmodel import ReadModel
from stowage.candidates.snapshot import Inventory, Provider


@dataclass(frozen=True)
class ListingConditions:
    """What ``GET /resource_providers`` asks of each provider, in the model's
    terms; ``resources`` are ``(class name, amount)`` pairs, every one to fit."""

    uuid: str | None = None
    in_tree: str | None = None
    aggregates_any_of: tuple[frozenset[str], ...] = ()
    forbidden_aggregates: frozenset[str] = frozenset()
    traits_any_of: tuple[frozenset[str], ...] = ()
    forbidden_traits: frozenset[str] = frozenset()
    resources: tuple[tuple[str, int], ...] = ()


def matching_providers(
    model: ReadModel, conditions: ListingConditions
) -> list[tuple[int, Provider]]:
    """``(storage id, provider)`` of every provider meeting ``conditions``,
    in id (creation) order: the order of the SQL listing."""
    pool = _pool(model, conditions)
    for any_of in conditions.aggregates_any_of:
        pool = _with_any(pool, any_of, aggregates=True)
    if conditions.forbidden_aggregates:
        forbidden = conditions.forbidden_aggregates
        pool = [provider for provider in pool if forbidden.isdisjoint(provider.aggregates)]
    for any_of in conditions.traits_any_of:
        pool = _with_any(pool, any_of, aggregates=False)
    if conditions.forbidden_traits:
        forbidden = conditions.forbidden_traits
        pool = [provider for provider in pool if forbidden.isdisjoint(provider.traits)]
    if conditions.resources:
        pool = _with_room(pool, conditions.resources)
    ids = model.provider_ids
    found = []
    for provider in pool:
        provider_id = ids.get(provider.uuid)
        if provider_id is not None:  # gone in a refresh since the pool was taken
            found.append((provider_id, provider))
    # Mostly in order already (the model keeps creation order).
    found.sort(key=_first)
    return found


def _first(pair: tuple[int, Provider]) -> int:
    return pair[0]


def _pool(model: ReadModel, conditions: ListingConditions) -> Sequence[Provider]:
    """The providers the cheapest condition leaves: the one named by
    ``uuid``, the tree of ``in_tree``, the trees with room for
    ``resources``, or everyone."""
    snapshot = model.snapshot
    by_uuid = snapshot.by_uuid
    root = None
    if conditions.in_tree is not None:
        member = by_uuid.get(conditions.in_tree)
        if member is None:
            return []
        root = member.root_uuid
    if conditions.uuid is not None:
        provider = by_uuid.get(conditions.uuid)
        if provider is None or (root is not None and provider.root_uuid != root):
            return []
        return [provider]
    if root is not None:
        return snapshot.tree_members.get(root, ())
    if conditions.resources:
        return _in_trees_with_room(model, conditions.resources)
    # A copy in one step: a refresh may change the list while we read it.
    return tuple(snapshot.providers)


_NOTHING_FREE: Mapping[str, int] = {}


def _in_trees_with_room(model: ReadModel, resources: tuple[tuple[str, int], ...]) -> list[Provider]:
    """Providers of the trees where, for each class, some provider has at
    least the amount free (``ReadModel.free_by_root``): a provider without
    that room cannot fit, so other trees are passed over whole."""
    free_by_root = model.free_by_root
    members = model.snapshot.tree_members
    pool: list[Provider] = []
    roots = [root.uuid for root in tuple(model.snapshot.roots)]
    for name, amount in resources:
        roots = [root for root in roots if free_by_root.get(root, _NOTHING_FREE).get(name, -1) >= amount]
    for root in roots:
        pool.extend(members.get(root, ()))
    return pool


def _with_any(pool: Iterable[Provider], any_of: frozenset[str], aggregates: bool) -> list[Provider]:
    """Providers with at least one of ``any_of`` among their aggregates
    (or traits)."""
    if len(any_of) == 1:
        (only,) = any_of
        if aggregates:
            return [provider for provider in pool if only in provider.aggregates]
        return [provider for provider in pool if only in provider.traits]
    if aggregates:
        return [provider for provider in pool if not any_of.isdisjoint(provider.aggregates)]
    return [provider for provider in pool if not any_of.isdisjoint(provider.traits)]


def _with_room(pool: Iterable[Provider], resources: tuple[tuple[str, int], ...]) -> list[Provider]:
    """Providers that could take every amount of ``resources`` now.

    Loads share equal inventory mappings between providers (a rack of hosts
    in one state has one), so each mapping is judged once per request, by
    identity: the pool holds every mapping looked at alive meanwhile, so no
    id is reused while the verdicts are kept.
    """
    verdicts: dict[int, bool] = {}
    kept = []
    for provider in pool:
        stock = provider.inventories
        verdict = verdicts.get(id(stock))
        if verdict is None:
            verdict = verdicts[id(stock)] = _fits(stock, resources)
        if verdict:
            kept.append(provider)
    return kept


def _fits(stock: Mapping[str, Inventory], resources: tuple[tuple[str, int], ...]) -> bool:
    for name, amount in resources:
        inventory = stock.get(name)
        if inventory is None or inventory.unit_problem(amount) is not None:
            return False
        if not inventory.has_room(amount):
            return False
    return True
