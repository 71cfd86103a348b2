"""The capacity rules of allocation writes, table-driven on tiny snapshots.

Every case is one provider (id 1) with one inventory of VCPU (class id 0)::

    total 8, reserved 2, min_unit 1, max_unit 4, step_size 1, ratio 1.0
    capacity = (8 - 2) * 1.0 = 6
"""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowage import errors
from stowage.domain.allocations import WantedAllocation, check_fits
from stowage.storage.allocations import InventoryUsage

PROVIDER_ID, VCPU_ID, DISK_ID = 1, 0, 2
PROVIDER_UUID = "aaaaaaaa-0000-4000-8000-000000000001"
VCPU = InventoryUsage(
    provider_id=PROVIDER_ID,
    resource_class_id=VCPU_ID,
    resource_class="VCPU",
    total=8,
    reserved=2,
    min_unit=1,
    max_unit=4,
    step_size=1,
    allocation_ratio=1.0,
    used=0,
    used_by_writers=0,
)


def wanted(amount: int, consumer_id: int = 1, class_id: int = VCPU_ID, name: str = "VCPU") -> WantedAllocation:
    return WantedAllocation(consumer_id, PROVIDER_ID, PROVIDER_UUID, class_id, name, amount)


def inventory(others: int = 0, writers: int = 0, **changes) -> dict:
    """VCPU with ``others`` used by consumers the write leaves alone and
    ``writers`` by those it replaces."""
    record = dataclasses.replace(VCPU, used=others + writers, used_by_writers=writers, **changes)
    return {(record.provider_id, record.resource_class): record}


@pytest.mark.parametrize(
    "allocations, snapshot, outcome",
    [
        ([wanted(4)], inventory(), None),
        ([wanted(4), wanted(2, consumer_id=2)], inventory(), None),
        ([wanted(2)], inventory(others=4), None),
        ([wanted(3)], inventory(others=4), errors.CapacityExceeded),
        ([wanted(4), wanted(3, consumer_id=2)], inventory(), errors.CapacityExceeded),
        ([wanted(5)], inventory(), errors.AllocationConstraintsViolated),
        ([wanted(1)], inventory(min_unit=2), errors.AllocationConstraintsViolated),
        ([wanted(3)], inventory(step_size=2), errors.AllocationConstraintsViolated),
        ([wanted(4)], inventory(step_size=2), None),
        ([wanted(4), wanted(4, consumer_id=2)], inventory(allocation_ratio=2.0), None),
        ([wanted(1)], inventory(reserved=8), errors.CapacityExceeded),
        ([wanted(1, class_id=DISK_ID, name="DISK_GB")], inventory(), errors.NoInventoryForAllocation),
        ([wanted(1)], {}, errors.NoInventoryForAllocation),
        # Already over capacity (the inventory shrank): shrinking is fine,
        # staying level is fine, growing is not.
        ([wanted(2)], inventory(others=6, writers=3), None),
        ([wanted(3)], inventory(others=6, writers=3), None),
        ([wanted(4)], inventory(others=6, writers=3), errors.CapacityExceeded),
        ([], {}, None),
    ],
    ids=[
        "fits exactly up to max_unit",
        "two consumers add up to capacity",
        "fits next to others",
        "others leave too little",
        "two consumers add up past capacity",
        "above max_unit",
        "below min_unit",
        "not a multiple of step_size",
        "a multiple of step_size",
        "allocation ratio doubles capacity",
        "everything reserved",
        "class without inventory",
        "provider without inventory",
        "over capacity and shrinking",
        "over capacity and level",
        "over capacity and growing",
        "nothing wanted",
    ],
)
def test_check_fits(allocations, snapshot, outcome):
    if outcome is None:
        check_fits(allocations, snapshot)
    else:
        with pytest.raises(outcome):
            check_fits(allocations, snapshot)


def test_the_message_names_the_class_and_provider():
    with pytest.raises(errors.CapacityExceeded) as raised:
        check_fits([wanted(3)], inventory(others=4))
    assert raised.value.detail == (
        f"Unable to allocate inventory: Unable to create allocation for 'VCPU' on resource "
        f"provider '{PROVIDER_UUID}'. The requested amount would exceed the capacity."
    )
    assert raised.value.status == 409


@given(
    used=st.integers(0, 10),
    amounts=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_new_consumers_are_never_accepted_past_capacity(used, amounts):
    """Whatever others already use (even past capacity), new claims must fit."""
    allocations = [wanted(amount, consumer_id=index) for index, amount in enumerate(amounts)]
    try:
        check_fits(allocations, inventory(others=used))
    except errors.AllocationDoesNotFit:
        return
    assert used + sum(amounts) <= VCPU.capacity
