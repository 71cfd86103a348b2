"""Spec: the transfer engine converges on awkward histories, on every target backend.

Each test writes a history on a SQLite Stowage source through the API (or,
where the API cannot, with one SQL statement), copies it, and checks that
the target ends equal to the source (the run's own verification) and
answers as the source does.
"""
from __future__ import annotations

from sqlalchemy import delete, select

from stowage.cmd.database import prepare_database
from stowage.storage import schema
from stowage.storage.transfer import Options, open_stowage, open_upstream, transfer
from tests.transfer.conftest import scratch_url
from tests.transfer.placement import differing_reads, reads
from tests.transfer.test_bad_input import placement_manage_db_sync

ALPHA = "e0000000-0000-4000-8000-000000000001"
BETA = "e0000000-0000-4000-8000-000000000002"
GAMMA = "e0000000-0000-4000-8000-000000000003"


def copy(source_url: str, target_url: str, **options) -> object:
    source = open_stowage(source_url, "source", must_be_current=True)
    target = open_stowage(target_url, "target", must_be_current=False)
    try:
        prepare_database(target.database)
        return transfer(source, target, Options(batch_size=2, **options))
    finally:
        source.dispose()
        target.dispose()


def fresh_source(tmp_path, open_stowage_app):
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    service = open_stowage_app(url)
    prepare_database(service.database)
    return url, service


def test_providers_that_swapped_names_are_copied_over_each_other(any_backend, tmp_path, request, open_stowage_app):
    source_url, source = fresh_source(tmp_path, open_stowage_app)
    source.api.create_provider(ALPHA, "alpha")
    source.api.create_provider(BETA, "beta")
    target_url = scratch_url(any_backend, tmp_path, request.config)
    assert copy(source_url, target_url).verified
    for uuid, name in ((ALPHA, "swap"), (BETA, "alpha"), (ALPHA, "beta")):
        source.api.call("PUT", f"/resource_providers/{uuid}", {"name": name}, expect=200)

    report = copy(source_url, target_url)

    assert report.verified
    assert [(change.table, change.updated) for change in report.changes if change.any] == [("resource_providers", 2)]
    assert differing_reads(source.api, open_stowage_app(target_url).api, reads([ALPHA, BETA], [])) == []


def test_a_provider_moved_under_a_newer_parent_is_linked_once_that_parent_exists(
    any_backend, tmp_path, request, open_stowage_app
):
    source_url, source = fresh_source(tmp_path, open_stowage_app)
    source.api.create_provider(ALPHA, "old-parent")
    source.api.create_provider(BETA, "child", parent=ALPHA)
    earlier_url = scratch_url(any_backend, tmp_path, request.config, name="earlier")
    assert copy(source_url, earlier_url).verified
    source.api.create_provider(GAMMA, "new-parent")
    source.api.call("PUT", f"/resource_providers/{BETA}", {"name": "child", "parent_provider_uuid": GAMMA},
                    version="1.37", expect=200)
    source.api.call("DELETE", f"/resource_providers/{ALPHA}", expect=204)
    fresh_url = scratch_url(any_backend, tmp_path, request.config, name="fresh")

    for target_url in (earlier_url, fresh_url):
        assert copy(source_url, target_url).verified
        assert differing_reads(source.api, open_stowage_app(target_url).api, reads([BETA, GAMMA], [])) == []


def test_a_standard_trait_the_source_lacks_stays_in_a_stowage_target(any_backend, tmp_path, request, open_stowage_app):
    source_url, source = fresh_source(tmp_path, open_stowage_app)
    with source.database.write() as connection:
        connection.execute(delete(schema.traits).where(schema.traits.c.name == "HW_CPU_X86_AVX2"))
    target_url = scratch_url(any_backend, tmp_path, request.config)

    first, second = copy(source_url, target_url), copy(source_url, target_url)

    assert first.verified and second.verified and not second.changed
    (traits,) = [check for check in second.checks if check.table == "traits"]
    assert traits.target_own_rows == 1
    target = open_stowage_app(target_url)
    with target.database.read() as connection:
        assert connection.scalar(select(schema.traits.c.id).where(schema.traits.c.name == "HW_CPU_X86_AVX2"))


def test_a_dry_run_counts_what_would_change_and_writes_nothing(tmp_path, open_stowage_app):
    source_url, source = fresh_source(tmp_path, open_stowage_app)
    source.api.create_provider(ALPHA, "alpha")
    target_url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    prepare_database(open_stowage_app(target_url).database)

    report = copy(source_url, target_url, dry_run=True)

    assert not report.verified
    # (Standard traits may differ in their timestamps: each side synced its own.)
    assert [(change.table, change.inserted, change.deleted) for change in report.changes
            if change.inserted or change.deleted] == [("resource_providers", 1, 0)]
    with open_stowage_app(target_url).database.read() as connection:
        assert connection.scalar(select(schema.resource_providers.c.id)) is None


def test_an_allocation_without_a_consumer_record_is_named_in_the_error(tmp_path, stowage_command):
    upstream_url = placement_manage_db_sync(tmp_path)
    source = open_upstream(upstream_url, "source")
    with source.write() as connection:
        connection.exec_driver_sql(
            "INSERT INTO resource_providers (id, uuid, name, generation, root_provider_id) "
            f"VALUES (1, '{ALPHA}', 'old', 1, 1)"
        )
        connection.exec_driver_sql(
            "INSERT INTO inventories (id, resource_provider_id, resource_class_id, total, reserved, min_unit, "
            "max_unit, step_size, allocation_ratio) VALUES (1, 1, 0, 4, 0, 1, 4, 1, 1.0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO allocations (id, resource_provider_id, consumer_id, resource_class_id, used) "
            f"VALUES (1, 1, '{BETA}', 0, 1)"
        )
    source.dispose()
    config = tmp_path / "stowage.conf"
    config.write_text(f"[placement_database]\nconnection = sqlite:///{tmp_path / 'stowage.sqlite'}\n")

    outcome = stowage_command("db", "import", "--from", upstream_url, "--config-file", str(config))

    assert outcome.status == 2
    assert f"allocation 1 names consumer {BETA}, which has no consumer record" in outcome.err
    assert "online_data_migrations" in outcome.err
