"""Alembic environment: always driven programmatically by Database.upgrade."""
from alembic import context

from stowage.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
