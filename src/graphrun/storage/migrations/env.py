"""Alembic environment: always run on a connection graphrun hands in."""

from __future__ import annotations

from alembic import context

from graphrun.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("graphrun migrations run through graphrun.storage.migrations.upgrade().")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
