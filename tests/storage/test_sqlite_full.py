"""Spec: a full disk under the embedded SQLite database is a 503 for each
write, with SQLite's reason, while reads go on; nothing is half-written or
corrupted, and writes succeed again once there is room.

The disk fills through SQLite's ``max_page_count``: past it, SQLite fails
a write with SQLITE_FULL ("database or disk is full"), the very error a
full file system gives, without filling one.
"""
from __future__ import annotations

from sqlalchemy import event, text

from stowage.api.app import create_app
from stowage.storage.database import Database
from tests.support import Client, test_conf

WRITES = 200


def _capped(path) -> Database:
    """The database at ``path``, unable to grow past its present size."""
    database = Database.from_url(f"sqlite:///{path}")

    def cap(connection, _record) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(database.engine, "connect", cap)
    return database


def test_a_full_disk_refuses_writes_with_a_503_and_keeps_every_acknowledged_one(tmp_path):
    path = tmp_path / "placement.sqlite"
    roomy = Database.from_url(f"sqlite:///{path}")
    roomy.upgrade()
    roomy.dispose()

    full = _capped(path)
    client = Client(create_app(test_conf(), full))
    acknowledged, refused = [], []
    try:
        for index in range(WRITES):
            # Names long enough to need new pages soon.
            name = f"provider-{index:04d}-" + "x" * 180
            answer = client.post("/resource_providers", {"name": name})
            assert answer.status in (200, 503), answer.body
            if answer.status == 200:
                acknowledged.append(name)
            else:
                (error,) = answer.json()["errors"]
                assert "full" in error["detail"] and str(tmp_path) not in error["detail"]
                refused.append(name)
        assert refused, "the capped database never filled"
        listed = client.get("/resource_providers")
        assert listed.status == 200
        assert sorted(p["name"] for p in listed.json()["resource_providers"]) == acknowledged
    finally:
        full.dispose()

    roomy = Database.from_url(f"sqlite:///{path}")
    try:
        with roomy.read() as connection:
            assert connection.scalar(text("PRAGMA integrity_check")) == "ok"
        client = Client(create_app(test_conf(), roomy))
        assert client.post("/resource_providers", {"name": "after"}).status == 200
        names = {p["name"] for p in client.get("/resource_providers").json()["resource_providers"]}
        assert names == {*acknowledged, "after"}
    finally:
        roomy.dispose()
