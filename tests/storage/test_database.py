"""Write transactions: all-or-nothing, and aborted ones reported as retryable."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, select, text, update

from stowage import errors
from stowage.storage.common import utcnow
from stowage.storage.schema import projects, resource_classes, resource_providers, revision


def revision_of(database) -> int:
    with database.read() as connection:
        return connection.execute(select(revision.c.revision)).scalar_one()


def add_provider(connection, name: str) -> None:
    connection.execute(
        insert(resource_providers).values(
            uuid=f"00000000-0000-0000-0000-{len(name):012d}", name=name, generation=0, created_at=utcnow()
        )
    )


def test_a_failing_write_leaves_nothing_behind(database):
    with pytest.raises(RuntimeError), database.write() as connection:
        add_provider(connection, "half")
        raise RuntimeError("fail after the insert")
    with database.read() as connection:
        assert connection.execute(select(resource_providers.c.name)).all() == []


def test_the_revision_moves_once_per_write_that_changed_a_tree(database):
    """The revision follows from what a transaction wrote: no write path
    has to remember to bump it, and writes that change no tree take none."""
    before = revision_of(database)
    with database.write():
        pass
    with database.write() as connection:
        # Rows of no tree: a project and a custom class.
        connection.execute(insert(projects).values(external_id="p", created_at=utcnow()))
        connection.execute(
            insert(resource_classes).values(id=10_001, name="CUSTOM_UNUSED", created_at=utcnow())
        )
    assert revision_of(database) == before
    with database.write() as connection:
        # Raw statements, through no storage function: the triggers tell.
        add_provider(connection, "host")
        add_provider(connection, "other")
        connection.execute(update(resource_providers).values(root_provider_id=resource_providers.c.id))
    assert revision_of(database) == before + 1


def test_a_deadlock_is_reported_as_an_aborted_transaction(server_database):
    # (SQLite serialises writers with BEGIN IMMEDIATE, so it cannot deadlock.)
    database = server_database
    with database.write() as connection:
        add_provider(connection, "a")
        add_provider(connection, "bb")
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[object] = []

    def lock_in_order(first: str, second: str) -> None:
        lock = text("SELECT id FROM resource_providers WHERE name = :name FOR UPDATE")
        try:
            with database.write() as connection:
                connection.execute(lock, {"name": first})
                barrier.wait()
                connection.execute(lock, {"name": second})
            outcomes.append("committed")
        except errors.TransactionAborted as error:
            outcomes.append(error)

    threads = [
        threading.Thread(target=lock_in_order, args=("a", "bb")),
        threading.Thread(target=lock_in_order, args=("bb", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(type, outcomes), key=str) == sorted([str, errors.TransactionAborted], key=str)
