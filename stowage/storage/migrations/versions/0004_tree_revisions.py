"""Read models patched, never rebuilt: per-tree revisions and catalog triggers that name trees.

- ``stowage_tree_revisions`` keeps, for every tree, the last revision that
  changed it, folded in from the feed rows the prune removes
  (``storage.common.apply_revision_bump``). A read model further behind than
  the feed keeps asks it which trees changed, instead of reloading
  everything. Root 0 stands for every tree: it is written here at the
  current revision, because the feed rows pruned before this migration were
  not folded in, and for the feed's old NULL ("every tree") rows.
- A resource class renamed or deleted, or a trait deleted, notes the trees
  whose inventories, allocations or traits name it, not every tree; the
  triggers of 0002 that noted NULL are replaced.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from stowage.storage.backends import backend_for
from stowage.storage.backends.feed import CatalogUse
from stowage.storage.ddl import create_index, create_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_CATALOG_USES = [
    CatalogUse("resource_classes", "inventories", "resource_class_id"),
    CatalogUse("resource_classes", "allocations", "resource_class_id"),
    CatalogUse("traits", "resource_provider_traits", "trait_id"),
]


def upgrade() -> None:
    create_table(
        "stowage_tree_revisions",
        sa.Column("root_provider_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )
    create_index("ix_stowage_tree_revisions_revision", "stowage_tree_revisions", ["revision"])
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM stowage_tree_revisions WHERE root_provider_id = 0")).first() is None:
        op.execute(
            "INSERT INTO stowage_tree_revisions (root_provider_id, revision) "
            "SELECT 0, COALESCE(MAX(revision), 0) FROM stowage_revision"
        )
    for statement in backend_for(bind).change_feed_triggers((), _CATALOG_USES):
        op.execute(statement)


def downgrade() -> None:
    for statement in backend_for(op.get_bind()).drop_change_feed_triggers((), _CATALOG_USES):
        op.execute(statement)
    op.drop_table("stowage_tree_revisions")
