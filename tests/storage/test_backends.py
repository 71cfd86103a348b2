"""The per-dialect backends: error classification, duplicate-ignoring inserts,
exact string comparison, the change feed under concurrent writers, migrations."""
from __future__ import annotations

import sqlite3
import threading
import uuid

import psycopg.errors
import pymysql.err
import pytest
import sqlalchemy
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from stowage import errors
from stowage.storage import schema
from stowage.storage.backends import backend_for
from stowage.storage.catalog import create_resource_class, find_resource_class, rename_resource_class
from stowage.storage.changes import ChangesSince, changes_since, current_revision
from stowage.storage.common import CHANGES_KEPT, insert_ignoring_duplicates, insert_new_row, utcnow
from stowage.storage.consumers import ensure_project
from stowage.storage.database import Database, newest_schema_revision
from stowage.storage.inventories import InventoryValues, insert_inventory
from stowage.storage.providers import find_provider_named, insert_provider
from stowage.storage.traits import create_trait, find_trait
from tests.support import private_mysql_database

# --- which errors are worth a retry ---------------------------------------------


def _wrapped(original: Exception) -> DBAPIError:
    return DBAPIError("statement", {}, original)


@pytest.mark.parametrize(
    ("backend", "original", "transient"),
    [
        ("sqlite", sqlite3.OperationalError("database is locked"), True),
        ("sqlite", sqlite3.IntegrityError("UNIQUE constraint failed: traits.name"), False),
        ("postgresql", psycopg.errors.SerializationFailure("could not serialize access"), True),
        ("postgresql", psycopg.errors.DeadlockDetected("deadlock detected"), True),
        ("postgresql", psycopg.errors.UniqueViolation("duplicate key value"), False),
        ("mysql", pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"), True),
        ("mysql", pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), True),
        # Galera's certification failure at commit reports itself as a deadlock.
        (
            "mysql",
            pymysql.err.OperationalError(
                1213, "WSREP detected deadlock/conflict and aborted the transaction. Try restarting the transaction"
            ),
            True,
        ),
        # A deadlock on the AUTO-INC lock of an INSERT ... SELECT (the change
        # feed's trigger), as InnoDB reports it (seen in tests/served/test_contention.py).
        ("mysql", pymysql.err.OperationalError(1467, "Failed to read auto-increment value from storage engine"),
         True),
        # A deadlock inside a savepoint took the savepoint with the transaction.
        ("mysql", pymysql.err.OperationalError(1305, "SAVEPOINT sa_savepoint_1 does not exist"), True),
        ("mysql", pymysql.err.IntegrityError(1062, "Duplicate entry 'X' for key 'name'"), False),
        ("mysql", pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), False),
    ],
    ids=lambda value: value if isinstance(value, str | bool) else type(value).__name__,
)
def test_each_backend_retries_only_the_failures_a_fresh_run_may_avoid(backend, original, transient):
    assert backend_for(f"{backend}://").is_transient(_wrapped(original)) is transient


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite:///placement.sqlite", "sqlite"),
        ("postgresql+psycopg://u:p@db/placement", "postgresql"),
        ("mysql+pymysql://u:p@db/placement", "mysql"),
        ("mariadb+pymysql://u:p@db/placement", "mysql"),
    ],
)
def test_a_url_picks_its_backend(url, name):
    assert backend_for(url).name == name


def test_an_unsupported_database_is_refused_by_name():
    with pytest.raises(ValueError, match="oracle"):
        backend_for("oracle://u:p@db/placement")


def test_a_lock_wait_timeout_on_mysql_is_reported_as_an_aborted_transaction(mysql_database):
    """1205: a writer that waited past innodb_lock_wait_timeout may be run again."""
    with mysql_database.write() as connection:
        insert_provider(connection, str(uuid.uuid4()), "contended", None)
    # Its own engine, so the shortened timeout leaves with its connection.
    impatient = Database.from_url(mysql_database.engine.url.render_as_string(hide_password=False), poolclass=NullPool)
    lock = text("SELECT id FROM resource_providers WHERE name = 'contended' FOR UPDATE")
    try:
        with mysql_database.write() as holder:
            holder.execute(lock).all()
            with pytest.raises(errors.TransactionAborted) as aborted, impatient.write() as waiter:
                waiter.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
                waiter.execute(lock).all()
    finally:
        impatient.dispose()
    assert aborted.value.__cause__.orig.args[0] == 1205


