"""Schema changes only through migrations: the migration head equals schema.py."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from graphrun.storage import Database, migrations
from graphrun.storage.schema import metadata


async def test_migration_head_matches_schema_module(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path}/m.db")
    await db.close()
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
        assert diff == []
        assert MigrationContext.configure(conn).get_current_revision() == migrations.head_revision()
        indexes = {i["name"] for i in inspect(conn).get_indexes("runs")}
    engine.dispose()
    assert {
        "ix_runs_status_created_at_id",
        "ix_runs_workflow_status_created_at_id",
        "ix_runs_lease_owner",
    } <= indexes
    # Heartbeats and checkpoints set these at every step: no index may hold them (HOT).
    hot = {"lease_expires_at", "checkpoint_id", "resume"}
    assert not any(hot & set(i.columns) for i in metadata.tables["runs"].indexes)
    assert "ix_runs_status_lease_expires_at" not in indexes


async def test_upgrade_twice_changes_nothing(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path}/m.db")
    try:
        await migrations.upgrade(db)
        await migrations.check_current(db)
    finally:
        await db.close()
