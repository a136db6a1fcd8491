"""Storage faults over HTTP (docs/RELIABILITY.md R13, R14): 503 + Retry-After, 507, never a bare 500."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from graphrun.api import create_app
from tests.conftest import EngineFactory

START = {"workflow": "linear.ten", "input": {"x": 1}}


def _client(engine) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine, auth=False)),
        base_url="http://graphrun.test",
    )


@pytest.mark.sqlite_only
async def test_a_lock_held_past_busy_timeout_is_503_with_retry_after(
    make_engine: EngineFactory, db_url: str
) -> None:
    async with make_engine("linear", busy_timeout_s=0.3) as engine, _client(engine) as client:
        foreign = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        foreign.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            busy = await client.post("/runs", json=START)
        finally:
            foreign.execute("ROLLBACK")
            foreign.close()
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["code"] == "storage_busy"
        assert (await client.get("/runs")).json()["runs"] == []  # nothing was stored
        again = await client.post("/runs", json=START)  # and the engine goes on
        assert again.status_code == 202
        done = await client.get(f"/runs/{again.json()['id']}", params={"wait": 30})
        assert done.json()["status"] == "completed"


@pytest.mark.sqlite_only
async def test_a_full_database_is_507_and_stores_nothing(make_engine: EngineFactory) -> None:
    async with make_engine("linear") as engine, _client(engine) as client:

        def cap(conn) -> None:  # type: ignore[no-untyped-def]
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count = {pages + 1}")

        await engine.db.write(cap)
        big = {"workflow": "linear.ten", "input": {"x": 1, "effects": "x" * 200_000}}
        full = await client.post("/runs", json=big)
        assert full.status_code == 507
        assert full.json()["code"] == "storage_full"
        assert (await client.get("/runs")).json()["runs"] == []


@pytest.mark.postgres_only
async def test_an_unreachable_postgres_is_503_with_retry_after_then_recovers(
    make_engine: EngineFactory, db_url: str
) -> None:
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    admin_url = db_url.rsplit("/", 1)[0] + "/postgres"
    async with make_engine("linear", run_worker=False) as engine, _client(engine) as client:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # The database refuses new connections and loses the ones it had: unreachable.
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                down = await client.post("/runs", json=START)
                ready = await client.get("/readyz")
            finally:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        back = await client.post("/runs", json=START)  # and everything goes on
        listed = (await client.get("/runs")).json()["runs"]
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert down.json()["code"] == "database_unavailable"
    assert ready.status_code == 503
    assert back.status_code == 202
    assert [r["id"] for r in listed] == [back.json()["id"]]  # the refused start stored nothing
