"""The run routes over the ASGI app: start, read, list, steer, history; workflows; probes."""

from __future__ import annotations

import asyncio
from types import ModuleType

import httpx

from tests.api.conftest import Api
from tests.conftest import entered


async def _settled(client: httpx.AsyncClient, run_id: str) -> dict:
    response = await client.get(f"/runs/{run_id}", params={"wait": 30})
    assert response.status_code == 200
    return response.json()


async def test_start_answers_202_with_the_run_and_it_completes(client: httpx.AsyncClient) -> None:
    response = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": 1}})
    assert response.status_code == 202
    run = response.json()
    assert run["workflow"] == "linear.ten"
    assert run["status"] in ("queued", "running")
    assert run["input"] == {"x": 1}
    done = await _settled(client, run["id"])
    assert done["status"] == "completed"
    assert done["output"] == {"x": 11}
    assert done["finished_at"] is not None


async def test_start_does_not_wait_for_a_blocking_step(
    client: httpx.AsyncClient, gated: ModuleType
) -> None:
    response = await client.post("/runs", json={"workflow": "gated.blocking", "input": {"x": 0}})
    assert response.status_code == 202
    await entered(gated)
    still = (await client.get(f"/runs/{response.json()['id']}")).json()
    assert still["status"] == "running"
    gated.GATE.set()
    assert (await _settled(client, still["id"]))["status"] == "completed"


async def test_idempotency_key_returns_the_same_run_or_409(api: Api) -> None:
    body = {"workflow": "linear.ten", "input": {"x": 1}, "idempotency_key": "order-A1"}
    async with api.client("write") as client:
        answers = await asyncio.gather(*(client.post("/runs", json=body) for _ in range(32)))
        assert {r.status_code for r in answers} == {202}
        assert len({r.json()["id"] for r in answers}) == 1
        other = await client.post("/runs", json={**body, "input": {"x": 2}})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    page = await api.engine.list_runs(limit=100)
    assert len(page.runs) == 1
    print(
        f"\nR15 over HTTP: 32 concurrent starts -> 1 run row; different input -> {other.status_code}"
    )


