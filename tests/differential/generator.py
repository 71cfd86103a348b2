"""Seeded random sequences of Placement API calls.

``Generator(seed).next()`` returns the next step and a callback that updates
the model from upstream's answer to it. The same seed and the same answers
give the same steps, so a seed replays exactly.

Each step first draws its microversion (any of 1.0-1.39, ``latest``, none, or
now and then a malformed or out-of-range header), then shapes its request for
that microversion most of the time, and against it now and then (a body
format of another microversion, a parameter from a later one). On top, a
few steps get a different caller (a non-admin token, no token), an unusual
Accept or Content-Type, or a broken body or query string.
"""
from __future__ import annotations

import itertools
import random
import uuid as uuid_module
from collections.abc import Callable
from typing import Any

from tests.differential.model import Consumer, Inventory, Model, Provider
from tests.differential.steps import Late, Raw, Step, placeholder
from tests.differential.wire import Answer

MAX_MINOR = 39
MAX_INT = 2147483647
STANDARD_CLASSES = ["VCPU", "MEMORY_MB", "DISK_GB", "SRIOV_NET_VF", "VGPU", "IPV4_ADDRESS",
                    "NET_BW_EGR_KILOBIT_PER_SEC", "PCI_DEVICE"]
CUSTOM_CLASSES = ["CUSTOM_MAGIC", "CUSTOM_GOLD", "CUSTOM_FPGA", "CUSTOM_NET_MBPS"]
STANDARD_TRAITS = ["HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_CPU_X86_SSE", "HW_NIC_SRIOV",
                   "STORAGE_DISK_SSD", "COMPUTE_VOLUME_MULTI_ATTACH", "HW_NUMA_ROOT",
                   "MISC_SHARES_VIA_AGGREGATE"]
CUSTOM_TRAITS = ["CUSTOM_PHYSNET_A", "CUSTOM_PHYSNET_B", "CUSTOM_RAID", "CUSTOM_FOO"]
SHARES = "MISC_SHARES_VIA_AGGREGATE"
CONSUMER_TYPES = ["INSTANCE", "MIGRATION"]
MALFORMED_VERSIONS = ["placement 1.40", "placement 2.0", "placement 0.9", "placement 1.a",
                      "placement 1", "placement latest1", "compute 1.20", "placement 1.05",
                      "placement 1.2.3", "placement", "placement -1.5"]
ODD_ACCEPTS = [None, "*/*", "text/plain", "text/html", "application/xml",
               "application/json;q=0.5, text/html", "application/*"]
ODD_CONTENT_TYPES = [None, "text/plain", "application/json; charset=utf-8",
                     "application/x-www-form-urlencoded", "application/JSON"]
RAW_BODIES = [b"{", b"not json", b"[]", b"null", b'"a string"', b"{}", b"\xff\xfe",
              b'{"a": 1,}']
ODD_VALUES: list[Any] = ["not-a-uuid", -1, 0, MAX_INT + 1, 1.5, None, True, [], {}, "", "x" * 300]

OnAnswer = Callable[[Answer], None]


def _ok(answer: Answer) -> bool:
    return 200 <= answer.status < 300


