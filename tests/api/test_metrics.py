"""Spec: GET /metrics serves Prometheus' text format to whom
``[stowage] metrics_access`` allows, and its counters move as requests are
answered: by route template, method, status and microversion, candidates
per answer, empty answers, 409s, 503s and the read model's refreshes."""
from __future__ import annotations

import contextlib
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stowage import errors
from stowage.api.app import create_app
from stowage.api.metrics import Metrics
from stowage.storage.database import Database
from tests.support import Client, test_conf


def samples(client: Client) -> dict[tuple[str, frozenset], float]:
    """Every sample of GET /metrics, by name and labels."""
    answer = client.get("/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


def value(client: Client, name: str, **labels: str) -> float:
    return samples(client).get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_method_status_and_microversion(client):
    provider = str(uuid.uuid4())
    for _ in range(3):
        client.get(f"/resource_providers/{provider}")
    labels = {"route": "/resource_providers/{uuid}", "method": "GET", "status": "404",
              "microversion": "1.39"}
    assert value(client, "stowage_http_requests_total", **labels) == 3
    count = value(client, "stowage_http_request_duration_seconds_count",
                  route="/resource_providers/{uuid}", method="GET")
    assert count == 3
    # No raw path (no uuid) in any label.
    assert not any(provider in str(key) for key in samples(client))


def test_answers_refused_before_routing_are_counted_under_their_route(client):
    Client(client.app, token=None).get("/resource_providers")
    assert value(client, "stowage_http_requests_total", route="/resource_providers",
                 method="GET", status="401", microversion="none") == 1


def test_candidates_and_empty_answers_are_counted(client):
    client.post("/resource_providers", {"name": "cn1", "uuid": str(uuid.uuid4())})
    provider = client.get("/resource_providers").json()["resource_providers"][0]["uuid"]
    client.put(f"/resource_providers/{provider}/inventories",
               {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}})
    client.get("/allocation_candidates?resources=VCPU:1")
    client.get("/allocation_candidates?resources=VCPU:100")
    assert value(client, "stowage_allocation_candidates_returned_count") == 2
    assert value(client, "stowage_allocation_candidates_returned_sum") == 1
    assert value(client, "stowage_allocation_candidates_empty_total",
                 reason="no_room_in_tree") == 1
    client.get("/allocation_candidates?resources=VCPU:1&required=HW_CPU_X86_AVX2")
    assert value(client, "stowage_allocation_candidates_empty_total",
                 reason="missing_trait") == 1
    assert value(client, "stowage_read_model_refresh_seconds_count") >= 1


def test_conflicts_are_counted_by_error_code(client):
    provider = str(uuid.uuid4())
    client.post("/resource_providers", {"name": "cn1", "uuid": provider})
    stale = {"resource_provider_generation": 5, "inventories": {"VCPU": {"total": 8}}}
    assert client.put(f"/resource_providers/{provider}/inventories", stale).status == 409
    assert value(client, "stowage_conflicts_total", route="/resource_providers/{uuid}/inventories",
                 code="placement.concurrent_update") == 1


def test_an_unreachable_database_is_counted(tmp_path):
    from stowage.storage.database import Database

    database = Database.from_url(f"sqlite:///{tmp_path}/missing/placement.sqlite")
    client = Client(create_app(test_conf(), database))
    assert client.get("/resource_providers").status == 503
    assert value(client, "stowage_database_unavailable_total", route="/resource_providers") == 1


class AbortingWrites:
    """A database whose next ``aborts`` write transactions the database
    aborts (as a deadlock would): nothing they wrote is kept."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.aborts = 0

    def __getattr__(self, name: str):
        return getattr(self._database, name)

    @contextlib.contextmanager
    def write(self):
        with self._database.write() as connection:
            yield connection
            if self.aborts:
                self.aborts -= 1
                raise errors.TransactionAborted("deadlock (provoked by the test)")


def a_provider_with_vcpu(client: Client) -> str:
    provider = str(uuid.uuid4())
    client.post("/resource_providers", {"name": "cn1", "uuid": provider})
    client.put(f"/resource_providers/{provider}/inventories",
               {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}})
    return provider


def claim(provider: str) -> dict:
    return {"allocations": {provider: {"resources": {"VCPU": 1}}},
            "project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
            "consumer_generation": None, "consumer_type": "INSTANCE"}


def test_allocation_writes_run_again_are_counted_as_retries(database):
    aborting = AbortingWrites(database)
    client = Client(create_app(test_conf(), aborting, metrics=Metrics()))
    provider = a_provider_with_vcpu(client)
    # Aborted twice, then written: two retries inside the allocation write.
    aborting.aborts = 2
    assert client.put(f"/allocations/{uuid.uuid4()}", claim(provider)).status == 204
    assert value(client, "stowage_transaction_retries_total") == 2
    aborting.aborts = 1
    body = {str(uuid.uuid4()): claim(provider)}
    assert client.post("/allocations", body).status == 204
    assert value(client, "stowage_transaction_retries_total") == 3


def test_an_allocation_write_that_gives_up_counts_only_the_runs_again(database):
    aborting = AbortingWrites(database)
    conf = test_conf(placement={"allocation_conflict_retry_count": 3})
    client = Client(create_app(conf, aborting, metrics=Metrics()))
    provider = a_provider_with_vcpu(client)
    aborting.aborts = 10
    assert client.put(f"/allocations/{uuid.uuid4()}", claim(provider)).status == 409
    assert value(client, "stowage_transaction_retries_total") == 2


def test_each_app_counts_alone(database):
    first = Client(create_app(test_conf(), database, metrics=Metrics()))
    second = Client(create_app(test_conf(), database, metrics=Metrics()))
    first.get("/")
    assert value(second, "stowage_http_requests_total", route="/", method="GET",
                 status="200", microversion="1.39") == 0


@pytest.mark.parametrize(
    ("access", "token", "status"),
    [
        ("admin", "admin", 200),
        ("admin", None, 401),
        ("admin", "someone", 403),
        ("anyone", None, 200),
        ("anyone", "someone", 200),
        ("nobody", "admin", 404),
        ("nobody", None, 404),
    ],
)
def test_metrics_access_says_who_may_read_them(database, access, token, status):
    app = create_app(test_conf(stowage={"metrics_access": access}), database)
    answer = Client(app, token=token).get("/metrics")
    assert answer.status == status
    if status != 200:
        assert answer.headers["content-type"] == "application/json"


def test_other_methods_are_405_in_placements_format(client):
    answer = client.delete("/metrics")
    assert answer.status == 405
    assert answer.headers["allow"] == "GET"
    assert answer.json()["errors"][0]["status"] == 405


def test_a_scraper_asking_for_openmetrics_gets_it(client):
    answer = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.body.endswith(b"# EOF\n")
