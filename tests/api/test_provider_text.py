"""Unit spec: providers written as JSON text (``ProviderText``) are exactly
the JSON of the documented dicts, whatever the name, mount point and
microversion."""
from __future__ import annotations

import datetime
import json

import pytest

from stowage.api.handlers.resource_providers import serialize_provider, serialize_providers
from stowage.api.http import Request
from stowage.api.versions import Version
from stowage.storage.providers import ListedProvider, ProviderRecord

ROOT = "11111111-1111-4111-8111-111111111111"
CHILD = "22222222-2222-4222-8222-222222222222"


def record(uuid: str, name: str, parent: str | None) -> ProviderRecord:
    stamp = datetime.datetime(2026, 1, 1)
    return ProviderRecord(
        id=1, uuid=uuid, name=name, generation=7, parent_provider_uuid=parent,
        root_provider_uuid=ROOT, created_at=stamp, updated_at=stamp,
    )


def request(minor: int, mount: str) -> Request:
    made = Request({"REQUEST_METHOD": "GET", "PATH_INFO": "/resource_providers", "SCRIPT_NAME": mount}, "r")
    made.version = Version(1, minor)
    return made


def expected(uuid: str, name: str, parent: str | None, minor: int, mount: str) -> dict:
    url = f"{mount}/resource_providers/{uuid}"
    relations = ["inventories", "usages"] + ["aggregates"] * (minor >= 1) + ["traits"] * (minor >= 6)
    relations += ["allocations"] * (minor >= 11)
    body = {
        "uuid": uuid, "name": name, "generation": 7,
        "links": [{"rel": "self", "href": url}]
        + [{"rel": relation, "href": f"{url}/{relation}"} for relation in relations],
    }
    if minor >= 14:
        body |= {"parent_provider_uuid": parent, "root_provider_uuid": ROOT}
    return body


@pytest.mark.parametrize("minor", [0, 1, 6, 11, 14, 39])
@pytest.mark.parametrize("mount", ["", "/placement", '/odd "mount" \\ é'])
@pytest.mark.parametrize("name", ["cn1", 'quote " backslash \\ tab \t nul \x00', "名前 ☃ \u2028"])
def test_a_provider_as_text_is_the_json_of_its_dict(minor, mount, name):
    records = [record(ROOT, name, None), record(CHILD, "child", ROOT)]
    listed = [ListedProvider(r.uuid, r.name, r.generation, r.parent_provider_uuid,
                             r.root_provider_uuid, r.last_modified) for r in records]
    at = request(minor, mount)
    assert json.loads(serialize_provider(at, records[0])) == expected(ROOT, name, None, minor, mount)
    assert json.loads(serialize_providers(at, listed)) == {"resource_providers": [
        expected(ROOT, name, None, minor, mount), expected(CHILD, "child", ROOT, minor, mount),
    ]}
    assert json.loads(serialize_providers(at, [])) == {"resource_providers": []}
