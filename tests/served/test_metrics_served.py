"""Spec: under ``stowage serve`` with two gunicorn workers, GET /metrics,
whichever worker answers it, counts the requests both workers answered."""
from __future__ import annotations

import http.client
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.clients.served import ServedStowage

REQUESTS = 40


def get(served: ServedStowage, path: str) -> tuple[int, bytes]:
    # A new connection each time, so that both workers take some.
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request("GET", path, headers={"x-auth-token": "admin"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def metric_samples(served: ServedStowage) -> list:
    status, body = get(served, "/metrics")
    assert status == 200
    return [sample for family in text_string_to_metric_families(body.decode())
            for sample in family.samples]


def test_metrics_sum_the_requests_of_both_workers():
    served = ServedStowage.boot("sqlite", None, workers=2)
    try:
        served.wait_until_serving()
        # A route nothing else asks for (the readiness probe asks for "/").
        assert _counted(metric_samples(served)) == 0
        for _ in range(REQUESTS):
            assert get(served, "/resource_providers")[0] == 200
        # Each worker keeps its own read model, and says which revision it
        # holds; a request is counted as its answer is closed, a moment
        # after the client has it.
        for _ in range(50):
            samples = metric_samples(served)
            workers = {sample.labels["pid"] for sample in samples
                       if sample.name == "stowage_read_model_revision"}
            if len(workers) == 2 and _counted(samples) == REQUESTS:
                break
            time.sleep(0.05)
        assert _counted(samples) == REQUESTS
        assert len(workers) == 2, served.log()
    finally:
        served.stop()


def _counted(samples: list) -> float:
    return sum(sample.value for sample in samples
               if sample.name == "stowage_http_requests_total"
               and sample.labels["route"] == "/resource_providers" and sample.labels["status"] == "200")
