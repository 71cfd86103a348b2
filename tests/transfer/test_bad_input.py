"""Spec: a transfer given the wrong database says so in one line and exits 2, before writing anything."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stowage.storage.database import newest_schema_revision
from tests.transfer.conftest import write_config


def placement_manage_db_sync(directory: Path) -> str:
    """An empty upstream 16.0.0 database made by upstream's own ``placement-manage db sync``."""
    url = f"sqlite:///{directory / 'upstream.sqlite'}"
    config = directory / "upstream.conf"
    config.write_text(f"[placement_database]\nconnection = {url}\n")
    manage = Path(sys.executable).parent / "placement-manage"
    subprocess.run([str(manage), "--config-file", str(config), "db", "sync"], check=True, capture_output=True)
    return url


@pytest.fixture
def stowage_config(tmp_path) -> str:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'stowage.sqlite'}")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused(outcome, expected: str) -> None:
    assert outcome.status == 2, outcome.out + outcome.err
    assert expected in outcome.err
    assert "Traceback" not in outcome.err
    assert len(outcome.err.strip().splitlines()) <= 2


def test_an_unparsable_url_is_refused(stowage_command, stowage_config):
    refused(stowage_command("db", "import", "--from", "not a url", "--config-file", stowage_config),
            "cannot use <unparsable URL>")


def test_a_url_of_an_unknown_database_kind_is_refused(stowage_command, stowage_config):
    refused(stowage_command("db", "import", "--from", "oracle://x@localhost/db", "--config-file", stowage_config),
            "cannot use oracle://x@localhost/db")


def test_an_unreachable_server_is_refused(stowage_command, stowage_config):
    url = f"postgresql://placement:secret@127.0.0.1:{closed_port()}/placement"
    outcome = stowage_command("db", "import", "--from", url, "--config-file", stowage_config)
    refused(outcome, "cannot open postgresql+psycopg://placement:***@127.0.0.1")
    assert "secret" not in outcome.err


def test_a_missing_sqlite_file_is_refused_not_created(stowage_command, stowage_config, tmp_path):
    missing = tmp_path / "absent.sqlite"
    refused(stowage_command("db", "import", "--from", f"sqlite:///{missing}", "--config-file", stowage_config),
            f"there is no file {missing}")
    assert not missing.exists()


def test_an_empty_database_is_not_an_upstream_one(stowage_command, stowage_config, tmp_path):
    empty = tmp_path / "empty.sqlite"
    create_engine(f"sqlite:///{empty}").dispose()
    empty.touch()
    refused(stowage_command("db", "import", "--from", f"sqlite:///{empty}", "--config-file", stowage_config),
            "is empty, not an upstream Placement database")


def test_a_stowage_database_is_not_an_upstream_one(stowage_command, stowage_config, tmp_path):
    stowage_url = f"sqlite:///{tmp_path / 'another-stowage.sqlite'}"
    (tmp_path / "another").mkdir()
    another_config = write_config(tmp_path / "another", stowage_url)
    assert stowage_command("db", "upgrade", "--config-file", another_config).status == 0
    refused(stowage_command("db", "import", "--from", stowage_url, "--config-file", stowage_config),
            f"is a Stowage database (revision {newest_schema_revision()}), not an upstream Placement one")


def test_an_upstream_database_at_another_revision_is_refused(stowage_command, stowage_config, tmp_path):
    url = placement_manage_db_sync(tmp_path)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '422ece571366'"))
    engine.dispose()
    refused(stowage_command("db", "import", "--from", url, "--config-file", stowage_config),
            "at revision 422ece571366, not a082b8bb98d0")


def test_export_refuses_a_target_that_is_not_an_upstream_database(stowage_command, stowage_config, tmp_path):
    assert stowage_command("db", "upgrade", "--config-file", stowage_config).status == 0
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    (tmp_path / "other").mkdir()
    assert stowage_command("db", "upgrade", "--config-file", write_config(tmp_path / "other", other)).status == 0
    refused(stowage_command("db", "export", "--to", other, "--config-file", stowage_config),
            f"is a Stowage database (revision {newest_schema_revision()}), not an upstream Placement one")


def test_copy_refuses_an_upstream_database_on_either_end(stowage_command, stowage_config, tmp_path):
    upstream = placement_manage_db_sync(tmp_path)
    stowage = f"sqlite:///{tmp_path / 'stowage.sqlite'}"
    assert stowage_command("db", "upgrade", "--config-file", stowage_config).status == 0
    refused(stowage_command("db", "copy", "--from", upstream, "--to", stowage),
            "is an upstream Placement database, not a Stowage one")
    refused(stowage_command("db", "copy", "--from", stowage, "--to", upstream),
            "is an upstream Placement database, not a Stowage one")


def test_a_database_is_never_its_own_source(stowage_command, stowage_config, tmp_path):
    url = f"sqlite:///{tmp_path / 'stowage.sqlite'}"
    refused(stowage_command("db", "copy", "--from", url, "--to", url),
            "the source and the target are the same database")
    refused(stowage_command("db", "import", "--from", url, "--config-file", stowage_config),
            "the source and the target are the same database")
