"""Schema changes only through migrations: the migration head equals schema.py."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, insert, inspect, select

from graphrun.storage import migrations, open_database
from graphrun.storage.schema import (
    checkpoint_writes,
    checkpoints,
    metadata,
    run_events,
    run_totals,
    runs,
    signals,
)


async def test_migration_head_matches_schema_module(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path}/m.db")
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
    db = await open_database(f"sqlite:///{tmp_path}/m.db")
    try:
        await migrations.upgrade(db)
        await migrations.check_current(db)
    finally:
        await db.close()


def finished_run_at_0006(conn: Connection) -> str:
    """Bring a database to revision 0006 and store a finished run with something of each."""
    migrations.upgrade_on(conn, "0006")
    run_id = "r-0006"
    conn.execute(
        insert(runs).values(
            id=run_id,
            workflow="app.flow",
            definition_version="v1",
            status="completed",
            input={},
            input_hash="h",
            created_at=1.0,
            updated_at=2.0,
            finished_at=2.0,
        )
    )
    for n in range(2):
        conn.execute(
            insert(checkpoints).values(
                thread_id=run_id,
                checkpoint_id=f"c{n}",
                type="msgpack",
                checkpoint=b"x" * 100,
                metadata_type="json",
                metadata=b"{}",
                created_at=1.0,
            )
        )
    conn.execute(
        insert(checkpoint_writes).values(
            thread_id=run_id,
            checkpoint_id="c0",
            task_id="t",
            idx=0,
            channel="a",
            type="json",
            value=b"12345",
        )
    )
    for kind in ("status", "status"):
        conn.execute(insert(run_events).values(run_id=run_id, kind=kind, data={}, created_at=1.0))
    conn.execute(insert(signals).values(run_id=run_id, name="s", created_at=1.0))
    return run_id


def assert_backfilled(conn: Connection, run_id: str) -> None:
    """Migration 0007 counted what the run holds onto its row."""
    row = conn.execute(
        select(
            runs.c.n_checkpoints,
            runs.c.n_writes,
            runs.c.n_events,
            runs.c.n_signals,
            runs.c.checkpoint_bytes,
        ).where(runs.c.id == run_id)
    ).one()
    assert tuple(row) == (2, 1, 2, 1, 2 * (100 + 2) + 5)
    summed = conn.execute(
        select(
            run_totals.c.status,
            run_totals.c.workflow,
            run_totals.c.day,
            run_totals.c.runs,
            run_totals.c.n_checkpoints,
            run_totals.c.checkpoint_bytes,
        )
    ).all()
    assert [tuple(r) for r in summed] == [("completed", "app.flow", 0, 1, 2, 209)]


def test_migration_0007_counts_what_finished_runs_hold(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    try:
        with engine.begin() as conn:
            run_id = finished_run_at_0006(conn)
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
            assert_backfilled(conn, run_id)
    finally:
        engine.dispose()
