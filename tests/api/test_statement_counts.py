"""No N+1: listing 10, 100 or 1000 runs over HTTP takes the same few SQL statements.

A page holds at most 500 runs: the 1000 are two requests, each as cheap as the first.
"""

from __future__ import annotations

import asyncio

import httpx

from graphrun.api import create_app
from tests.conftest import EngineFactory
from tests.integration.test_query_plans import captured


async def test_listing_runs_issues_a_constant_few_statements(make_engine: EngineFactory) -> None:
    async with make_engine("linear", run_worker=False) as engine:
        await asyncio.gather(*(engine.start("linear.ten", {"x": i}) for i in range(1000)))
        token = (await engine.keys.create("reader", ["read"])).token
        transport = httpx.ASGITransport(app=create_app(engine))
        counts = {}
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            await client.get("/runs", params={"limit": 1})  # warm: key cached, statements built
            for limit in (10, 100, 500):
                with captured(engine) as statements:
                    answer = await client.get(
                        "/runs", params={"limit": limit, "workflow": "linear.ten"}
                    )
                assert answer.status_code == 200
                assert len(answer.json()["runs"]) == limit
                counts[limit] = len(statements)
            with captured(engine) as statements:  # all 1000, page by page
                listed, cursor = 0, None
                while True:
                    params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                    page = (await client.get("/runs", params=params)).json()
                    listed += len(page["runs"])
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
            counts[1000] = len(statements)
    assert listed == 1000
    assert counts[10] == counts[100] == counts[500], counts
    assert counts[10] <= 3, counts
    assert counts[1000] <= 3 * counts[500], counts  # two pages (and an empty third at most)
    print(f"SQL statements per GET /runs by page size: {counts}")
