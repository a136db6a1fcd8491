"""Sessions never leak: 10,000 API requests, 30% of them on error paths, leave the pools as
they were, and no request waits for a connection in vain."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from graphrun.api import create_app
from tests.conftest import EngineFactory

REQUESTS = 10_000
AT_ONCE = 32


def checked_out(engine: Any) -> int:
    db = engine.db
    pools = {id(e.pool): e.pool for e in (db._writer_engine, db._reader_engine) if e is not None}
    return sum(pool.checkedout() for pool in pools.values())


@pytest.mark.acceptance
@pytest.mark.both_databases
async def test_ten_thousand_requests_with_errors_leave_no_session_behind(
    make_engine: EngineFactory,
) -> None:
    rng = random.Random(20261126)
    async with make_engine("linear", run_worker=False) as engine:
        token = (await engine.keys.create("writer", ["write"])).token
        run = await engine.start("linear.ten", {"x": 0})
        before = checked_out(engine)
        transport = httpx.ASGITransport(app=create_app(engine))
        auth = {"Authorization": f"Bearer {token}"}
        good = [
            ("GET", "/runs?limit=20", None, auth),
            ("GET", f"/runs/{run.id}", None, auth),
            ("GET", "/workflows", None, auth),
            ("POST", "/runs", {"workflow": "linear.ten", "input": {"x": 1}}, auth),
        ]
        bad = [
            ("GET", f"/runs/{uuid.uuid4()}", None, auth),  # 404
            ("POST", "/runs", {"workflow": "linear.ten", "input": {"x": "no"}}, auth),  # 422
            ("POST", f"/runs/{run.id}/resume", {"value": 1}, auth),  # 409: it is queued
            ("GET", "/runs", None, {}),  # 401
            ("POST", "/runs", {"workflow": "nope.nope", "input": {}}, auth),  # 404
            ("GET", "/runs?limit=-1", None, auth),  # 422
        ]
        plan = [
            rng.choice(bad) if rng.random() < 0.3 else rng.choice(good) for _ in range(REQUESTS)
        ]
        statuses: Counter[int] = Counter()
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def send(method: str, url: str, body: Any, headers: dict[str, str]) -> None:
                answer = await client.request(method, url, json=body, headers=headers)
                statuses[answer.status_code] += 1

            for i in range(0, REQUESTS, AT_ONCE):
                await asyncio.gather(*(send(*request) for request in plan[i : i + AT_ONCE]))
        after = checked_out(engine)
    errors = sum(n for code, n in statuses.items() if code >= 400)
    assert sum(statuses.values()) == REQUESTS
    assert not [code for code in statuses if code >= 500], statuses  # no pool time-out (503)
    assert 0.25 * REQUESTS < errors < 0.35 * REQUESTS, statuses
    assert after == before, (before, after)  # every session went back to its pool
    print(f"{REQUESTS} requests {dict(statuses)}; checked-out connections {before} -> {after}")
