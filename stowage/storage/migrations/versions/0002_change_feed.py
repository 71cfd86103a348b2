"""Change feed: which trees each committed revision touched.

``stowage_changes`` gets one row per changed row of the provider tables,
written by triggers so no write path can forget it: the root of the tree
the row belongs to, or NULL for a catalog change (a resource class or trait
renamed or deleted) that every tree may see. ``revision`` is NULL until the
writing transaction stamps its rows with its own revision just before it
commits (``storage.common.apply_revision_bump``).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

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
_CATALOG_TABLES = ["resource_classes", "traits"]


def upgrade() -> None:
    op.create_table(
        "stowage_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=True),
        sa.Column("root_provider_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_stowage_changes_revision", "stowage_changes", ["revision"])
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _root_of(row: str) -> str:
    return f"(SELECT root_provider_id FROM resource_providers WHERE id = {row}.resource_provider_id)"


def _sqlite_triggers() -> None:
    for table, stem in _PROVIDER_ROW_TABLES:
        for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["NEW", "OLD"]), ("DELETE", ["OLD"])):
            inserts = " ".join(
                f"INSERT INTO stowage_changes (root_provider_id) VALUES ({_root_of(row)});"
                for row in rows
            )
            op.execute(
                f"CREATE TRIGGER stowage_change_{stem}_{event.lower()} AFTER {event} ON {table} "
                f"FOR EACH ROW BEGIN {inserts} END"
            )
    for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["NEW", "OLD"]), ("DELETE", ["OLD"])):
        inserts = " ".join(
            f"INSERT INTO stowage_changes (root_provider_id) SELECT {row}.root_provider_id "
            f"WHERE {row}.root_provider_id IS NOT NULL;"
            for row in rows
        )
        op.execute(
            f"CREATE TRIGGER stowage_change_providers_{event.lower()} AFTER {event} "
            f"ON resource_providers FOR EACH ROW BEGIN {inserts} END"
        )
    for table in _CATALOG_TABLES:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER stowage_change_{table}_{event.lower()} AFTER {event} ON {table} "
                "FOR EACH ROW BEGIN INSERT INTO stowage_changes (root_provider_id) VALUES (NULL); END"
            )


def _postgresql_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION stowage_note_provider_row() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO stowage_changes (root_provider_id)
                SELECT root_provider_id FROM resource_providers WHERE id = NEW.resource_provider_id;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                INSERT INTO stowage_changes (root_provider_id)
                SELECT root_provider_id FROM resource_providers WHERE id = OLD.resource_provider_id;
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE FUNCTION stowage_note_provider() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.root_provider_id IS NOT NULL THEN
                INSERT INTO stowage_changes (root_provider_id) VALUES (NEW.root_provider_id);
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.root_provider_id IS NOT NULL THEN
                INSERT INTO stowage_changes (root_provider_id) VALUES (OLD.root_provider_id);
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE FUNCTION stowage_note_catalog() RETURNS trigger AS $$
        BEGIN
            INSERT INTO stowage_changes (root_provider_id) VALUES (NULL);
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    for table, stem in _PROVIDER_ROW_TABLES:
        op.execute(
            f"CREATE TRIGGER stowage_change_{stem} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION stowage_note_provider_row()"
        )
    op.execute(
        "CREATE TRIGGER stowage_change_providers AFTER INSERT OR UPDATE OR DELETE "
        "ON resource_providers FOR EACH ROW EXECUTE FUNCTION stowage_note_provider()"
    )
    for table in _CATALOG_TABLES:
        op.execute(
            f"CREATE TRIGGER stowage_change_{table} AFTER UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION stowage_note_catalog()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, stem in _PROVIDER_ROW_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS stowage_change_{stem} ON {table}")
        op.execute("DROP TRIGGER IF EXISTS stowage_change_providers ON resource_providers")
        for table in _CATALOG_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS stowage_change_{table} ON {table}")
        for function in ("stowage_note_provider_row", "stowage_note_provider", "stowage_note_catalog"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("stowage_changes")
