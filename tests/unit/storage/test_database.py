"""The SQLite recipe: pragmas, single writer with group commit, errors mapped to our types."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from graphrun import errors
from graphrun.storage import Database, lifecycle, migrations, open_database
from graphrun.storage import runs as runs_store
from graphrun.storage.records import RunStatus
from graphrun.storage.runs import Change
from tests.unit.storage.test_runs import new_run


@pytest.mark.sqlite_only
async def test_sqlite_connections_use_wal_full_sync_and_foreign_keys(db: Database) -> None:
    def pragmas(conn):  # type: ignore[no-untyped-def]
        return [
            conn.execute(text(f"PRAGMA {p}")).scalar()
            for p in ("journal_mode", "foreign_keys", "busy_timeout")
        ]

    assert await db.read(pragmas) == ["wal", 1, 30000]

    def sync_level(conn):  # type: ignore[no-untyped-def]
        return (conn.execute(text("PRAGMA synchronous"))).scalar()

    assert await db.write(sync_level) == 2  # FULL


async def test_normal_synchronous_is_an_explicit_setting(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path}/n.db", synchronous="normal")
    try:

        def sync_level(conn):  # type: ignore[no-untyped-def]
            return (conn.execute(text("PRAGMA synchronous"))).scalar()

        assert await db.write(sync_level) == 1
    finally:
        await db.close()


@pytest.mark.sqlite_only
async def test_concurrent_writes_are_group_committed_without_losing_any(db: Database) -> None:
    run, _ = await lifecycle.insert(db, new_run())

    def bump(conn):  # type: ignore[no-untyped-def]
        # read-modify-write: lost updates would show as a smaller final count
        current = (
            conn.execute(text("SELECT attempts FROM runs WHERE id = :id"), {"id": run.id})
        ).scalar()
        conn.execute(
            text("UPDATE runs SET attempts = :n WHERE id = :id"), {"n": current + 1, "id": run.id}
        )

    await asyncio.gather(*(db.write(bump) for _ in range(500)))
    current = await runs_store.get(db, run.id)
    assert current is not None
    assert current.attempts == 500


async def test_failing_job_rolls_back_only_itself(db: Database) -> None:
    first, _ = await lifecycle.insert(db, new_run())

    def fail(conn):  # type: ignore[no-untyped-def]
        conn.execute(text("UPDATE runs SET attempts = 99 WHERE id = :id"), {"id": first.id})
        raise RuntimeError("job failed")

    results = await asyncio.gather(
        db.write(fail), lifecycle.insert(db, new_run()), return_exceptions=True
    )
    assert isinstance(results[0], RuntimeError)
    assert not isinstance(results[1], BaseException)
    current = await runs_store.get(db, first.id)
    assert current is not None
    assert current.attempts == 0


async def test_lock_held_past_busy_timeout_is_storage_busy_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    db = await open_database(f"sqlite:///{path}", busy_timeout_s=0.2)
    try:
        run, _ = await lifecycle.insert(db, new_run())
        foreign = sqlite3.connect(path, isolation_level=None)
        foreign.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(errors.StorageBusy) as info:
                await lifecycle.transition(
                    db,
                    run.id,
                    action="cancel",
                    allowed=(RunStatus.QUEUED,),
                    change=Change(status=RunStatus.CANCELLED),
                )
            assert info.value.http_status == 503
        finally:
            foreign.execute("ROLLBACK")
            foreign.close()
        current = await runs_store.get(db, run.id)
        assert current is not None
        assert current.status is RunStatus.QUEUED
        # the engine continues once the lock is released
        await lifecycle.insert(db, new_run())
    finally:
        await db.close()


async def test_a_lock_released_within_busy_timeout_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "wait.db"
    db = await open_database(f"sqlite:///{path}", busy_timeout_s=10)
    try:
        run, _ = await lifecycle.insert(db, new_run())
        foreign = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        foreign.execute("BEGIN IMMEDIATE")
        # The writer must wait for the lock on its thread, not fail, and not block the loop.
        asyncio.get_running_loop().call_later(0.3, foreign.execute, "ROLLBACK")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        moved = await lifecycle.transition(
            db,
            run.id,
            action="cancel",
            allowed=(RunStatus.QUEUED,),
            change=Change(status=RunStatus.CANCELLED),
        )
        ticking.cancel()
        foreign.close()
        assert moved.status is RunStatus.CANCELLED
        assert ticks > 5  # the event loop kept running while the writer waited
    finally:
        await db.close()


async def test_disk_full_is_storage_full_and_the_database_stays_intact(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    db = await open_database(f"sqlite:///{path}")
    try:
        await lifecycle.insert(db, new_run())

        def cap(conn):  # type: ignore[no-untyped-def]
            pages = (conn.execute(text("PRAGMA page_count"))).scalar()
            conn.execute(text(f"PRAGMA max_page_count = {pages + 1}"))

        await db.write(cap)
        big = new_run()
        big = runs_store.NewRun(**{**big.__dict__, "input": {"blob": "x" * 200_000}})
        with pytest.raises(errors.StorageFull) as info:
            await lifecycle.insert(db, big)
        assert info.value.http_status == 507
        assert await runs_store.get(db, big.id) is None
    finally:
        await db.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


async def test_memory_database_is_refused() -> None:
    with pytest.raises(errors.StorageError, match="in-memory"):
        await open_database("sqlite:///:memory:")


async def test_missing_folder_is_database_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.DatabaseUnavailable):
        await open_database(f"sqlite:///{tmp_path}/nope/x.db")


async def test_schema_check_without_migrating_reports_migration_required(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(errors.MigrationRequired, match="graphrun db upgrade"):
        await open_database(f"sqlite:///{tmp_path}/empty.db", migrate=False)
    db = await open_database(f"sqlite:///{tmp_path}/empty.db")
    await db.close()
    db = await open_database(f"sqlite:///{tmp_path}/empty.db", migrate=False)
    await db.close()
    assert migrations.head_revision() == "0009"


async def test_a_commit_that_fails_leaves_the_writer_usable(db: Database) -> None:
    def schema(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    await db.write(schema)

    def orphan(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("INSERT INTO child VALUES (42)")  # fails only at COMMIT

    with pytest.raises(errors.StorageError, match="foreign key"):
        await db.write(orphan)
    run, created = await lifecycle.insert(db, new_run())
    assert created
    assert (await runs_store.get(db, run.id)) is not None


@pytest.mark.sqlite_only
async def test_read_point_answers_without_holding_a_snapshot_open(
    db: Database, db_url: str
) -> None:
    run = await lifecycle.insert(db, new_run())
    found = await runs_store.get(db, run[0].id)
    assert found is not None
    assert found.id == run[0].id
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    try:
        # busy == 0: no reader (the point-read connection included) pins the WAL.
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        other.close()
    assert busy == 0
    assert await runs_store.get(db, "0190a0b0-0000-7000-8000-000000000000") is None
