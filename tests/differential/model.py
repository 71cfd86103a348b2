"""The generator's light model of what exists on the reference service.

It is updated from upstream's answers only (Stowage's never steer the
sequence), so a seed makes the same requests whatever Stowage answers. It
knows enough to aim requests at real objects: providers and their trees,
inventories, traits, aggregates, custom resource classes, consumers and their
allocations. Generations are not tracked: requests name them late (see
``steps.Late``) and each service fills in its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Inventory:
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = 2147483647
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        return int((self.total - self.reserved) * self.allocation_ratio)


@dataclass
class Provider:
    uuid: str
    name: str
    parent: str | None = None
    inventories: dict[str, Inventory] = field(default_factory=dict)
    traits: set[str] = field(default_factory=set)
    aggregates: set[str] = field(default_factory=set)


@dataclass
class Consumer:
    uuid: str
    project: str
    user: str
    consumer_type: str | None = None
    # {provider uuid: {resource class: amount}}
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Model:
    providers: dict[str, Provider] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    custom_resource_classes: set[str] = field(default_factory=set)
    custom_traits: set[str] = field(default_factory=set)
    deleted_providers: list[str] = field(default_factory=list)

    def root_of(self, uuid: str) -> str:
        seen: set[str] = set()
        while True:
            provider = self.providers.get(uuid)
            if provider is None or provider.parent is None or uuid in seen:
                return uuid
            seen.add(uuid)
            uuid = provider.parent

    def tree_of(self, uuid: str) -> list[str]:
        """Every provider in the tree ``uuid`` belongs to, in creation order."""
        root = self.root_of(uuid)
        return [other for other in self.providers if self.root_of(other) == root]

    def descendants(self, uuid: str) -> set[str]:
        found: set[str] = set()
        frontier = [uuid]
        while frontier:
            current = frontier.pop()
            for other, provider in self.providers.items():
                if provider.parent == current and other not in found:
                    found.add(other)
                    frontier.append(other)
        return found

    def children(self, uuid: str) -> list[str]:
        return [other for other, provider in self.providers.items() if provider.parent == uuid]

    def used(self, provider: str, resource_class: str) -> int:
        return sum(consumer.allocations.get(provider, {}).get(resource_class, 0)
                   for consumer in self.consumers.values())

    def has_allocations(self, provider: str) -> bool:
        return any(provider in consumer.allocations for consumer in self.consumers.values())

    def inventory_slots(self) -> list[tuple[str, str]]:
        """(provider, resource class) for every inventory, in a stable order."""
        return [(uuid, resource_class) for uuid, provider in self.providers.items()
                for resource_class in sorted(provider.inventories)]

    def resource_classes_in_use(self) -> list[str]:
        return sorted({resource_class for _provider, resource_class in self.inventory_slots()})

    def traits_in_use(self) -> list[str]:
        return sorted({trait for provider in self.providers.values() for trait in provider.traits})

    def aggregates_in_use(self) -> list[str]:
        return sorted({aggregate for provider in self.providers.values()
                       for aggregate in provider.aggregates})
