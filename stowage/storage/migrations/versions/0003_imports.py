"""Record of finished imports from upstream Placement (``stowage_imports``).

``stowage db import`` mirrors an upstream database; this table lets a later
import tell whether Stowage has taken writes since the last one, and refuse
to discard them unless told to.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from stowage.storage.ddl import create_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "stowage_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("stowage_imports")