def test_a_deadlock_inside_a_savepoint_on_mysql_is_reported_as_an_aborted_transaction(mysql_database):
    """InnoDB rolls the victim's whole transaction back, its savepoints with
    it: what the writer sees is 1305 from ROLLBACK TO SAVEPOINT, and that
    too may be run again (a provider delete met it as a 500)."""
    with mysql_database.write() as connection:
        for name in ("left", "right"):
            insert_provider(connection, str(uuid.uuid4()), name, None)
    both_hold_one = threading.Barrier(2, timeout=30)
    outcomes: dict[str, Exception | None] = {}

    def writer(first: str, second: str) -> None:
        try:
            with mysql_database.write() as connection:
                connection.execute(_LOCK_NAMED, {"name": first}).all()
                both_hold_one.wait()
                with connection.begin_nested():
                    connection.execute(_LOCK_NAMED, {"name": second}).all()
        except Exception as error:  # noqa: BLE001 - the outcome is the assertion
            outcomes[first] = error
        else:
            outcomes[first] = None

    threads = [threading.Thread(target=writer, args=pair) for pair in (("left", "right"), ("right", "left"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = [error for error in outcomes.values() if error is not None]
    assert len(outcomes) == 2 and len(failed) == 1, outcomes
    assert isinstance(failed[0], errors.TransactionAborted), repr(failed[0])


_LOCK_NAMED = text("SELECT id FROM resource_providers WHERE name = :name FOR UPDATE")


# --- inserts that skip duplicates -----------------------------------------------


def _trait_rows(*names: str) -> list[dict]:
    return [{"name": name, "created_at": utcnow()} for name in names]


def test_an_insert_ignoring_duplicates_counts_only_the_rows_it_inserted(database):
    with database.write() as connection:
        assert insert_ignoring_duplicates(connection, schema.traits, _trait_rows("CUSTOM_A", "CUSTOM_B")) == 2
        assert insert_ignoring_duplicates(connection, schema.traits, _trait_rows("CUSTOM_A", "CUSTOM_C")) == 1
        assert insert_ignoring_duplicates(connection, schema.traits, _trait_rows("CUSTOM_C")) == 0
        assert insert_ignoring_duplicates(connection, schema.traits, []) == 0
        names = connection.execute(select(schema.traits.c.name).where(schema.traits.c.name.like("CUSTOM_%")))
        assert sorted(names.scalars()) == ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C"]


def test_an_insert_ignoring_duplicates_still_fails_on_any_other_error(database):
    """Unlike MySQL's INSERT IGNORE, a foreign-key violation is not skipped."""
    with pytest.raises(IntegrityError), database.write() as connection:
        provider = insert_provider(connection, str(uuid.uuid4()), "host", None)
        insert_ignoring_duplicates(
            connection,
            schema.provider_traits,
            [{"resource_provider_id": provider.id, "trait_id": 999_999, "created_at": utcnow()}],
        )


def test_a_skipped_duplicate_leaves_no_change_feed_row(database):
    with database.write() as connection:
        provider = insert_provider(connection, str(uuid.uuid4()), "host", None)
        (trait, _), (other, _) = create_trait(connection, "CUSTOM_A"), create_trait(connection, "CUSTOM_B")
    before = _revision(database)

    def links(*trait_ids: int) -> list[dict]:
        return [{"resource_provider_id": provider.id, "trait_id": t, "created_at": utcnow()} for t in trait_ids]

    with database.write() as connection:
        assert insert_ignoring_duplicates(connection, schema.provider_traits, links(trait.id)) == 1
        assert insert_ignoring_duplicates(connection, schema.provider_traits, links(trait.id, other.id)) == 1
    with database.read() as connection:
        rows = connection.execute(
            select(schema.changes.c.revision, schema.changes.c.root_provider_id).where(
                schema.changes.c.revision > before
            )
        ).all()
    # One row per link inserted, none for the duplicate skipped.
    assert rows == [(before + 1, provider.id)] * 2


# --- strings compare exactly on every backend -------------------------------------


def test_trait_names_differing_only_in_case_are_two_traits(database):
    with database.write() as connection:
        upper, created_upper = create_trait(connection, "CUSTOM_A")
        lower, created_lower = create_trait(connection, "CUSTOM_a")
        assert created_upper and created_lower and upper.id != lower.id
        assert find_trait(connection, "custom_a") is None
        assert find_trait(connection, "CUSTOM_a").id == lower.id


def test_provider_names_differing_in_case_or_trailing_spaces_are_three_providers(database):
    with database.write() as connection:
        ids = {insert_provider(connection, str(uuid.uuid4()), name, None).id for name in ("host", "HOST", "host ")}
        assert len(ids) == 3
        assert find_provider_named(connection, "host ").name == "host "
        assert find_provider_named(connection, "Host") is None


def test_a_new_row_insert_gives_the_id_or_none_for_a_duplicate(database):
    with database.write() as connection:
        made = insert_new_row(connection, schema.projects, {"external_id": "p", "created_at": utcnow()})
        assert made == connection.execute(
            select(schema.projects.c.id).where(schema.projects.c.external_id == "p")
        ).scalar_one()
        assert insert_new_row(connection, schema.projects, {"external_id": "p", "created_at": utcnow()}) is None
        count = connection.execute(select(func.count()).select_from(schema.projects)).scalar_one()
        assert count == 1


def test_a_project_another_writer_made_after_the_lookup_is_found_not_duplicated(database):
    """``missing=True`` inserts first; a concurrent creator's row (here made
    just before) turns the insert into a read of that row."""
    with database.write() as connection:
        first = ensure_project(connection, "raced")
        assert ensure_project(connection, "raced", missing=True) == first
        assert ensure_project(connection, "fresh", missing=True) not in (None, first)
        assert ensure_project(connection, "fresh") == ensure_project(connection, "fresh", missing=True)


def test_project_ids_differing_only_in_case_are_two_projects(database):
    with database.write() as connection:
        assert ensure_project(connection, "Project") != ensure_project(connection, "project")


def test_four_byte_characters_survive_a_round_trip(database):
    name = "rack \U0001f5c4 \u00e9t\u00e9"
    with database.write() as connection:
        insert_provider(connection, str(uuid.uuid4()), name, None)
    with database.read() as connection:
        assert find_provider_named(connection, name).name == name


def test_an_over_long_name_is_refused_not_truncated(server_database):
    # (SQLite does not enforce VARCHAR lengths; the API's schemas do, everywhere.)
    with pytest.raises(DBAPIError), server_database.write() as connection:
        connection.execute(insert(schema.traits).values(name="CUSTOM_" + "X" * 300, created_at=utcnow()))


def test_the_standard_class_vcpu_keeps_id_zero(database):
    with database.read() as connection:
        assert find_resource_class(connection, "VCPU").id == 0


def test_allocation_ratios_keep_double_precision(database):
    ratio = 1.1  # 1.100000023841858 in single precision
    with database.write() as connection:
        provider = insert_provider(connection, str(uuid.uuid4()), "host", None)
        values = InventoryValues(total=8, reserved=0, min_unit=1, max_unit=8, step_size=1, allocation_ratio=ratio)
        assert insert_inventory(connection, provider.id, 0, values)
        stored = connection.execute(select(schema.inventories.c.allocation_ratio)).scalar_one()
    assert stored == ratio


# --- the change feed under concurrent writers -------------------------------------


def _revision(database: Database) -> int:
    with database.read() as connection:
        return current_revision(connection)


def _new_root(database: Database, name: str) -> int:
    with database.write() as connection:
        provider = insert_provider(connection, str(uuid.uuid4()), name, None)
    return provider.id


def _add_vcpu(connection, provider_id: int) -> None:
    values = InventoryValues(total=8, reserved=0, min_unit=1, max_unit=8, step_size=1, allocation_ratio=1.0)
    assert insert_inventory(connection, provider_id, 0, values)


def test_a_writer_commits_while_another_writer_is_still_open(server_database):
    """Stamping this transaction's feed rows never waits for another writer's.

    On InnoDB, "WHERE revision IS NULL" would wait for the open writer's
    uncommitted rows while that writer would later wait for the revision
    row: the feed's rows carry a per-connection mark there instead.
    """
    database = server_database
    slow_root, quick_root = _new_root(database, "slow"), _new_root(database, "quick")
    before = _revision(database)
    # A feed of realistic length (10,000 revisions are kept), so that the
    # stamping UPDATE goes through the revision index, as in production.
    with database.write() as connection:
        connection.execute(
            insert(schema.changes), [{"revision": before, "root_provider_id": slow_root}] * 5000
        )
    finished = threading.Event()

    def quick_writer() -> None:
        with database.write() as connection:
            _add_vcpu(connection, quick_root)
        finished.set()

    with database.write() as connection:
        _add_vcpu(connection, slow_root)
        thread = threading.Thread(target=quick_writer)
        thread.start()
        committed_meanwhile = finished.wait(timeout=20)
    thread.join()
    assert committed_meanwhile
    with database.read() as connection:
        # The quick writer committed first, so took the first revision.
        assert _roots_at(connection, before + 1) == {quick_root}
        assert _roots_at(connection, before + 2) == {slow_root}
        assert changes_since(connection, before + 1) == ChangesSince(before + 2, {slow_root})


def _roots_at(connection, revision: int) -> set[int]:
    """The roots the feed notes at ``revision``."""
    feed = schema.changes
    return set(connection.execute(select(feed.c.root_provider_id).where(feed.c.revision == revision)).scalars())


def test_changes_since_tells_the_revision_and_the_changed_trees_in_one_statement(database):
    host, other = _new_root(database, "host"), _new_root(database, "other")
    with database.read() as connection:
        before = current_revision(connection)
        assert changes_since(connection, before) == ChangesSince(before, set())
    with database.write() as connection:
        _add_vcpu(connection, host)
    with database.write() as connection:
        _add_vcpu(connection, other)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sqlalchemy.event.listen(database.engine, "before_cursor_execute", listen)
    try:
        with database.read() as connection:
            assert changes_since(connection, before) == ChangesSince(before + 2, {host, other})
            assert changes_since(connection, before + 1) == ChangesSince(before + 2, {other})
            assert changes_since(connection, before + 2) == ChangesSince(before + 2, set())
            # A transaction older than the model it asks for: nothing to tell.
            assert changes_since(connection, before + 3) == ChangesSince(before + 2, set())
    finally:
        sqlalchemy.event.remove(database.engine, "before_cursor_execute", listen)
    assert len(statements) == 4


def test_the_feeds_old_every_tree_rows_still_mean_every_tree(database):
    with database.read() as connection:
        before = current_revision(connection)
    host = _new_root(database, "host")
    with database.write() as connection:
        # As migration 0002's catalog triggers noted a class or trait deleted: no root.
        connection.execute(insert(schema.changes).values(revision=before + 2, root_provider_id=None))
        connection.execute(schema.revision.update().values(revision=before + 2))
    with database.read() as connection:
        assert changes_since(connection, before) == ChangesSince(before + 2, None)
        assert changes_since(connection, before + 1) == ChangesSince(before + 2, None)
        assert _roots_at(connection, before + 1) == {host}


def test_a_catalog_change_notes_only_the_trees_that_use_the_row(database):
    """A class renamed or a trait deleted reaches the trees naming it, not
    every tree: the read models patch those and rebuild nothing."""
    with database.write() as connection:
        custom = create_resource_class(connection, "CUSTOM_GOLD")
        trait, _created = create_trait(connection, "CUSTOM_SHINY")
    assert custom is not None
    user, allocated, bystander = (_new_root(database, name) for name in ("user", "allocated", "bystander"))
    with database.write() as connection:
        values = InventoryValues(total=4, reserved=0, min_unit=1, max_unit=4, step_size=1, allocation_ratio=1.0)
        assert insert_inventory(connection, user, custom.id, values)
        link = {"resource_provider_id": allocated, "trait_id": trait.id, "created_at": utcnow()}
        connection.execute(insert(schema.provider_traits).values(link))
    with database.read() as connection:
        before = current_revision(connection)
    with database.write() as connection:
        assert rename_resource_class(connection, custom.id, "CUSTOM_PLATINUM")
    with database.read() as connection:
        assert changes_since(connection, before) == ChangesSince(before + 1, {user})
    with database.write() as connection:
        connection.execute(schema.provider_traits.delete())
        connection.execute(schema.traits.delete().where(schema.traits.c.id == trait.id))
    with database.read() as connection:
        assert changes_since(connection, before + 1) == ChangesSince(before + 2, {allocated})
    with database.write() as connection:
        # Used by no tree: no tree changed, no revision taken.
        connection.execute(schema.traits.delete().where(schema.traits.c.name == "CUSTOM_UNUSED_HERE"))
        create_trait(connection, "CUSTOM_LONELY")
    with database.read() as connection:
        assert changes_since(connection, before + 2) == ChangesSince(before + 2, set())
        assert bystander not in _roots_at(connection, before + 1) | _roots_at(connection, before + 2)


def test_every_thousandth_revision_folds_the_old_feed_into_tree_revisions(database):
    first, second, third = (_new_root(database, name) for name in ("first", "second", "third"))
    with database.write() as connection:
        connection.execute(schema.revision.update().values(revision=CHANGES_KEPT + 999))
        connection.execute(
            insert(schema.changes),
            [
                {"revision": 400, "root_provider_id": first},
                {"revision": 500, "root_provider_id": first},
                {"revision": 900, "root_provider_id": second},
                {"revision": 2000, "root_provider_id": second},
            ],
        )
        connection.execute(insert(schema.tree_revisions).values(root_provider_id=second, revision=300))
    with database.write() as connection:
        _add_vcpu(connection, third)
    now = CHANGES_KEPT + 1000
    with database.read() as connection:
        left = connection.execute(select(schema.changes.c.revision).order_by(schema.changes.c.revision))
        assert list(left.scalars()) == [2000, now]
        folded = connection.execute(select(schema.tree_revisions).where(schema.tree_revisions.c.revision > 0))
        # The three trees were made at revisions 1 to 3; second's 300 is replaced.
        assert {tuple(row) for row in folded} == {(first, 500), (second, 900), (third, 3)}
        # Further behind than the feed keeps: told from both.
        assert changes_since(connection, 100) == ChangesSince(now, {first, second, third})
        assert changes_since(connection, 600) == ChangesSince(now, {second, third})
        assert changes_since(connection, 950) == ChangesSince(now, {second, third})
        assert changes_since(connection, 2000) == ChangesSince(now, {third})


def test_a_model_from_before_the_tree_revisions_reloads_everything(database):
    """Feed rows pruned before migration 0004 were never folded: its row for
    every tree (root 0, at the revision it ran) makes older models reload."""
    root = _new_root(database, "host")
    with database.write() as connection:
        connection.execute(schema.revision.update().values(revision=CHANGES_KEPT + 50))
        connection.execute(insert(schema.tree_revisions).values(root_provider_id=0, revision=CHANGES_KEPT + 40))
        connection.execute(insert(schema.changes).values(revision=CHANGES_KEPT + 45, root_provider_id=root))
    with database.read() as connection:
        assert changes_since(connection, 10).roots is None
        assert changes_since(connection, CHANGES_KEPT + 44) == ChangesSince(CHANGES_KEPT + 50, {root})


# --- migrations --------------------------------------------------------------------


def test_the_migration_lock_of_mysql_is_held_by_one_session_at_a_time(mysql_database):
    probe = "SELECT GET_LOCK(LEFT(CONCAT('stowage.migrations.', DATABASE()), 64), 0)"
    with (
        mysql_database.write() as connection,
        mysql_database.backend.migration_lock(connection),
        mysql_database.engine.connect() as other,
    ):
        assert other.exec_driver_sql(probe).scalar() == 0
    with mysql_database.engine.connect() as other:
        assert other.exec_driver_sql(probe).scalar() == 1
        other.exec_driver_sql("SELECT RELEASE_LOCK(LEFT(CONCAT('stowage.migrations.', DATABASE()), 64))")


def test_a_mysql_migration_that_failed_half_way_runs_again(mysql_url):
    """MySQL commits each DDL statement: a rerun skips what the first run made."""
    assert mysql_url, "needs --mysql-url"
    database = Database.from_url(private_mysql_database(mysql_url), poolclass=NullPool)
    try:
        database.upgrade()
        # As if the first run had stopped after 0001's tables: no feed, no
        # revision row, no version stamp.
        with database.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE stowage_changes")
            connection.exec_driver_sql("DELETE FROM stowage_revision")
            connection.exec_driver_sql("DELETE FROM alembic_version")
        database.upgrade()
        root = _new_root(database, "host")
        with database.read() as connection:
            assert changes_since(connection, 0) == ChangesSince(1, {root})
            assert (
                connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                == newest_schema_revision()
            )
    finally:
        database.dispose()
