"""Idempotent DDL for the migrations: each step only if it is still missing.

MySQL commits every DDL statement as it runs, so a migration that failed
half-way leaves its first tables behind while Alembic still records the old
revision; running it again must skip what exists. (SQLite and PostgreSQL
roll DDL back with the transaction, so there the checks always pass.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stowage.storage.backends import backend_for


def create_table(name: str, *items: sa.Column | sa.Constraint) -> None:
    """``op.create_table`` with the backend's table options, unless the table exists."""
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(name):
        op.create_table(name, *items, **backend_for(bind).table_options(bind))


def create_index(name: str, table: str, columns: list[str], unique: bool = False) -> None:
    """``op.create_index``, unless ``table`` has an index of that name."""
    if name not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, unique=unique)
