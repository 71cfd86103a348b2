"""The SQL prefilter of GET /resource_providers?resources= applies the fit
rules of ``stowage.rules`` exactly: capacity, min_unit, max_unit and step_size.

Forty providers with assorted VCPU inventories (fractional ratios among
them) and usage; for every amount from 1 to 12 the providers listed must be
exactly those the rules let take that amount.
"""
from __future__ import annotations

import random
import uuid

import pytest

from stowage import rules
from stowage.api.app import create_app
from tests.support import Client, test_conf

RATIOS = (1.0, 1.5, 0.7, 16.0, 1.3333, 2.25)


@pytest.mark.parametrize("engine", ["reference", "fast"])  # SQL, and the read model
def test_listing_by_resources_lists_exactly_the_providers_the_fit_rules_admit(database, engine):
    client = Client(create_app(test_conf(stowage={"candidate_engine": engine}), database))
    chooser = random.Random(7)
    inventories: dict[str, tuple[int, int, int, int, int, float, int]] = {}
    for number in range(40):
        provider = str(uuid.uuid4())
        assert client.post("/resource_providers", {"uuid": provider, "name": f"p{number}"}).status == 200
        total = chooser.randint(1, 10)
        reserved = chooser.randint(0, total - 1)
        min_unit = chooser.choice((1, 1, 2))
        max_unit = chooser.choice((total, 4, 12))
        step_size = chooser.choice((1, 1, 2, 3))
        ratio = chooser.choice(RATIOS)
        inventory = {"total": total, "reserved": reserved, "min_unit": min_unit,
                     "max_unit": max(max_unit, min_unit), "step_size": step_size,
                     "allocation_ratio": ratio}
        answer = client.put(f"/resource_providers/{provider}/inventories",
                            {"resource_provider_generation": 0, "inventories": {"VCPU": inventory}})
        if answer.status != 200:  # a capacity below zero is refused; none to list then
            continue
        used = 0
        room = rules.capacity(total, reserved, ratio)
        if room >= min_unit and chooser.random() < 0.6:
            used = min_unit
            claim = client.put(f"/allocations/{uuid.uuid4()}", {
                "allocations": {provider: {"resources": {"VCPU": used}}},
                "project_id": "p", "user_id": "u", "consumer_generation": None,
                "consumer_type": "INSTANCE",
            })
            used = used if claim.status == 204 else 0
        inventories[provider] = (total, reserved, min_unit, max(max_unit, min_unit), step_size, ratio, used)

    listings = []
    for amount in range(1, 13):
        listed = {provider["uuid"] for provider in
                  client.get(f"/resource_providers?resources=VCPU:{amount}").json()["resource_providers"]}
        admitted = {
            provider for provider, (total, reserved, min_unit, max_unit, step_size, ratio, used)
            in inventories.items()
            if rules.unit_problem(amount, min_unit, max_unit, step_size) is None
            and used + amount <= rules.capacity(total, reserved, ratio)
        }
        assert listed == admitted, amount
        listings.append(len(listed))
    # The sample exercises the rules: some amounts fit somewhere, none fits everywhere.
    assert max(listings) > 0 and max(listings) < len(inventories)
