"""openstacksdk's placement proxy against a served Stowage, on its parsed objects.

A session as an SDK user writes it: ``openstack.connect`` with noauth2's
admin token and the placement endpoint, then resource classes, providers,
inventories, traits, aggregates, allocations, usages and candidates through
``connection.placement``. Each test builds what it needs under fresh names,
so the tests share the module's service without depending on each other.
The SDK picks each call's microversion itself (the newest its resource class
knows, up to Stowage's 1.39), as it does against upstream.
"""

from __future__ import annotations

import uuid

import openstack
import pytest
from openstack import exceptions

from tests.clients.served import ServedStowage


@pytest.fixture(scope="module")
def placement(served_stowage: ServedStowage):
    """``connection.placement`` of an SDK connection to the module's service."""
    connection = openstack.connect(
        auth_type="admin_token",
        auth={"endpoint": served_stowage.endpoint, "token": served_stowage.token},
        placement_endpoint_override=served_stowage.endpoint,
    )
    yield connection.placement
    connection.close()


def fresh_name(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fresh_custom_name(prefix: str) -> str:
    return f"CUSTOM_{prefix}_{uuid.uuid4().hex[:12].upper()}"


def test_the_sdk_reaches_placement_through_version_discovery(placement):
    assert placement.get_endpoint().rstrip("/") == placement.endpoint_override.rstrip("/")
    assert placement.get_api_major_version() == (1, 0)


def test_custom_resource_classes_are_created_listed_fetched_and_deleted(placement):
    name = fresh_custom_name("GOLD")

    created = placement.create_resource_class(name=name)
    assert created.name == name
    assert placement.get_resource_class(name).name == name

    names = {resource_class.name for resource_class in placement.resource_classes()}
    assert {name, "VCPU", "MEMORY_MB", "DISK_GB"} <= names

    placement.delete_resource_class(name, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        placement.get_resource_class(name)


def test_a_standard_resource_class_cannot_be_deleted(placement):
    with pytest.raises(exceptions.BadRequestException):
        placement.delete_resource_class("VCPU", ignore_missing=False)


def test_a_provider_is_created_fetched_renamed_and_deleted(placement):
    name = fresh_name("compute")

    provider = placement.create_resource_provider(name=name)
    assert provider.name == name
    assert provider.generation == 0
    assert provider.root_provider_id == provider.id
    assert provider.parent_provider_id is None
    assert {link["rel"] for link in provider.links} >= {
        "self",
        "inventories",
        "usages",
        "aggregates",
        "traits",
    }

    fetched = placement.get_resource_provider(provider.id)
    assert (fetched.id, fetched.name, fetched.generation) == (provider.id, name, 0)

    renamed = placement.update_resource_provider(provider, name=name + "-renamed")
    assert renamed.name == name + "-renamed"
    assert placement.get_resource_provider(provider.id).name == name + "-renamed"
    assert (
        placement.find_resource_provider(name + "-renamed", ignore_missing=False).id == provider.id
    )

    placement.delete_resource_provider(provider, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        placement.get_resource_provider(provider.id)
    with pytest.raises(exceptions.NotFoundException):
        placement.find_resource_provider(name + "-renamed", ignore_missing=False)


def test_a_provider_created_with_a_chosen_uuid_keeps_it(placement):
    chosen = str(uuid.uuid4())
    provider = placement.create_resource_provider(name=fresh_name(), uuid=chosen)
    assert provider.id == chosen
    assert placement.get_resource_provider(chosen).id == chosen
    placement.delete_resource_provider(chosen, ignore_missing=False)


def test_a_duplicate_provider_name_is_a_conflict(placement):
    name = fresh_name()
    provider = placement.create_resource_provider(name=name)
    with pytest.raises(exceptions.ConflictException):
        placement.create_resource_provider(name=name)
    placement.delete_resource_provider(provider)


def test_child_providers_form_a_tree_that_lists_by_in_tree(placement):
    root = placement.create_resource_provider(name=fresh_name("root"))
    child = placement.create_resource_provider(
        name=fresh_name("child"), parent_provider_uuid=root.id
    )
    assert child.parent_provider_id == root.id
    assert child.root_provider_id == root.id

    in_tree = {provider.id for provider in placement.resource_providers(in_tree=child.id)}
    assert in_tree == {root.id, child.id}

    with pytest.raises(exceptions.ConflictException):
        placement.delete_resource_provider(root, ignore_missing=False)
    placement.delete_resource_provider(child, ignore_missing=False)
    placement.delete_resource_provider(root, ignore_missing=False)


def test_inventories_are_created_updated_replaced_and_deleted_with_generations(placement):
    provider = placement.create_resource_provider(name=fresh_name())

    vcpu = placement.create_resource_provider_inventory(
        provider, "VCPU", total=8, allocation_ratio=4.0
    )
    assert (vcpu.resource_class, vcpu.total, vcpu.allocation_ratio) == ("VCPU", 8, 4.0)
    assert (vcpu.reserved, vcpu.min_unit, vcpu.step_size) == (0, 1, 1)
    assert vcpu.resource_provider_generation == 1

    memory = placement.create_resource_provider_inventory(
        provider, "MEMORY_MB", total=16384, reserved=512, max_unit=8192
    )
    assert (memory.total, memory.reserved, memory.max_unit) == (16384, 512, 8192)
    assert memory.resource_provider_generation == 2

    listed = {
        inventory.resource_class: inventory
        for inventory in placement.resource_provider_inventories(provider)
    }
    assert set(listed) == {"VCPU", "MEMORY_MB"}
    assert listed["VCPU"].resource_provider_generation == 2

    fetched = placement.get_resource_provider_inventory("VCPU", resource_provider=provider)
    assert (fetched.total, fetched.allocation_ratio) == (8, 4.0)

    assert fetched.resource_provider_generation == 2

    # The proxy sends the generation it is given, not the fetched one.
    updated = placement.update_resource_provider_inventory(
        fetched, total=16, resource_provider_generation=fetched.resource_provider_generation
    )
    assert updated.total == 16
    assert updated.resource_provider_generation == 3

    with pytest.raises(exceptions.ConflictException):
        placement.update_resource_provider_inventory(
            "MEMORY_MB", provider, total=1024, resource_provider_generation=1
        )

    replaced = placement.set_resource_provider_inventories(
        provider,
        {"DISK_GB": {"total": 500, "reserved": 10}, "VCPU": {"total": 4}},
        resource_provider_generation=3,
    )
    assert replaced.generation == 4
    listed = {
        inventory.resource_class: inventory
        for inventory in placement.resource_provider_inventories(provider)
    }
    assert {name: inventory.total for name, inventory in listed.items()} == {
        "DISK_GB": 500,
        "VCPU": 4,
    }
    assert listed["DISK_GB"].reserved == 10

    placement.delete_resource_provider_inventory(
        "DISK_GB", resource_provider=provider, ignore_missing=False
    )
    assert [
        inventory.resource_class for inventory in placement.resource_provider_inventories(provider)
    ] == ["VCPU"]

    placement.delete_resource_provider_inventories(provider)
    assert list(placement.resource_provider_inventories(provider)) == []
    assert placement.get_resource_provider(provider.id).generation == 6
    placement.delete_resource_provider(provider)


def test_traits_are_created_set_on_a_provider_listed_and_deleted(placement):
    trait_name = fresh_custom_name("FAST")
    provider = placement.create_resource_provider(name=fresh_name())

    assert placement.create_trait(trait_name).name == trait_name
    # GET /traits/{name} answers 204 with no body: the name is the id.
    assert placement.get_trait(trait_name).id == trait_name
    assert [trait.name for trait in placement.traits(name=f"startswith:{trait_name}")] == [
        trait_name
    ]
    assert "HW_CPU_X86_AVX2" in {
        trait.name for trait in placement.traits(name="startswith:HW_CPU_X86")
    }

    provider_traits = placement.get_resource_provider_trait(provider)
    assert provider_traits.traits == []
    assert provider_traits.resource_provider_generation == 0

    provider_traits = placement.set_resource_provider_trait(
        provider_traits, traits=[trait_name, "HW_CPU_X86_AVX2"]
    )
    assert sorted(provider_traits.traits) == sorted([trait_name, "HW_CPU_X86_AVX2"])
    assert provider_traits.resource_provider_generation == 1

    fetched = placement.get_resource_provider_trait(provider)
    assert sorted(fetched.traits) == sorted([trait_name, "HW_CPU_X86_AVX2"])
    assert [found.id for found in placement.resource_providers(required=trait_name)] == [
        provider.id
    ]
    assert [trait.name for trait in placement.traits(name=f"in:{trait_name}", associated=True)] == [
        trait_name
    ]

    with pytest.raises(exceptions.ConflictException):
        placement.delete_trait(trait_name, ignore_missing=False)

    placement.delete_resource_provider_trait(provider, ignore_missing=False)
    emptied = placement.get_resource_provider_trait(provider)
    assert emptied.traits == []
    assert emptied.resource_provider_generation == 2

    placement.delete_trait(trait_name, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        placement.get_trait(trait_name)
    placement.delete_resource_provider(provider)


def test_aggregates_are_set_fetched_and_filter_providers(placement):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    provider = placement.create_resource_provider(name=fresh_name())
    other = placement.create_resource_provider(name=fresh_name())

    assert placement.fetch_resource_provider_aggregates(provider).aggregates == []

    updated = placement.set_resource_provider_aggregates(provider, first, second)
    assert sorted(updated.aggregates) == sorted([first, second])
    # openstacksdk 4.22 files the new generation under another key, so the
    # provider's generation is read back.
    assert placement.get_resource_provider(provider.id).generation == 1

    fetched = placement.fetch_resource_provider_aggregates(provider.id)
    assert sorted(fetched.aggregates) == sorted([first, second])
    assert fetched.generation == 1

    placement.set_resource_provider_aggregates(other, second)
    assert {found.id for found in placement.resource_providers(member_of=first)} == {provider.id}
    assert {
        found.id for found in placement.resource_providers(member_of=f"in:{first},{second}")
    } == {
        provider.id,
        other.id,
    }

    cleared = placement.set_resource_provider_aggregates(fetched)
    assert cleared.aggregates == []
    assert placement.fetch_resource_provider_aggregates(provider).generation == 2
    placement.delete_resource_provider(provider)
    placement.delete_resource_provider(other)


def test_providers_list_by_name_and_by_capacity(placement):
    big = placement.create_resource_provider(name=fresh_name("big"))
    small = placement.create_resource_provider(name=fresh_name("small"))
    placement.create_resource_provider_inventory(big, "VCPU", total=32)
    placement.create_resource_provider_inventory(small, "VCPU", total=2)

    assert [found.id for found in placement.resource_providers(name=big.name)] == [big.id]
    assert [found.id for found in placement.resource_providers(uuid=small.id)] == [small.id]
    with_capacity = {found.id for found in placement.resource_providers(resources="VCPU:16")}
    assert big.id in with_capacity
    assert small.id not in with_capacity
    placement.delete_resource_provider(big)
    placement.delete_resource_provider(small)


def test_allocations_are_written_read_counted_in_usages_and_deleted(placement):
    project, user = str(uuid.uuid4()), str(uuid.uuid4())
    instance, migration = str(uuid.uuid4()), str(uuid.uuid4())
    compute = placement.create_resource_provider(name=fresh_name("compute"))
    placement.set_resource_provider_inventories(
        compute,
        {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 8192}, "DISK_GB": {"total": 100}},
        resource_provider_generation=0,
    )

    placement.update_allocation(
        instance,
        allocations={compute.id: {"resources": {"VCPU": 2, "MEMORY_MB": 2048}}},
        project_id=project,
        user_id=user,
        consumer_generation=None,
        consumer_type="INSTANCE",
    )
    allocation = placement.get_allocation(instance)
    assert allocation.allocations[compute.id]["resources"] == {"VCPU": 2, "MEMORY_MB": 2048}
    assert allocation.allocations[compute.id]["generation"] == 2
    assert (allocation.project_id, allocation.user_id) == (project, user)
    assert allocation.consumer_generation == 1
    assert allocation.consumer_type == "INSTANCE"

    with pytest.raises(exceptions.ConflictException):
        placement.update_allocation(
            instance,
            allocations={compute.id: {"resources": {"VCPU": 1}}},
            project_id=project,
            user_id=user,
            consumer_generation=0,
            consumer_type="INSTANCE",
        )

    placement.create_allocations(
        {
            migration: {
                "allocations": {compute.id: {"resources": {"DISK_GB": 10}}},
                "project_id": project,
                "user_id": user,
                "consumer_generation": None,
                "consumer_type": "MIGRATION",
            }
        }
    )
    by_consumer = {
        held.consumer_id: held.resources
        for held in placement.resource_provider_allocations(compute)
    }
    assert by_consumer == {instance: {"VCPU": 2, "MEMORY_MB": 2048}, migration: {"DISK_GB": 10}}

    assert placement.fetch_resource_provider_usages(compute).usages == {
        "VCPU": 2,
        "MEMORY_MB": 2048,
        "DISK_GB": 10,
    }
    usages = {usage.consumer_type: usage for usage in placement.usages(project)}
    assert set(usages) == {"INSTANCE", "MIGRATION"}
    assert (usages["INSTANCE"].consumer_count, usages["INSTANCE"].resources) == (
        1,
        {"VCPU": 2, "MEMORY_MB": 2048},
    )
    assert (usages["MIGRATION"].consumer_count, usages["MIGRATION"].resources) == (
        1,
        {"DISK_GB": 10},
    )
    assert [usage.resources for usage in placement.usages(project, consumer_type="MIGRATION")] == [
        {"DISK_GB": 10}
    ]

    with pytest.raises(exceptions.ConflictException):
        placement.delete_resource_provider_inventories(compute)

    placement.delete_allocation(instance)
    placement.delete_allocation(migration)
    with pytest.raises(exceptions.NotFoundException):
        placement.delete_allocation(instance, ignore_missing=False)
    assert placement.fetch_resource_provider_usages(compute).usages == {
        "VCPU": 0,
        "MEMORY_MB": 0,
        "DISK_GB": 0,
    }
    placement.delete_resource_provider(compute)


def test_allocation_candidates_name_the_providers_that_fit(placement):
    trait_name = fresh_custom_name("SSD")
    placement.create_trait(trait_name)
    root = placement.create_resource_provider(name=fresh_name("host"))
    disk = placement.create_resource_provider(name=fresh_name("disk"), parent_provider_uuid=root.id)
    placement.set_resource_provider_inventories(
        root, {"VCPU": {"total": 4}}, resource_provider_generation=0
    )
    placement.set_resource_provider_inventories(
        disk, {"DISK_GB": {"total": 200}}, resource_provider_generation=0
    )
    disk_traits = placement.get_resource_provider_trait(disk)
    placement.set_resource_provider_trait(disk_traits, traits=[trait_name])

    candidates = list(
        placement.allocation_candidates(
            resources="VCPU:2",
            resources1="DISK_GB:50",
            required1=trait_name,
            in_tree=root.id,
        )
    )
    assert len(candidates) == 1
    [candidate] = candidates
    assert candidate.allocations == {
        root.id: {"resources": {"VCPU": 2}},
        disk.id: {"resources": {"DISK_GB": 50}},
    }
    assert candidate.mappings == {"": [root.id], "1": [disk.id]}
    assert set(candidate.provider_summaries) == {root.id, disk.id}
    disk_summary = candidate.provider_summaries[disk.id]
    assert disk_summary["resources"] == {"DISK_GB": {"capacity": 200, "used": 0}}
    assert disk_summary["traits"] == [trait_name]
    assert (disk_summary["parent_provider_uuid"], disk_summary["root_provider_uuid"]) == (
        root.id,
        root.id,
    )

    assert list(placement.allocation_candidates(resources="VCPU:5", in_tree=root.id)) == []

    placement.delete_resource_provider(disk)
    placement.delete_resource_provider(root)
    placement.delete_trait(trait_name)
