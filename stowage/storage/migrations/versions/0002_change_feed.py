"""Change feed: which trees each committed revision touched.

``stowage_changes`` gets one row per changed row of the provider tables,
written by triggers so no write path can forget it: the root of the tree
the row belongs to. (This migration once also noted NULL, "every tree",
for a catalog change; 0004 notes the trees a catalog row's change reaches
instead, and a fresh database gets only 0004's catalog triggers.) ``revision`` is unset (NULL;
on MySQL a mark of the writing connection) until the writing transaction
stamps its rows with its own revision just before it commits
(``storage.common.apply_revision_bump``).

The triggers' DDL comes from the backend (``Backend.change_feed_triggers``):
PostgreSQL shares three plpgsql functions, SQLite and MySQL have one
trigger per table and event, and MySQL marks unstamped rows its own way.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from stowage.storage.backends import backend_for
from stowage.storage.ddl import create_index, create_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Tables whose rows belong to one provider: (table, trigger name stem).
_PROVIDER_ROW_TABLES = [
    ("allocations", "allocations"),
    ("inventories", "inventories"),
    ("resource_provider_traits", "provider_traits"),
    ("resource_provider_aggregates", "provider_aggregates"),
]


def upgrade() -> None:
    create_table(
        "stowage_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=True),
        sa.Column("root_provider_id", sa.Integer(), nullable=True),
    )
    create_index("ix_stowage_changes_revision", "stowage_changes", ["revision"])
    for statement in backend_for(op.get_bind()).change_feed_triggers(_PROVIDER_ROW_TABLES, ()):
        op.execute(statement)


def downgrade() -> None:
    for statement in backend_for(op.get_bind()).drop_change_feed_triggers(_PROVIDER_ROW_TABLES, ()):
        op.execute(statement)
    op.drop_table("stowage_changes")