class Generator:
    """Makes a sequence of steps from a seed, following upstream's answers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.model = Model()
        self.aggregates = [self._new_uuid() for _ in range(4)]
        self.projects = [self._new_uuid() for _ in range(3)]
        self.users = [self._new_uuid() for _ in range(3)]
        self._numbers = itertools.count(1)
        self.minor = MAX_MINOR
        self._actions: list[tuple[Callable[[], tuple[Step, OnAnswer | None]], int]] = [
            (self.create_provider, 10), (self.update_provider, 4), (self.delete_provider, 3),
            (self.get_provider, 3), (self.list_providers, 6),
            (self.post_inventory, 7), (self.put_inventories, 6), (self.put_inventory, 3),
            (self.delete_inventory, 2), (self.delete_inventories, 1), (self.get_inventories, 3),
            (self.resource_class_call, 4), (self.trait_call, 4), (self.provider_traits, 6),
            (self.aggregates_call, 6), (self.put_allocations, 10), (self.post_allocations, 4),
            (self.delete_allocations, 2), (self.get_allocations, 4), (self.usages, 4),
            (self.reshape, 2), (self.allocation_candidates, 14), (self.miscellany, 2),
            (self.build_host, 4), (self.build_sharing_provider, 1),
        ]
        # Steps an action planned to follow it (the rest of a host being built).
        self._plan: list[Callable[[], tuple[Step, OnAnswer | None]]] = []

    # --- drawing -------------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid_module.UUID(int=self.rng.getrandbits(128), version=4))

    def _chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def _pick(self, items: list[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def _sample(self, items: list[Any], low: int, high: int) -> list[Any]:
        count = self.rng.randint(low, min(high, len(items))) if items else 0
        return self.rng.sample(items, count)

    def _name(self, prefix: str) -> str:
        return f"{prefix}-{next(self._numbers)}"

    def _version(self, minimum: int = 0) -> str | None:
        """Draw the microversion header; sets ``self.minor`` to the one to shape for."""
        draw = self.rng.random()
        if draw < 0.04:
            self.minor = 0
            return None
        if draw < 0.07:
            self.minor = MAX_MINOR
            return self._pick(MALFORMED_VERSIONS)
        if draw < 0.20:
            self.minor = MAX_MINOR
            return "placement latest"
        if draw < 0.30:
            self.minor = self.rng.randint(0, MAX_MINOR)
        else:
            self.minor = self.rng.randint(minimum, MAX_MINOR)
        return f"placement 1.{self.minor}"

    def _at(self, minor: int) -> bool:
        """Whether to use a feature of ``minor``: when the version has it, and
        now and then when it does not."""
        return self.minor >= minor or self._chance(0.04)

    def _headers(self, version: str | None, body: bool, caller: str = "admin",
                 ) -> tuple[tuple[str, str], ...]:
        """Headers of a request by ``caller`` ("admin", "service" or "reader:PROJECT"),
        now and then by someone else: a plain user, or no token at all (401)."""
        headers: list[tuple[str, str]] = []
        draw = self.rng.random()
        if draw < 0.04:
            pass  # no token: 401
        elif draw < 0.08:
            headers.append(("x-auth-token", self._pick(["user", f"user:{self.projects[0]}"])))
        elif draw < 0.11 and caller != "admin":
            headers.append(("x-auth-token", "admin"))
        elif caller == "service":
            headers += [("x-auth-token", "nova:service"), ("x-roles", "service")]
        elif caller.startswith("reader:"):
            headers += [("x-auth-token", f"user:{caller.split(':', 1)[1]}"),
                        ("x-roles", "reader")]
        else:
            headers.append(("x-auth-token", "admin"))
        if version is not None:
            headers.append(("openstack-api-version", version))
        accept = "application/json" if self._chance(0.88) else self._pick(ODD_ACCEPTS)
        if accept is not None:
            headers.append(("accept", accept))
        if body:
            content_type = "application/json" if self._chance(0.94) else self._pick(
                ODD_CONTENT_TYPES)
            if content_type is not None:
                headers.append(("content-type", content_type))
        return tuple(headers)

    def _step(self, label: str, method: str, route: str, path: str, version: str | None,
              body: Any = None, query: list[tuple[str, str]] | None = None,
              creates: str | None = None, caller: str = "admin") -> Step:
        if body is not None and not isinstance(body, Raw) and self._chance(0.08):
            body = self._broken(body)
        if query is not None and self._chance(0.05):
            query = self._broken_query(query)
        return Step(label, method, route, path, tuple(query or ()),
                    self._headers(version, body is not None, caller), body, creates)

    def _broken(self, body: Any) -> Any:
        """``body`` with one thing wrong: not JSON, a value of the wrong type
        or out of range, a field missing, or one too many."""
        draw = self.rng.random()
        if draw < 0.2:
            return Raw(self._pick(RAW_BODIES))
        paths = list(_json_paths(body))
        if not paths:
            return Raw(self._pick(RAW_BODIES))
        path = self._pick(paths)
        if draw < 0.6:
            return _replaced(body, path, self._pick(ODD_VALUES))
        if draw < 0.8:
            return _replaced(body, path, _MISSING)
        if isinstance(body, dict) and (len(path) == 1 or self._chance(0.5)):
            return {**body, "extra_field": 1}
        return _replaced(body, path[:-1] + ("extra_field",), 1)

    def _broken_query(self, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
        draw = self.rng.random()
        if draw < 0.3 or not query:
            return [*query, ("unknown_param", "1")]
        index = self.rng.randrange(len(query))
        name, value = query[index]
        replacement = self._pick(["", "not-a-uuid", "!", "in:", ",", "VCPU", "VCPU:-1",
                                  value + ",", value.lower()])
        return query[:index] + [(name, replacement)] + query[index + 1:]

    def next(self) -> tuple[Step, OnAnswer | None]:
        if self._plan:
            return self._plan.pop(0)()
        actions, weights = zip(*self._actions, strict=False)
        action = self.rng.choices(actions, weights)[0]
        return action()

    # --- choosing real objects -----------------------------------------------------------

    def _provider(self, missing: float = 0.05) -> str:
        """An existing provider mostly; now and then a deleted or unknown one."""
        providers = list(self.model.providers)
        if not providers or self._chance(missing):
            return self._pick(self.model.deleted_providers) if (
                self.model.deleted_providers and self._chance(0.5)) else self._new_uuid()
        return self._pick(providers)

    def _resource_class(self) -> str:
        draw = self.rng.random()
        if draw < 0.75:
            return self._pick(STANDARD_CLASSES[:5])
        if draw < 0.85:
            return self._pick(STANDARD_CLASSES)
        if draw < 0.97 and self.model.custom_resource_classes:
            return self._pick(sorted(self.model.custom_resource_classes))
        return self._pick(CUSTOM_CLASSES + ["CUSTOM_NEVER_CREATED", "NOT_A_CLASS", "vcpu"])

    def _trait(self) -> str:
        draw = self.rng.random()
        if draw < 0.7:
            return self._pick(STANDARD_TRAITS)
        if draw < 0.95 and self.model.custom_traits:
            return self._pick(sorted(self.model.custom_traits))
        return self._pick(CUSTOM_TRAITS + ["CUSTOM_UNKNOWN", "NOT_A_TRAIT"])

    def _consumer(self) -> Consumer | None:
        consumers = list(self.model.consumers.values())
        return self._pick(consumers) if consumers else None

    def _inventory(self, resource_class: str) -> Inventory:
        scale = {"MEMORY_MB": 1024, "DISK_GB": 100, "NET_BW_EGR_KILOBIT_PER_SEC": 1000}.get(
            resource_class, 1)
        total = self.rng.randint(1, 16) * scale
        inventory = Inventory(total=total)
        if self._chance(0.3):
            inventory.reserved = self.rng.randint(0, total // 2)
        if self._chance(0.2):
            inventory.min_unit = self._pick([1, 2, scale])
        if self._chance(0.4):
            inventory.max_unit = self.rng.randint(max(1, total // 4), total)
        if self._chance(0.2):
            inventory.step_size = self._pick([1, 2, scale])
        if self._chance(0.3):
            inventory.allocation_ratio = self._pick([1.0, 1.5, 2.0, 16.0, 0.5])
        if self._chance(0.05):  # allowed from 1.26 only
            inventory.reserved = total
        if self._chance(0.04):
            inventory.min_unit = inventory.max_unit + 1
        return inventory

    def _inventory_fields(self, inventory: Inventory, every: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {"total": inventory.total}
        defaults = Inventory(total=inventory.total)
        for name in ("reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"):
            value = getattr(inventory, name)
            if every or value != getattr(defaults, name) or self._chance(0.2):
                fields[name] = value
        return fields

    def _generation(self, uuid: str) -> Any:
        draw = self.rng.random()
        if draw < 0.9:
            return Late("provider", uuid)
        return Late("provider", uuid, self._pick([1, -1, 7]))

    def _consumer_generation(self, uuid: str) -> Any:
        draw = self.rng.random()
        if draw < 0.85:
            return Late("consumer", uuid)
        if draw < 0.93:
            return Late("consumer", uuid, self._pick([1, 3]))
        return None

    # --- resource providers -----------------------------------------------------------

    def create_provider(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        name = self._name("rp") if self._chance(0.97) else self._pick(
            ["ünïcode rp ☃", "x" * 201, "", "a/b c"])
        body: dict[str, Any] = {"name": name}
        uuid = self._new_uuid()
        creates = None
        draw = self.rng.random()
        if draw < 0.05:
            creates = uuid = placeholder(next(self._numbers))
        elif draw < 0.08 and self.model.providers:
            uuid = self._pick(list(self.model.providers))  # taken: 409
            body["uuid"] = uuid
        else:
            body["uuid"] = uuid
        if self.model.providers and self._chance(0.03):
            body["name"] = self.model.providers[self._pick(list(self.model.providers))].name
        parent = None
        if self.model.providers and self._chance(0.45) and self._at(14):
            parent = self._provider(missing=0.05)
            body["parent_provider_uuid"] = parent
        elif self._chance(0.05) and self._at(14):
            body["parent_provider_uuid"] = None
        step = self._step("create provider", "POST", "/resource_providers",
                          "/resource_providers", version, body, creates=creates)

        def on_answer(answer: Answer) -> None:
            if answer.status in (200, 201):
                self.model.providers[uuid] = Provider(uuid, body["name"], parent)
        return step, on_answer

    def update_provider(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        current = self.model.providers.get(uuid)
        name = current.name if current and self._chance(0.3) else self._name("renamed")
        body: dict[str, Any] = {"name": name}
        parent = current.parent if current else None
        if self._at(14) and self._chance(0.6):
            draw = self.rng.random()
            others = [other for other in self.model.providers if other != uuid]
            if draw < 0.15:
                parent = None
            elif draw < 0.25:
                parent = uuid  # itself: 400
            elif draw < 0.35 and self.model.descendants(uuid):
                parent = self._pick(sorted(self.model.descendants(uuid)))  # a loop: 400
            elif others:
                parent = self._pick(others)
            body["parent_provider_uuid"] = parent
        step = self._step("update provider", "PUT", "/resource_providers/{uuid}",
                          f"/resource_providers/{uuid}", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.name = name
                provider.parent = parent
        return step, on_answer

    def delete_provider(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        leaves = [uuid for uuid in self.model.providers if not self.model.children(uuid)]
        uuid = self._pick(leaves) if leaves and self._chance(0.7) else self._provider()
        step = self._step("delete provider", "DELETE", "/resource_providers/{uuid}",
                          f"/resource_providers/{uuid}", version)

        def on_answer(answer: Answer) -> None:
            if answer.status == 204 and uuid in self.model.providers:
                del self.model.providers[uuid]
                self.model.deleted_providers.append(uuid)
        return step, on_answer

    def get_provider(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider(missing=0.1) if self._chance(0.95) else "not-a-uuid"
        return self._step("show provider", "GET", "/resource_providers/{uuid}",
                          f"/resource_providers/{uuid}", version), None

    def _member_of(self, suffix: str = "", near: list[str] | None = None,
                   ) -> list[tuple[str, str]]:
        """One or more member_of parameters: a uuid, in:, ! and !in: forms; mostly
        aggregates of the ``near`` providers when given."""
        known = self.model.aggregates_in_use() or self.aggregates
        pool = known + self.aggregates[:1]
        close = sorted({aggregate for provider in near or [] if provider in self.model.providers
                        for aggregate in self.model.providers[provider].aggregates})
        if close and self._chance(0.7):
            pool = close
        query = []
        for _ in range(1 if not self._at(24) or self._chance(0.7) else 2):
            draw = self.rng.random()
            if draw < 0.4:
                value = self._pick(pool)
            elif draw < 0.7:
                value = "in:" + ",".join(self._sample(pool, 1, 3))
            elif draw < 0.85 and self._at(32):
                value = "!" + self._pick(pool)
            elif self._at(32):
                value = "!in:" + ",".join(self._sample(pool, 1, 2))
            else:
                value = self._pick(pool)
            query.append((f"member_of{suffix}", value))
        return query

    def _required(self, suffix: str = "", name: str = "required",
                  near: list[str] | None = None) -> list[tuple[str, str]]:
        """required traits: plain, forbidden (1.22), any-of ``in:`` and repeated (1.39);
        mostly traits of the ``near`` providers when given."""
        traits = self.model.traits_in_use() + [self._trait()]
        close = sorted({trait for provider in near or [] if provider in self.model.providers
                        for trait in self.model.providers[provider].traits})
        if close and self._chance(0.7):
            traits = close
        query = []
        for _ in range(1 if not self._at(39) or self._chance(0.7) else 2):
            if self._at(39) and self._chance(0.25) and name == "required":
                query.append((name + suffix, "in:" + ",".join(self._sample(traits, 1, 3))))
                continue
            chosen = self._sample(traits, 1, 3)
            if self._at(22) and self._chance(0.3):
                chosen = [("!" + trait if self._chance(0.5) else trait) for trait in chosen]
            query.append((name + suffix, ",".join(chosen)))
        return query

    def _resources(self, resource_classes: list[str] | None = None) -> str:
        classes = resource_classes or self._sample(
            self.model.resource_classes_in_use() or ["VCPU"], 1, 3)
        return ",".join(f"{resource_class}:{self._request_amount(resource_class)}"
                        for resource_class in classes)

    def _request_amount(self, resource_class: str) -> int:
        slots = [self.model.providers[uuid].inventories[rc]
                 for uuid, rc in self.model.inventory_slots() if rc == resource_class]
        if not slots:
            return self.rng.randint(1, 4)
        inventory = self._pick(slots)
        high = max(1, min(inventory.max_unit, inventory.capacity))
        amount = self.rng.randint(1, max(1, high // 2)) if self._chance(0.85) else high + 1
        step = inventory.step_size
        return max(step, amount - amount % step) if self._chance(0.9) else amount

    def list_providers(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        query: list[tuple[str, str]] = []
        for _ in range(self._pick([0, 1, 1, 2, 3])):
            draw = self.rng.random()
            if draw < 0.12 and self.model.providers:
                name = self.model.providers[self._pick(list(self.model.providers))].name
                query.append(("name", name if self._chance(0.9) else "no-such-name"))
            elif draw < 0.2:
                query.append(("uuid", self._provider()))
            elif draw < 0.4 and self._at(3):
                query.extend(self._member_of())
            elif draw < 0.6 and self._at(4):
                query.append(("resources", self._resources()))
            elif draw < 0.75 and self._at(14):
                query.append(("in_tree", self._provider()))
            elif self._at(18):
                query.extend(self._required())
        return self._step("list providers", "GET", "/resource_providers",
                          "/resource_providers", version, query=query), None

    # --- inventories -----------------------------------------------------------

    def get_inventories(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        provider = self.model.providers.get(uuid)
        if provider and provider.inventories and self._chance(0.5):
            resource_class = self._pick(sorted(provider.inventories))
            return self._step("show inventory", "GET",
                              "/resource_providers/{uuid}/inventories/{resource_class}",
                              f"/resource_providers/{uuid}/inventories/{resource_class}",
                              version), None
        return self._step("list inventories", "GET", "/resource_providers/{uuid}/inventories",
                          f"/resource_providers/{uuid}/inventories", version), None

    def post_inventory(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        resource_class = self._resource_class()
        inventory = self._inventory(resource_class)
        body = {"resource_class": resource_class, **self._inventory_fields(inventory)}
        if self._chance(0.9):
            body["resource_provider_generation"] = self._generation(uuid)
        step = self._step("create inventory", "POST", "/resource_providers/{uuid}/inventories",
                          f"/resource_providers/{uuid}/inventories", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 201 and provider is not None:
                provider.inventories[resource_class] = inventory
        return step, on_answer

    def put_inventories(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        provider = self.model.providers.get(uuid)
        inventories: dict[str, Inventory] = {}
        if provider:
            for resource_class, inventory in provider.inventories.items():
                if self._chance(0.8):
                    inventories[resource_class] = (
                        inventory if self._chance(0.6) else self._inventory(resource_class))
        for _ in range(self._pick([0, 1, 1, 2])):
            resource_class = self._resource_class()
            inventories[resource_class] = self._inventory(resource_class)
        body = {"resource_provider_generation": self._generation(uuid),
                "inventories": {resource_class: self._inventory_fields(inventory)
                                for resource_class, inventory in inventories.items()}}
        step = self._step("replace inventories", "PUT", "/resource_providers/{uuid}/inventories",
                          f"/resource_providers/{uuid}/inventories", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.inventories = dict(inventories)
        return step, on_answer

    def put_inventory(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        stocked = [uuid for uuid, provider in self.model.providers.items() if provider.inventories]
        uuid = self._pick(stocked) if stocked and self._chance(0.9) else self._provider()
        provider = self.model.providers.get(uuid)
        if provider and provider.inventories and self._chance(0.85):
            resource_class = self._pick(sorted(provider.inventories))
        else:
            resource_class = self._resource_class()
        inventory = self._inventory(resource_class)
        body = {"resource_provider_generation": self._generation(uuid),
                **self._inventory_fields(inventory)}
        step = self._step("update inventory", "PUT",
                          "/resource_providers/{uuid}/inventories/{resource_class}",
                          f"/resource_providers/{uuid}/inventories/{resource_class}",
                          version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.inventories[resource_class] = inventory
        return step, on_answer

    def delete_inventory(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        provider = self.model.providers.get(uuid)
        resource_class = (self._pick(sorted(provider.inventories))
                          if provider and provider.inventories and self._chance(0.85)
                          else self._resource_class())
        step = self._step("delete inventory", "DELETE",
                          "/resource_providers/{uuid}/inventories/{resource_class}",
                          f"/resource_providers/{uuid}/inventories/{resource_class}", version)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 204 and provider is not None:
                provider.inventories.pop(resource_class, None)
        return step, on_answer

    def delete_inventories(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(5)
        uuid = self._provider()
        step = self._step("delete all inventories", "DELETE",
                          "/resource_providers/{uuid}/inventories",
                          f"/resource_providers/{uuid}/inventories", version)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 204 and provider is not None:
                provider.inventories.clear()
        return step, on_answer

    # --- resource classes and traits ------------------------------------------------

    def resource_class_call(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(2)
        draw = self.rng.random()
        custom = self._pick(CUSTOM_CLASSES) if self._chance(0.8) else self._pick(
            ["CUSTOM_" + "X" * 250, "CUSTOM_lower", "NOT_CUSTOM", "CUSTOM_"])
        route = "/resource_classes/{name}"
        if draw < 0.15:
            return self._step("list resource classes", "GET", "/resource_classes",
                              "/resource_classes", version), None
        if draw < 0.3:
            name = self._resource_class() if self._chance(0.7) else custom
            return self._step("show resource class", "GET", route,
                              f"/resource_classes/{name}", version), None
        if draw < 0.5:
            step = self._step("create resource class", "POST", "/resource_classes",
                              "/resource_classes", version, {"name": custom})

            def on_create(answer: Answer) -> None:
                if answer.status == 201:
                    self.model.custom_resource_classes.add(custom)
            return step, on_create
        if draw < 0.8:
            if self.minor < 7 and self._chance(0.8):
                new_name = self._pick(CUSTOM_CLASSES)
                step = self._step("rename resource class", "PUT", route,
                                  f"/resource_classes/{custom}", version, {"name": new_name})

                def on_rename(answer: Answer) -> None:
                    if answer.status == 200:
                        self.model.custom_resource_classes.discard(custom)
                        self.model.custom_resource_classes.add(new_name)
                        for provider in self.model.providers.values():
                            if custom in provider.inventories:
                                provider.inventories[new_name] = provider.inventories.pop(custom)
                return step, on_rename
            step = self._step("ensure resource class", "PUT", route,
                              f"/resource_classes/{custom}", version)

            def on_put(answer: Answer) -> None:
                if answer.status in (201, 204):
                    self.model.custom_resource_classes.add(custom)
            return step, on_put
        name = custom if self._chance(0.85) else self._pick(STANDARD_CLASSES)
        step = self._step("delete resource class", "DELETE", route,
                          f"/resource_classes/{name}", version)

        def on_delete(answer: Answer) -> None:
            if answer.status == 204:
                self.model.custom_resource_classes.discard(name)
        return step, on_delete

    def trait_call(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(6)
        draw = self.rng.random()
        custom = self._pick(CUSTOM_TRAITS) if self._chance(0.85) else self._pick(
            ["CUSTOM_" + "Y" * 260, "CUSTOM_lower", "NOT_CUSTOM"])
        route = "/traits/{name}"
        if draw < 0.3:
            query: list[tuple[str, str]] = []
            if self._chance(0.5):
                query.append(("name", self._pick([
                    "startswith:CUSTOM", "startswith:HW_CPU", "in:" + ",".join(
                        self._sample(STANDARD_TRAITS + CUSTOM_TRAITS, 1, 3)),
                    "HW_CPU_X86_AVX", "startswith:", "in:"])))
            if self._chance(0.4):
                query.append(("associated", self._pick(["true", "false", "yes", "TRUE"])))
            return self._step("list traits", "GET", "/traits", "/traits", version,
                              query=query), None
        if draw < 0.45:
            name = self._trait() if self._chance(0.7) else custom
            return self._step("show trait", "GET", route, f"/traits/{name}", version), None
        if draw < 0.8:
            step = self._step("create trait", "PUT", route, f"/traits/{custom}", version)

            def on_put(answer: Answer) -> None:
                if answer.status in (201, 204):
                    self.model.custom_traits.add(custom)
            return step, on_put
        name = custom if self._chance(0.85) else self._pick(STANDARD_TRAITS)
        step = self._step("delete trait", "DELETE", route, f"/traits/{name}", version)

        def on_delete(answer: Answer) -> None:
            if answer.status == 204:
                self.model.custom_traits.discard(name)
        return step, on_delete

    def provider_traits(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(6)
        uuid = self._provider()
        route = "/resource_providers/{uuid}/traits"
        path = f"/resource_providers/{uuid}/traits"
        draw = self.rng.random()
        if draw < 0.25:
            return self._step("list provider traits", "GET", route, path, version), None
        if draw < 0.9:
            provider = self.model.providers.get(uuid)
            traits = sorted({self._trait() for _ in range(self._pick([0, 1, 2, 3]))})
            if provider and provider.inventories and (
                    {"DISK_GB", "IPV4_ADDRESS"} & set(provider.inventories)) and self._chance(0.6):
                traits = sorted({*traits, SHARES})
            body = {"traits": traits, "resource_provider_generation": self._generation(uuid)}
            step = self._step("set provider traits", "PUT", route, path, version, body)

            def on_put(answer: Answer) -> None:
                provider = self.model.providers.get(uuid)
                if answer.status == 200 and provider is not None:
                    provider.traits = set(traits)
            return step, on_put
        step = self._step("delete provider traits", "DELETE", route, path, version)

        def on_delete(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 204 and provider is not None:
                provider.traits = set()
        return step, on_delete

    # --- aggregates -----------------------------------------------------------

    def aggregates_call(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(1)
        uuid = self._provider()
        route = "/resource_providers/{uuid}/aggregates"
        path = f"/resource_providers/{uuid}/aggregates"
        if self._chance(0.3):
            return self._step("list provider aggregates", "GET", route, path, version), None
        aggregates = self._sample(self.aggregates, 0, 3)
        if self._chance(0.03) and aggregates:
            aggregates.append(aggregates[0])  # not unique: 400
        body: Any
        # The body format of the microversion, and now and then the other one.
        generation_format = self.minor >= 19
        if self._chance(0.07):
            generation_format = not generation_format
        if generation_format:
            body = {"aggregates": aggregates}
            if self._chance(0.95):
                body["resource_provider_generation"] = self._generation(uuid)
        else:
            body = aggregates
        step = self._step("set provider aggregates", "PUT", route, path, version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.aggregates = set(aggregates)
        return step, on_answer

    # --- allocations -----------------------------------------------------------

    def _sharing_providers(self, root: str) -> list[str]:
        aggregates = self.model.providers[root].aggregates if root in self.model.providers else set()
        return [uuid for uuid, provider in self.model.providers.items()
                if SHARES in provider.traits and provider.aggregates & aggregates]

    def _allocation_amount(self, provider: str, resource_class: str, consumer: str | None) -> int:
        inventory = self.model.providers[provider].inventories[resource_class]
        mine = 0
        if consumer in self.model.consumers:
            mine = self.model.consumers[consumer].allocations.get(provider, {}).get(
                resource_class, 0)
        free = inventory.capacity - self.model.used(provider, resource_class) + mine
        high = min(inventory.max_unit, free)
        step = max(1, inventory.step_size)
        first = max(step, -(-inventory.min_unit // step) * step)  # a multiple of step_size
        choices = list(range(first, min(high, first + 3 * step) + 1, step))
        if not choices or self._chance(0.06):
            return self._pick([high + step, inventory.max_unit + 1, max(1, inventory.min_unit - 1),
                               step + 1 if step > 1 else 1])
        return self._pick(choices[:4])

    def _allocations_for(self, consumer: str | None) -> dict[str, dict[str, int]]:
        """Resources from one tree and its sharing providers, mostly within capacity."""
        slots = self.model.inventory_slots()
        if not slots:
            return {self._provider(): {self._resource_class(): 1}}
        if self._chance(0.75):
            root = self.model.root_of(self._pick(slots)[0])
            members = set(self.model.tree_of(root)) | set(self._sharing_providers(root))
            slots = [slot for slot in slots if slot[0] in members] or slots
        allocations: dict[str, dict[str, int]] = {}
        for provider, resource_class in self._sample(slots, 1, 3):
            allocations.setdefault(provider, {})[resource_class] = self._allocation_amount(
                provider, resource_class, consumer)
        if self._chance(0.03):
            allocations.setdefault(self._new_uuid(), {})["VCPU"] = 1  # unknown provider
        if self._chance(0.03):
            first = next(iter(allocations))
            allocations[first][self._resource_class()] = 1  # maybe not in its inventory
        return allocations

    def _entries(self, allocations: dict[str, dict[str, int]], list_format: bool) -> Any:
        if list_format:
            return [{"resource_provider": {"uuid": provider}, "resources": dict(resources)}
                    for provider, resources in allocations.items()]
        entries = {}
        for provider, resources in allocations.items():
            entry: dict[str, Any] = {"resources": dict(resources)}
            if self._chance(0.05):
                entry["generation"] = 0  # accepted and ignored
            entries[provider] = entry
        return entries

    def _consumer_body(self, consumer: str, allocations: dict[str, dict[str, int]],
                       project: str, user: str, consumer_type: str | None,
                       for_post: bool = False) -> dict[str, Any]:
        """One consumer's allocations in the body format of ``self.minor``."""
        list_format = (self.minor < 12) if self._chance(0.95) else self.minor >= 12
        body: dict[str, Any] = {"allocations": self._entries(allocations, list_format and not
                                                             for_post)}
        if self._at(8):
            body["project_id"] = project
            body["user_id"] = user
        if self._at(28) and self._chance(0.97):
            body["consumer_generation"] = self._consumer_generation(consumer)
        if self._at(34) and self._chance(0.15) and allocations:
            suffix = self._pick(["_GPU", "1", ""])
            body["mappings"] = {suffix: [next(iter(allocations))]}
        if self._at(38) and self._chance(0.97):
            body["consumer_type"] = consumer_type or self._pick(CONSUMER_TYPES)
        return body

    def _owner(self, consumer: Consumer | None) -> tuple[str, str]:
        if consumer is not None and self._chance(0.85):
            return consumer.project, consumer.user
        return self._pick(self.projects), self._pick(self.users)

    def _record(self, uuid: str, allocations: dict[str, dict[str, int]], body: dict[str, Any],
                ) -> None:
        if not allocations:
            self.model.consumers.pop(uuid, None)
            return
        previous = self.model.consumers.get(uuid)
        consumer_type = body.get("consumer_type") or (previous.consumer_type if previous else None)
        self.model.consumers[uuid] = Consumer(
            uuid, body.get("project_id", previous.project if previous else ""),
            body.get("user_id", previous.user if previous else ""), consumer_type,
            {provider: dict(resources) for provider, resources in allocations.items()})

    def put_allocations(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        existing = self._consumer() if self._chance(0.5) else None
        uuid = existing.uuid if existing else self._new_uuid()
        allocations = self._allocations_for(uuid)
        if existing and self._chance(0.1) and self._at(28):
            allocations = {}  # emptied: the consumer goes
        project, user = self._owner(existing)
        body = self._consumer_body(uuid, allocations, project, user,
                                   existing.consumer_type if existing else None)
        step = self._step("set allocations", "PUT", "/allocations/{consumer}",
                          f"/allocations/{uuid}", version, body)

        def on_answer(answer: Answer) -> None:
            if answer.status == 204:
                self._record(uuid, allocations, body)
        return step, on_answer

    def post_allocations(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(13)
        plan: dict[str, dict[str, dict[str, int]]] = {}
        source = self._consumer()
        draw = self.rng.random()
        if source and draw < 0.5:
            # A move: the migration consumer takes over the source's
            # allocations, and the source claims elsewhere (or nothing).
            plan[self._new_uuid()] = dict(source.allocations)
            plan[source.uuid] = self._allocations_for(source.uuid) if self._chance(0.7) else {}
        elif source and draw < 0.65:
            plan[source.uuid] = {}
        else:
            for _ in range(self._pick([1, 2])):
                plan[self._new_uuid()] = self._allocations_for(None)
        bodies = {}
        for uuid, allocations in plan.items():
            consumer = self.model.consumers.get(uuid)
            project, user = self._owner(consumer or source)
            bodies[uuid] = self._consumer_body(
                uuid, allocations, project, user,
                consumer.consumer_type if consumer else "MIGRATION", for_post=True)
        step = self._step("set allocations of several consumers", "POST", "/allocations",
                          "/allocations", version, bodies)

        def on_answer(answer: Answer) -> None:
            if answer.status == 204:
                for uuid, allocations in plan.items():
                    self._record(uuid, allocations, bodies[uuid])
        return step, on_answer

    def delete_allocations(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        consumer = self._consumer()
        uuid = consumer.uuid if consumer and self._chance(0.85) else self._new_uuid()
        step = self._step("delete allocations", "DELETE", "/allocations/{consumer}",
                          f"/allocations/{uuid}", version)

        def on_answer(answer: Answer) -> None:
            if answer.status == 204:
                self.model.consumers.pop(uuid, None)
        return step, on_answer

    def get_allocations(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        if self._chance(0.5):
            consumer = self._consumer()
            uuid = consumer.uuid if consumer and self._chance(0.85) else self._new_uuid()
            return self._step("show consumer allocations", "GET", "/allocations/{consumer}",
                              f"/allocations/{uuid}", version), None
        uuid = self._provider()
        return self._step("list provider allocations", "GET",
                          "/resource_providers/{uuid}/allocations",
                          f"/resource_providers/{uuid}/allocations", version), None

    def usages(self) -> tuple[Step, OnAnswer | None]:
        version = self._version(9)
        if self._chance(0.4):
            uuid = self._provider()
            return self._step("provider usages", "GET", "/resource_providers/{uuid}/usages",
                              f"/resource_providers/{uuid}/usages", version), None
        query: list[tuple[str, str]] = []
        consumer = self._consumer()
        project = consumer.project if consumer and self._chance(0.7) else self._pick(self.projects)
        if self._chance(0.95):
            query.append(("project_id", project))
        if self._chance(0.4):
            query.append(("user_id", consumer.user if consumer and self._chance(0.7)
                          else self._pick(self.users)))
        if self._at(38) and self._chance(0.5):
            query.append(("consumer_type", self._pick(
                CONSUMER_TYPES + ["all", "unknown", "ALL", "lower"])))
        # A project's reader may read its usages (and only its own).
        caller = self._pick(["admin", "admin", f"reader:{project}", f"reader:{self.projects[0]}"])
        return self._step("project usages", "GET", "/usages", "/usages", version,
                          query=query, caller=caller), None

    # --- reshaper -----------------------------------------------------------

    def reshape(self) -> tuple[Step, OnAnswer | None]:
        """Move one inventory from a provider to its child, allocations with it."""
        version = self._version(30)
        moves = [(uuid, resource_class, child)
                 for uuid, resource_class in self.model.inventory_slots()
                 for child in self.model.children(uuid)
                 if resource_class not in self.model.providers[child].inventories]
        inventories: dict[str, dict[str, Inventory]] = {}
        plan: dict[str, dict[str, dict[str, int]]] = {}
        if moves:
            source, resource_class, child = self._pick(moves)
            source_inventories = dict(self.model.providers[source].inventories)
            moved = source_inventories.pop(resource_class)
            inventories[source] = source_inventories
            inventories[child] = {**self.model.providers[child].inventories,
                                  resource_class: moved}
            for consumer in self.model.consumers.values():
                amount = consumer.allocations.get(source, {}).get(resource_class)
                if amount is None:
                    continue
                allocations = {provider: dict(resources)
                               for provider, resources in consumer.allocations.items()}
                del allocations[source][resource_class]
                if not allocations[source]:
                    del allocations[source]
                allocations.setdefault(child, {})[resource_class] = amount
                plan[consumer.uuid] = allocations
        else:
            uuid = self._provider()
            provider = self.model.providers.get(uuid)
            inventories[uuid] = dict(provider.inventories) if provider else {}
        body: dict[str, Any] = {
            "inventories": {
                uuid: {"resource_provider_generation": self._generation(uuid),
                       "inventories": {resource_class: self._inventory_fields(inventory, True)
                                       for resource_class, inventory in provided.items()}}
                for uuid, provided in inventories.items()},
            "allocations": {},
        }
        for uuid, allocations in plan.items():
            consumer = self.model.consumers[uuid]
            entry: dict[str, Any] = {
                "allocations": {provider: {"resources": resources}
                                for provider, resources in allocations.items()},
                "project_id": consumer.project, "user_id": consumer.user,
                "consumer_generation": self._consumer_generation(uuid)}
            if self._at(38) and self._chance(0.95):
                entry["consumer_type"] = consumer.consumer_type or "INSTANCE"
            body["allocations"][uuid] = entry
        # Reshaping is for services only (upstream's default policy: role:service).
        step = self._step("reshape", "POST", "/reshaper", "/reshaper", version, body,
                          caller="service")

        def on_answer(answer: Answer) -> None:
            if answer.status != 204:
                return
            for uuid, provided in inventories.items():
                if uuid in self.model.providers:
                    self.model.providers[uuid].inventories = dict(provided)
            for uuid, allocations in plan.items():
                self._record(uuid, allocations, body["allocations"][uuid])
        return step, on_answer

    # --- allocation candidates --------------------------------------------------------

    def allocation_candidates(self) -> tuple[Step, OnAnswer | None]:
        """Mostly a request one tree (with its sharing providers) can satisfy:
        amounts it has free, its traits and aggregates; sometimes anything."""
        version = self._version(10)
        query: list[tuple[str, str]] = []
        stocked = [uuid for uuid, provider in self.model.providers.items() if provider.inventories]
        if not stocked or self._chance(0.1):
            query.append(("resources", self._resources()))
            return self._step("allocation candidates", "GET", "/allocation_candidates",
                              "/allocation_candidates", version, query=query), None
        target = self._pick(stocked)
        root = self.model.root_of(target)
        tree = self.model.tree_of(root)
        near = tree + self._sharing_providers(root)
        suffixes = ["_A", "_NET", "1", "-x", "2"] if self._at(33) else ["1", "2", "3"]
        groups: dict[str, dict[str, int]] = {}
        # Granular groups: each satisfied by one provider of the tree.
        if self._at(25) and self._chance(0.5):
            for suffix in self._sample(suffixes, 1, 3):
                members = [uuid for uuid in tree if self.model.providers[uuid].inventories]
                provider = self._pick(members) if members else target
                classes = self._sample(sorted(self.model.providers[provider].inventories), 1, 2)
                groups[suffix] = {resource_class: self._allocation_amount(
                    provider, resource_class, None) for resource_class in classes}
        # The unnumbered group: anywhere in the tree or its sharing providers.
        if not groups or self._chance(0.6):
            slots = [slot for slot in self.model.inventory_slots() if slot[0] in near]
            chosen = {}
            for provider, resource_class in self._sample(slots, 1, 3):
                chosen.setdefault(resource_class, self._allocation_amount(
                    provider, resource_class, None))
            groups[""] = chosen
        if self._chance(0.04):
            groups.setdefault("", {})[self._resource_class()] = 1
        for suffix, resources in groups.items():
            query.append((f"resources{suffix}", ",".join(
                f"{resource_class}:{amount}" for resource_class, amount in resources.items())))
            if self._at(17) and self._chance(0.3):
                query.extend(self._required(suffix, near=near))
            if self._at(21) and self._chance(0.25):
                query.extend(self._member_of(suffix, near=near))
            if self._at(31) and self._chance(0.15):
                query.append((f"in_tree{suffix}", self._pick([root, root, target,
                                                              self._provider()])))
        numbered = [suffix for suffix in groups if suffix]
        if self._at(36) and numbered and self._chance(0.3):
            subtree = self._sample(numbered, 1, 2)
            if self._chance(0.4):
                resourceless = self._pick(["_ROOT", "_NIC"])
                query.extend(self._required(resourceless, near=near))
                subtree.append(resourceless)
            query.append(("same_subtree", ",".join(subtree)))
        if (len(numbered) > 1 and self._chance(0.9)) or self._chance(0.05):
            query.append(("group_policy", self._pick(["none", "isolate", "isolate", "bogus"])))
        if self._at(35) and self._chance(0.15):
            query.extend(self._required(name="root_required", near=[root]))
        if self._at(16) and self._chance(0.35):
            query.append(("limit", self._pick(["1", "2", "3", "10", "0", "-1", "x"])))
        self.rng.shuffle(query)
        return self._step("allocation candidates", "GET", "/allocation_candidates",
                          "/allocation_candidates", version, query=query), None

    # --- whole hosts -----------------------------------------------------------

    def build_host(self) -> tuple[Step, OnAnswer | None]:
        """A compute node as a driver reports one, over a few steps: the root,
        its inventory, maybe NUMA or device children, traits and aggregates.

        ::

            host: VCPU, MEMORY_MB, DISK_GB; HW_CPU_X86_* traits; aggregates
              +-- (maybe) numa: VCPU, MEMORY_MB          HW_NUMA_ROOT
              +-- (maybe) device: SRIOV_NET_VF or VGPU   CUSTOM_PHYSNET_* or none
        """
        root = self._new_uuid()
        host = {"VCPU": Inventory(self._pick([8, 16, 32]), allocation_ratio=self._pick([1.0, 16.0])),
                "MEMORY_MB": Inventory(self._pick([8192, 16384]), max_unit=8192),
                "DISK_GB": Inventory(self._pick([100, 500]), reserved=self._pick([0, 10]))}
        if self._chance(0.3):
            host.pop("DISK_GB")  # its disk comes from a sharing provider
        self._plan.append(lambda: self._planned_inventories(root, host))
        self._plan.append(lambda: self._planned_traits(root, self._sample(STANDARD_TRAITS[:3], 1, 2)))
        self._plan.append(lambda: self._planned_aggregates(root, self._sample(self.aggregates, 0, 2)))
        for _ in range(self._pick([0, 0, 1, 2])):
            child = self._new_uuid()
            if self._chance(0.5):
                inventories = {"VCPU": Inventory(8), "MEMORY_MB": Inventory(4096)}
                traits = ["HW_NUMA_ROOT"]
            else:
                inventories = {self._pick(["SRIOV_NET_VF", "VGPU"]): Inventory(self._pick([4, 8]))}
                traits = self._sample(["CUSTOM_PHYSNET_A", "CUSTOM_PHYSNET_B", "HW_NIC_SRIOV"], 0, 1)
            self._plan.append(lambda child=child: self._planned_provider(child, root))
            self._plan.append(lambda child=child, inventories=inventories:
                              self._planned_inventories(child, inventories))
            if traits:
                self._plan.append(lambda child=child, traits=traits: self._planned_traits(child, traits))
        return self._planned_provider(root, None)

    def build_sharing_provider(self) -> tuple[Step, OnAnswer | None]:
        """A shared storage (or address) pool in one or two aggregates."""
        uuid = self._new_uuid()
        resource_class = self._pick(["DISK_GB", "DISK_GB", "IPV4_ADDRESS"])
        inventory = Inventory(self._pick([1000, 2000]) if resource_class == "DISK_GB" else 64)
        self._plan.append(lambda: self._planned_inventories(uuid, {resource_class: inventory}))
        self._plan.append(lambda: self._planned_traits(uuid, [SHARES]))
        self._plan.append(lambda: self._planned_aggregates(uuid, self._sample(self.aggregates, 1, 2)))
        return self._planned_provider(uuid, None)

    def _planned_provider(self, uuid: str, parent: str | None) -> tuple[Step, OnAnswer | None]:
        version = self._version(14 if parent else 0)
        name = self._name("host" if parent is None else "device")
        body: dict[str, Any] = {"name": name, "uuid": uuid}
        if parent is not None:
            body["parent_provider_uuid"] = parent
        step = self._step("create provider", "POST", "/resource_providers",
                          "/resource_providers", version, body)

        def on_answer(answer: Answer) -> None:
            if answer.status in (200, 201):
                self.model.providers[uuid] = Provider(uuid, name, parent)
        return step, on_answer

    def _planned_inventories(self, uuid: str, inventories: dict[str, Inventory],
                             ) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        body = {"resource_provider_generation": self._generation(uuid),
                "inventories": {resource_class: self._inventory_fields(inventory)
                                for resource_class, inventory in inventories.items()}}
        step = self._step("replace inventories", "PUT", "/resource_providers/{uuid}/inventories",
                          f"/resource_providers/{uuid}/inventories", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.inventories = dict(inventories)
        return step, on_answer

    def _planned_traits(self, uuid: str, traits: list[str]) -> tuple[Step, OnAnswer | None]:
        version = self._version(6)
        body = {"traits": sorted(traits), "resource_provider_generation": self._generation(uuid)}
        step = self._step("set provider traits", "PUT", "/resource_providers/{uuid}/traits",
                          f"/resource_providers/{uuid}/traits", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.traits = set(traits)
        return step, on_answer

    def _planned_aggregates(self, uuid: str, aggregates: list[str]) -> tuple[Step, OnAnswer | None]:
        version = self._version(1)
        body: Any = aggregates
        if self.minor >= 19:
            body = {"aggregates": aggregates, "resource_provider_generation": self._generation(uuid)}
        step = self._step("set provider aggregates", "PUT", "/resource_providers/{uuid}/aggregates",
                          f"/resource_providers/{uuid}/aggregates", version, body)

        def on_answer(answer: Answer) -> None:
            provider = self.model.providers.get(uuid)
            if answer.status == 200 and provider is not None:
                provider.aggregates = set(aggregates)
        return step, on_answer

    # --- everything else -----------------------------------------------------------

    def miscellany(self) -> tuple[Step, OnAnswer | None]:
        version = self._version()
        uuid = self._provider()
        method, route, path = self._pick([
            ("GET", "/", "/"),
            ("GET", "/", "/"),
            ("DELETE", "/resource_providers", "/resource_providers"),
            ("PATCH", "/resource_providers/{uuid}", f"/resource_providers/{uuid}"),
            ("GET", "/allocations", "/allocations"),
            ("POST", "/traits/{name}", "/traits/CUSTOM_FOO"),
            ("GET", "(unknown)", f"/resource_providers/{uuid}/nothing"),
            ("GET", "(unknown)", "/resource_providers/"),
            ("GET", "(unknown)", "/nowhere"),
            ("PUT", "/usages", "/usages"),
        ])
        return self._step("miscellany", method, route, path, version), None


_MISSING = object()


def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value inside ``value`` (Late values count as leaves)."""
    paths: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            paths.append(prefix + (key,))
            paths.extend(_json_paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths.append(prefix + (index,))
            paths.extend(_json_paths(item, prefix + (index,)))
    return paths


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced (or removed: _MISSING)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if rest:
            copy[head] = _replaced(value.get(head), rest, new)
        elif new is _MISSING:
            copy.pop(head, None)
        else:
            copy[head] = new
        return copy
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        copy_list = list(value)
        if rest:
            copy_list[head] = _replaced(value[head], rest, new)
        elif new is _MISSING:
            del copy_list[head]
        else:
            copy_list[head] = new
        return copy_list
    return value
