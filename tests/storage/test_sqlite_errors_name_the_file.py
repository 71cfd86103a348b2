"""Spec: when the embedded SQLite file cannot be opened or written, the
operator is told which file (the ``stowage`` command's error line, the
service's log), and clients are told why but not where.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stowage.api.app import create_app
from stowage.cmd.main import main
from stowage.storage.database import Database
from tests.support import Client, test_conf


def not_a_database(directory: Path) -> Path:
    """A ``placement.sqlite`` under ``directory`` holding something else."""
    directory.mkdir(exist_ok=True)
    path = directory / "placement.sqlite"
    path.write_bytes(b"these are not the pages of a SQLite database\n" * 100)
    return path


def config_file(directory: Path, text: str) -> str:
    path = directory / "placement.conf"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "version"]])
def test_the_command_names_a_file_that_is_not_a_database(tmp_path, capsys, command):
    path = not_a_database(tmp_path / "state")
    config = config_file(tmp_path, f"[stowage]\nstate_dir = {tmp_path / 'state'}\n")
    assert main([*command, "--config-file", config]) == 1
    err = capsys.readouterr().err
    assert err.endswith(
        f"stowage: database error: The database {path} cannot store anything: file is not a database\n"
    )
    assert "Traceback" not in err


def test_the_command_names_a_read_only_file_opened_as_a_sqlite_uri(tmp_path, capsys):
    path = tmp_path / "placement.sqlite"
    assert main(["db", "upgrade", "--config-file",
                 config_file(tmp_path, f"[placement_database]\nconnection = sqlite:///{path}\n")]) == 0
    capsys.readouterr()
    read_only = config_file(
        tmp_path, f"[placement_database]\nconnection = sqlite:///file:{path}?mode=ro&uri=true\n"
    )
    # db upgrade syncs the standard names, a write, even on a current schema.
    assert main(["db", "upgrade", "--config-file", read_only]) == 1
    assert capsys.readouterr().err.endswith(
        f"stowage: database error: The database {path} cannot store anything: "
        "attempt to write a readonly database\n"
    )


def test_a_client_is_told_why_and_the_log_which_file(tmp_path, caplog):
    path = not_a_database(tmp_path)
    database = Database.from_url(f"sqlite:///{path}")
    try:
        with caplog.at_level(logging.ERROR, logger="stowage.storage.database"):
            answer = Client(create_app(test_conf(), database)).get("/resource_providers")
    finally:
        database.dispose()
    assert answer.status == 503, answer.body
    (error,) = answer.json()["errors"]
    assert "not a database" in error["detail"] and str(tmp_path) not in error["detail"]
    assert f"The database {path} cannot store anything: file is not a database" in caplog.text
