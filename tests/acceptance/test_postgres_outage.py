"""PostgreSQL unreachable for 5 s in the middle of a batch (issue 5, docs/RELIABILITY.md R9).

Every connection of the test database is terminated again and again for five seconds
(``pg_terminate_backend``) while a worker executes runs and a client keeps starting more
with idempotency keys, retrying what failed. Afterwards: runs lost 0, duplicates 0, and
everything completes.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from graphrun import RunStatus, StorageError
from tests.acceptance.test_scale_out import every_run
from tests.conftest import APPS, EngineFactory

PRIMITIVES = APPS / "primitives"
OUTAGE_S = 5.0


async def _outage(db_url: str, seconds: float) -> int:
    """Terminate every other connection to the database, over and over; return how many."""
    terminated = 0
    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            cursor = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
            terminated += int(row[0]) if row else 0
            await asyncio.sleep(0.05)  # a storm of disconnects, not one
    return terminated


@pytest.mark.acceptance
@pytest.mark.postgres_only
@pytest.mark.timeout(300)
async def test_a_5_s_outage_loses_no_run_and_duplicates_none(
    make_engine: EngineFactory, db_url: str, tmp_path
) -> None:
    effects = tmp_path / "effects.log"
    value = {"x": 0, "effects": str(effects), "pause": 0.05}
    refused = 0

    async def start(key: str) -> None:
        nonlocal refused
        while True:  # what a careful client does: retry with the same idempotency key
            try:
                await engine.start("primitives.six", value, idempotency_key=key)
                return
            except StorageError:
                refused += 1
                await asyncio.sleep(0.1)

    async with make_engine(PRIMITIVES, busy_timeout_s=2.0) as engine:
        first = [asyncio.ensure_future(start(f"before-{i}")) for i in range(20)]
        await asyncio.gather(*first)
        outage = asyncio.ensure_future(_outage(db_url, OUTAGE_S))
        during = [asyncio.ensure_future(start(f"during-{i}")) for i in range(20)]
        terminated = await outage
        await asyncio.gather(*during)
        deadline = time.monotonic() + 120
        while (await engine.list_runs(status=["queued", "running"], limit=1)).runs:
            assert time.monotonic() < deadline, "runs did not finish after the outage"
            await asyncio.sleep(0.2)  # runs are requeued by lease expiry: poll
        runs = await every_run(engine)
    keys = [r.idempotency_key for r in runs]
    done = [r for r in runs if r.status is RunStatus.COMPLETED and r.output["x"] == 6]
    print(
        f"\n5 s outage: connections terminated {terminated}, starts refused and retried "
        f"{refused}, runs {len(runs)} (expected 40), duplicates {len(keys) - len(set(keys))}, "
        f"completed right {len(done)}"
    )
    assert terminated > 0
    assert sorted(keys) == sorted(
        [f"before-{i}" for i in range(20)] + [f"during-{i}" for i in range(20)]
    )
    assert len(done) == 40
