"""Tables, as SQLAlchemy Core metadata. Alembic migrations create them.

Timestamps are naive UTC. Every provider write bumps ``generation``;
every consumer allocation write bumps the consumer's ``generation``.

On MySQL the migrations also give every table a binary collation (see
``storage.backends.mysql``), so string columns compare exactly there too.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# Double precision everywhere: MySQL's FLOAT alone is single precision.
RATIO = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


def _timestamps() -> list[Column]:
    return [Column("created_at", DateTime), Column("updated_at", DateTime)]


resource_classes = Table(
    "resource_classes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    *_timestamps(),
)

traits = Table(
    "traits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    *_timestamps(),
)

resource_providers = Table(
    "resource_providers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("generation", Integer, nullable=False, default=0),
    Column("root_provider_id", Integer, ForeignKey("resource_providers.id"), index=True),
    Column("parent_provider_id", Integer, ForeignKey("resource_providers.id"), index=True),
    *_timestamps(),
)

inventories = Table(
    "inventories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "resource_provider_id",
        Integer,
        ForeignKey("resource_providers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("resource_class_id", Integer, ForeignKey("resource_classes.id"), nullable=False),
    Column("total", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("min_unit", Integer, nullable=False),
    Column("max_unit", Integer, nullable=False),
    Column("step_size", Integer, nullable=False),
    Column("allocation_ratio", RATIO, nullable=False),
    *_timestamps(),
    UniqueConstraint("resource_provider_id", "resource_class_id"),
    Index("ix_inventories_resource_class_id", "resource_class_id"),
)

aggregates = Table(
    "placement_aggregates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    *_timestamps(),
)

provider_aggregates = Table(
    "resource_provider_aggregates",
    metadata,
    Column(
        "resource_provider_id",
        Integer,
        ForeignKey("resource_providers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("aggregate_id", Integer, ForeignKey("placement_aggregates.id"), primary_key=True),
    *_timestamps(),
    Index("ix_resource_provider_aggregates_aggregate_id", "aggregate_id"),
)

provider_traits = Table(
    "resource_provider_traits",
    metadata,
    Column(
        "resource_provider_id",
        Integer,
        ForeignKey("resource_providers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("trait_id", Integer, ForeignKey("traits.id"), primary_key=True),
    *_timestamps(),
    Index("ix_resource_provider_traits_trait_id", "trait_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(255), nullable=False, unique=True),
    *_timestamps(),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(255), nullable=False, unique=True),
    *_timestamps(),
)

consumer_types = Table(
    "consumer_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    *_timestamps(),
)

consumers = Table(
    "consumers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("consumer_type_id", Integer, ForeignKey("consumer_types.id"), nullable=True),
    *_timestamps(),
    Index("ix_consumers_project_user", "project_id", "user_id"),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "resource_provider_id", Integer, ForeignKey("resource_providers.id"), nullable=False
    ),
    Column("consumer_id", Integer, ForeignKey("consumers.id"), nullable=False),
    Column("resource_class_id", Integer, ForeignKey("resource_classes.id"), nullable=False),
    Column("used", Integer, nullable=False),
    *_timestamps(),
    Index("ix_allocations_provider_class", "resource_provider_id", "resource_class_id"),
    Index("ix_allocations_consumer_id", "consumer_id"),
)

# A single-row counter bumped in the same transaction as every write, so
# in-memory read models in each worker can tell cheaply whether they are stale.
revision = Table(
    "stowage_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# The change feed: roots of the trees each revision touched. Filled by
# triggers (migrations 0002 and 0004); each writing transaction stamps its
# rows with its revision just before commit. (NULL roots, "every tree",
# were written for catalog changes before 0004.)
changes = Table(
    "stowage_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=True, index=True),
    Column("root_provider_id", Integer, nullable=True),
)

# What the feed's pruned rows said: the last revision that changed each
# tree, for read models further behind than the feed keeps (migration
# 0004). Root 0 stands for every tree.
tree_revisions = Table(
    "stowage_tree_revisions",
    metadata,
    Column("root_provider_id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False, index=True),
)


# One row per ``stowage db import``, written as it starts (finished_at NULL)
# and completed with the revision it left the data at. A later import that
# finds the revision moved on knows Stowage has taken writes since, which
# mirroring upstream again would discard.
imports = Table(
    "stowage_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(255), nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)
