"""`GET /runs/{id}/events` over a real uvicorn: pushed as they happen, resumable, protected."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from tests.conftest import EngineFactory


async def _events(response: httpx.Response) -> AsyncIterator[dict]:
    """Parse an SSE stream into events (id, event, data)."""
    event: dict = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(": ")
            event[field] = json.loads(value) if field == "data" else value


async def _start(client: httpx.AsyncClient, workflow: str, x: int) -> str:
    response = await client.post("/runs", json={"workflow": workflow, "input": {"x": x}})
    assert response.status_code == 202
    return response.json()["id"]


async def test_events_are_pushed_through_a_wait_until_the_run_ends(
    make_engine: EngineFactory, live_server
) -> None:
    # Polling every hour: if events were not pushed, this test would hang, not pass.
    async with make_engine("gated", poll_interval_s=3600) as engine:
        token = (await engine.keys.create("sse", ["write"])).token
        url = await live_server(engine)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            run_id = await _start(client, "gated.quick", 95)
            seen: list[dict] = []
            async with client.stream("GET", f"/runs/{run_id}/events") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for event in _events(response):
                    seen.append(event)
                    if event["data"]["data"].get("status") == "waiting":
                        resumed = await client.post(
                            f"/runs/{run_id}/resume", json={"value": {"ok": True}}
                        )
                        assert resumed.status_code == 200
            statuses = [e["data"]["data"]["status"] for e in seen if e["event"] == "status"]
            nodes = [e["data"]["data"]["node"] for e in seen if e["event"] == "node"]
            assert statuses[0] == "queued"
            assert "waiting" in statuses
            assert statuses[-1] == "completed"  # the stream ended with the run
            assert nodes == [f"q{i}" for i in range(10)] + ["ask"]
            ids = [int(e["id"]) for e in seen]
            assert ids == sorted(ids)
            assert len(set(ids)) == len(ids)
            assert all(e["data"]["run_id"] == run_id for e in seen)


async def test_last_event_id_resumes_exactly_after_it(
    make_engine: EngineFactory, live_server
) -> None:
    async with make_engine("linear") as engine:
        url = await live_server(engine, auth=False)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            run_id = await _start(client, "linear.ten", 0)
            async with client.stream("GET", f"/runs/{run_id}/events") as response:
                everything = [e async for e in _events(response)]
            assert everything[-1]["data"]["data"]["status"] == "completed"
            cut = everything[4]["id"]
            headers = {"Last-Event-ID": cut}
            async with client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
                rest = [e async for e in _events(response)]
            assert [e["id"] for e in rest] == [e["id"] for e in everything[5:]]
            async with client.stream(
                "GET", f"/runs/{run_id}/events", params={"after": everything[-2]["id"]}
            ) as response:
                assert [e["id"] async for e in _events(response)] == [everything[-1]["id"]]
            bad = await client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "x"})
            assert bad.status_code == 422


async def test_the_stream_needs_a_key(make_engine: EngineFactory, live_server) -> None:
    async with make_engine("linear") as engine:
        url = await live_server(engine)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            run_id = "01a21561-41a9-713d-a9cb-74414cb50833"
            response = await client.get(f"/runs/{run_id}/events")
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/json"


async def test_a_stream_ends_cleanly_when_the_server_shuts_down(
    make_engine: EngineFactory, live_server
) -> None:
    async with make_engine("gated") as engine:
        url = await live_server(engine, auth=False)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            run_id = await _start(client, "gated.quick", 95)
            async with client.stream("GET", f"/runs/{run_id}/events") as response:
                seen = []
                async for event in _events(response):
                    seen.append(event)
                    if event["data"]["data"].get("status") == "waiting":
                        live_server.app.state.shutdown.set()  # what SIGTERM does
            # The stream ended (no truncated chunk); the run still waits, resumable later.
            assert seen[-1]["data"]["data"]["status"] == "waiting"
            assert (await engine.get(run_id)).status.value == "waiting"


async def test_a_stream_ends_when_its_key_is_revoked(
    make_engine: EngineFactory, live_server, monkeypatch
) -> None:
    from graphrun.api.routes import events

    monkeypatch.setattr(events, "KEEPALIVE_S", 0.05)
    async with make_engine("gated") as engine:
        issued = await engine.keys.create("watcher", ["write"])
        url = await live_server(engine)
        headers = {"Authorization": f"Bearer {issued.token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            run_id = await _start(client, "gated.quick", 95)
            async with client.stream("GET", f"/runs/{run_id}/events") as response:
                async for event in _events(response):
                    if event["data"]["data"].get("status") == "waiting":
                        await engine.keys.revoke(issued.record.id)
            assert (await client.get(f"/runs/{run_id}")).status_code == 401


async def test_a_busy_stream_still_checks_its_key(monkeypatch) -> None:
    """Events arriving faster than the keep-alive interval do not skip the key check."""
    import asyncio

    from graphrun.api.routes import events as module
    from graphrun.storage.records import EventRecord

    async def endless():  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        i = 0
        while True:
            i += 1
            await asyncio.sleep(0.001)
            yield EventRecord(id=i, run_id="r", kind="node", data={}, created_at=datetime.now(UTC))

    checks = 0

    async def revoked() -> bool:
        nonlocal checks
        checks += 1
        return False

    monkeypatch.setattr(module, "KEEPALIVE_S", 0.02)
    frames = [
        f
        async for f in module._stream(
            endless(), max_s=5, shutdown=asyncio.Event(), still_allowed=revoked
        )
    ]
    assert checks == 1
    assert frames  # it streamed until the first check, then stopped
