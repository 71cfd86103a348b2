"""Database URLs from an existing placement.conf, and the drivers they get."""
from __future__ import annotations

import pytest

from stowage.conf import database_url
from stowage.storage.database import Database
from tests.support import test_conf


@pytest.mark.parametrize(
    ("configured", "served"),
    [
        ("postgresql://u:p@db/placement", "postgresql+psycopg://u:p@db/placement"),
        ("postgresql+psycopg2://u:p@db/placement", "postgresql+psycopg://u:p@db/placement"),
        ("mysql://u:p@db/placement", "mysql+pymysql://u:p@db/placement"),
        ("mysql+mysqldb://u:p@db/placement?charset=utf8", "mysql+pymysql://u:p@db/placement?charset=utf8"),
        ("mysql+pymysql://u:p@db/placement", "mysql+pymysql://u:p@db/placement"),
        ("mariadb://u:p@db/placement", "mariadb+pymysql://u:p@db/placement"),
        ("sqlite:////var/lib/placement/placement.sqlite", "sqlite:////var/lib/placement/placement.sqlite"),
    ],
)
def test_an_operators_url_is_served_with_the_driver_stowage_ships(configured, served):
    conf = test_conf(placement_database={"connection": configured})
    assert database_url(conf) == served


@pytest.mark.parametrize(
    ("configured", "charset"),
    [
        ("mysql://u:p@db/placement", "utf8mb4"),
        # utf8 (three bytes at most) is what many placement.conf files say;
        # utf8mb4 is a superset, so names with emoji still fit.
        ("mysql+pymysql://u:p@db/placement?charset=utf8", "utf8mb4"),
        ("mysql+pymysql://u:p@db/placement?charset=latin1", "latin1"),
    ],
)
def test_a_mysql_engine_speaks_utf8mb4_unless_told_otherwise(configured, charset):
    database = Database.from_conf(test_conf(placement_database={"connection": configured}))
    try:
        assert database.engine.dialect.driver == "pymysql"
        assert database.engine.url.query["charset"] == charset
        assert database.backend.name == "mysql"
    finally:
        database.dispose()
