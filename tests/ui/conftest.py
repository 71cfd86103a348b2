"""A served Stowage with a small cloud, and a headless Chromium to look at it.

The cloud, made over HTTP (noauth2's administrator, microversion 1.39)::

    compute-1   DISK_GB 1000 (20 used)        STORAGE_DISK_SSD    rack-a
    └── compute-1-numa0   VCPU 32 (4 used), MEMORY_MB 16384 (4096 used)
                                              HW_NUMA_ROOT, HW_CPU_X86_AVX2
    compute-2   DISK_GB 100 (90 used: nearly full)                rack-a
    └── compute-2-numa0   VCPU (10 - 2 reserved) * 2.0 = 16 (4 used),
                          MEMORY_MB 16384 (2048 used)   HW_NUMA_ROOT

    instance-1: 4 VCPU and 4096 MEMORY_MB of compute-1-numa0, 20 DISK_GB of compute-1
    instance-2: 4 VCPU and 2048 MEMORY_MB of compute-2-numa0, 90 DISK_GB of compute-2

The browser is Debian's chromium, driven through Debian's chromedriver
(``.ci/test`` installs both); screenshots go to ``$STOWAGE_TEST_ARTIFACTS``
when it is set, else to pytest's temporary directory.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.clients.served import ADMIN_TOKEN, ServedStowage

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MICROVERSION = "placement 1.39"
WINDOW = (1440, 1200)

RACK_A = "5b0c8f2e-9d7a-4c61-8e3b-2a4f6d1c9e70"
PROJECT = "6e3a1c0b-2f4d-4a8e-9b7c-1d2e3f4a5b6c"
USER = "7f4b2d1c-3a5e-4b9f-8c0d-2e3f4a5b6c7d"


@dataclass(frozen=True)
class Cloud:
    """The providers and consumers of the drawing, by name."""

    providers: dict[str, str]
    consumers: dict[str, str]


class Api:
    """JSON over HTTP to a served Stowage, as its administrator."""

    def __init__(self, served: ServedStowage) -> None:
        self.served = served

    def call(self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN,
             accept: str = "application/json") -> tuple[int, dict[str, str], bytes]:
        headers = {"OpenStack-API-Version": MICROVERSION, "Accept": accept}
        if token is not None:
            headers["X-Auth-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.served.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> dict:
        status, _headers, content = self.call(method, path, body)
        assert status == expect, f"{method} {path}: {status} {content!r}"
        return json.loads(content) if content else {}


def build_cloud(api: Api) -> Cloud:
    providers: dict[str, str] = {}
    generations: dict[str, int] = {}

    def create(name: str, parent: str | None = None) -> str:
        body = {"name": name, "parent_provider_uuid": providers.get(parent) if parent else None}
        answer = api.json("POST", "/resource_providers", body)
        providers[name], generations[name] = answer["uuid"], answer["generation"]
        return answer["uuid"]

    def put(name: str, what: str, key: str, value: Any) -> None:
        body = {key: value, "resource_provider_generation": generations[name]}
        answer = api.json("PUT", f"/resource_providers/{providers[name]}/{what}", body)
        generations[name] = answer["resource_provider_generation"]

    def inventory(total: int, reserved: int = 0, ratio: float = 1.0) -> dict:
        return {"total": total, "reserved": reserved, "allocation_ratio": ratio}

    for host in ("compute-1", "compute-2"):
        create(host)
        create(f"{host}-numa0", parent=host)
        put(host, "aggregates", "aggregates", [RACK_A])
        put(f"{host}-numa0", "traits", "traits", ["HW_NUMA_ROOT"])
    put("compute-1", "inventories", "inventories", {"DISK_GB": inventory(1000)})
    put("compute-1", "traits", "traits", ["STORAGE_DISK_SSD"])
    put("compute-1-numa0", "inventories", "inventories",
        {"VCPU": inventory(32), "MEMORY_MB": inventory(16384)})
    put("compute-1-numa0", "traits", "traits", ["HW_CPU_X86_AVX2", "HW_NUMA_ROOT"])
    put("compute-2", "inventories", "inventories", {"DISK_GB": inventory(100)})
    put("compute-2-numa0", "inventories", "inventories",
        {"VCPU": inventory(10, reserved=2, ratio=2.0), "MEMORY_MB": inventory(16384)})

    consumers = {
        "instance-1": "a1b2c3d4-0000-4000-8000-000000000001",
        "instance-2": "a1b2c3d4-0000-4000-8000-000000000002",
    }
    claims = {
        "instance-1": {"compute-1-numa0": {"VCPU": 4, "MEMORY_MB": 4096}, "compute-1": {"DISK_GB": 20}},
        "instance-2": {"compute-2-numa0": {"VCPU": 4, "MEMORY_MB": 2048}, "compute-2": {"DISK_GB": 90}},
    }
    for consumer, claim in claims.items():
        body = {
            "allocations": {providers[name]: {"resources": amounts} for name, amounts in claim.items()},
            "project_id": PROJECT,
            "user_id": USER,
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        }
        api.json("PUT", f"/allocations/{consumers[consumer]}", body, expect=204)
    return Cloud(providers, consumers)


@pytest.fixture(scope="module")
def served() -> Iterator[ServedStowage]:
    """A served Stowage (SQLite, noauth2) of its own."""
    stowage = ServedStowage.boot("sqlite", None)
    try:
        stowage.wait_until_serving()
        yield stowage
    finally:
        stowage.stop()


@pytest.fixture(scope="module")
def api(served) -> Api:
    return Api(served)


@pytest.fixture(scope="module")
def cloud(api) -> Cloud:
    return build_cloud(api)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium, as root: no sandbox, a profile of its own, nothing
    fetched from outside."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
            "(bash .ci/test installs them)",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="stowage-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        f"--user-data-dir={profile}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    # The path given, so that Selenium does not look for (or download) a driver.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: ``$STOWAGE_TEST_ARTIFACTS``, or a temporary directory."""
    chosen = os.environ.get("STOWAGE_TEST_ARTIFACTS")
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    return tmp_path_factory.mktemp("ui-artifacts")