async def test_resume_answers_the_wait_and_conflicts_are_409(client: httpx.AsyncClient) -> None:
    run = (await client.post("/runs", json={"workflow": "gated.quick", "input": {"x": 95}})).json()
    waiting = await _settled(client, run["id"])
    assert waiting["status"] == "waiting"
    [interrupt] = waiting["waiting_for"]
    assert interrupt["kind"] == "input"
    assert interrupt["schema"] == {"type": "object", "required": ["ok"]}

    bad = await client.post(f"/runs/{run['id']}/resume", json={"value": {"nope": 1}})
    assert bad.status_code == 422
    assert bad.json()["details"]["errors"][0]["pointer"].startswith("/value")
    stale = await client.post(
        f"/runs/{run['id']}/resume", json={"value": {"ok": True}, "interrupt_id": "not-it"}
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_interrupt"
    assert (await client.get(f"/runs/{run['id']}")).json()["status"] == "waiting"

    answers = await asyncio.gather(
        *(client.post(f"/runs/{run['id']}/resume", json={"value": {"ok": True}}) for _ in range(8))
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 7
    assert all(r.json()["code"] == "invalid_transition" for r in answers if r.status_code == 409)
    done = await _settled(client, run["id"])
    assert done["status"] == "completed"
    assert done["output"]["answer"] == {"ok": True}

    again = await client.post(f"/runs/{run['id']}/resume", json={"value": {"ok": True}})
    assert again.status_code == 409
    assert again.json()["details"]["status"] == "completed"


async def test_cancel_and_retry(client: httpx.AsyncClient) -> None:
    run = (await client.post("/runs", json={"workflow": "gated.quick", "input": {"x": 95}})).json()
    assert (await _settled(client, run["id"]))["status"] == "waiting"
    cancelled = await client.post(f"/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"/runs/{run['id']}/cancel")).status_code == 409
    retry = await client.post(f"/runs/{run['id']}/retry")
    assert retry.status_code == 409
    assert retry.json()["code"] == "invalid_transition"


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    ids = []
    for x in range(5):
        r = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": x}})
        ids.append(r.json()["id"])
    waiting = (
        await client.post("/runs", json={"workflow": "gated.quick", "input": {"x": 99}})
    ).json()
    for run_id in [*ids, waiting["id"]]:
        await _settled(client, run_id)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "workflow": "linear.ten", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/runs", params=params)).json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]

    only_waiting = (await client.get("/runs", params={"status": "waiting"})).json()
    assert [r["id"] for r in only_waiting["runs"]] == [waiting["id"]]
    both = (
        await client.get("/runs", params=[("status", "waiting"), ("status", "completed")])
    ).json()
    assert len(both["runs"]) == 6


async def test_history_lists_checkpoints_with_their_node_and_state(
    client: httpx.AsyncClient,
) -> None:
    run = (await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": 0}})).json()
    await _settled(client, run["id"])
    response = await client.get(f"/runs/{run['id']}/history")
    assert response.status_code == 200
    checkpoints = response.json()["checkpoints"]
    by_node = {c["node"]: c for c in checkpoints if c["node"]}
    assert set(by_node) == {"__start__"} | {f"n{i}" for i in range(10)}
    assert by_node["n0"]["state"] == {"x": 1}
    assert by_node["n9"]["state"] == {"x": 10}
    assert checkpoints[0]["node"] == "n9"
    assert checkpoints[0]["next"] == []
    steps = [c["step"] for c in checkpoints]
    assert steps == sorted(steps, reverse=True)
    limited = (await client.get(f"/runs/{run['id']}/history", params={"limit": 3})).json()
    assert [c["id"] for c in limited["checkpoints"]] == [c["id"] for c in checkpoints[:3]]


async def test_workflows_come_from_the_catalog(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/workflows")).json()
    assert [w["name"] for w in listed] == ["gated.blocking", "gated.quick", "linear.ten"]
    one = await client.get("/workflows/linear.ten")
    assert one.status_code == 200
    body = one.json()
    assert body["input_schema"]["properties"]["x"]["type"] == "integer"
    assert body["graph"].startswith(("graph TD", "---", "%%"))
    assert "n9" in body["graph"]
    missing = await client.get("/workflows/linear.nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "workflow_not_found"


async def test_probes_need_no_key(api: Api) -> None:
    async with api.client(None) as anonymous:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_gone(api: Api) -> None:
    async with api.client(None) as anonymous:
        await api.engine.db.close()
        ready = await anonymous.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "1"
    assert ready.json()["code"].startswith(("storage", "database"))


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/runs", "post"),
        ("/runs", "get"),
        ("/runs/{run_id}", "get"),
        ("/runs/{run_id}/resume", "post"),
        ("/runs/{run_id}/cancel", "post"),
        ("/runs/{run_id}/retry", "post"),
        ("/runs/{run_id}/history", "get"),
        ("/runs/{run_id}/events", "get"),
        ("/workflows", "get"),
        ("/workflows/{name}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} is not documented"
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "409" in paths["/runs"]["post"]["responses"]


async def test_readyz_is_503_when_the_schema_is_behind(api: Api) -> None:
    def stamp_old(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")

    await api.engine.db.write(stamp_old)
    async with api.client(None) as anonymous:
        ready = await anonymous.get("/readyz")
        alive = await anonymous.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["code"] == "migration_required"
    assert "graphrun db upgrade" in ready.json()["message"]
    assert alive.status_code == 200


async def test_a_server_without_app_code_serves_from_the_catalog(make_engine, api: Api) -> None:
    """`graphrun serve` with no --app: validation, workflows and history come from the database."""
    from graphrun.api import create_app

    async with api.client() as client:
        done = (
            await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": 0}})
        ).json()
        await _settled(client, done["id"])
        full = (await client.get(f"/runs/{done['id']}/history")).json()["checkpoints"]
    async with make_engine(run_worker=False) as bare:
        assert bare.workflows.loaded("linear.ten") is None  # no app code loaded here
        app = create_app(bare, auth=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graphrun.test"
        ) as client:
            names = [w["name"] for w in (await client.get("/workflows")).json()]
            assert "linear.ten" in names
            bad = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": "one"}})
            assert bad.status_code == 422
            assert bad.json()["details"]["errors"][0]["pointer"] == "/input/x"
            queued = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": 5}})
            assert queued.status_code == 202
            assert queued.json()["status"] == "queued"  # no worker here: it waits for one
            history = (await client.get(f"/runs/{done['id']}/history")).json()["checkpoints"]
            assert history[0]["state"] == {"x": 10}
            assert [c["id"] for c in history] == [c["id"] for c in full]
