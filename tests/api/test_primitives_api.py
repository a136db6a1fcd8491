"""Signals, pause and fork over HTTP: the routes translate the engine's outcomes and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from graphrun import Engine
from graphrun.api import create_app
from tests.api.conftest import Api
from tests.conftest import EngineFactory, entered

MISSING = "0190a0b0-0000-7000-8000-000000000000"


async def _serve(engine: Engine) -> Api:
    tokens = {}
    for scope in ("read", "write", "admin"):
        tokens[scope] = (await engine.keys.create(f"test-{scope}", [scope])).token
    return Api(engine=engine, app=create_app(engine), tokens=tokens)


@pytest.fixture
async def prims(make_engine: EngineFactory) -> AsyncIterator[Api]:
    """The primitives and gated apps, executed here; a mailbox holds at most 2 signals."""
    async with make_engine("primitives", "gated", signal_queue_limit=2) as engine:
        yield await _serve(engine)


@pytest.fixture
async def client(prims: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with prims.client("write") as c:
        yield c


async def _settled(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """The run once it waits, pauses or ends."""
    response = await client.get(f"/runs/{run_id}", params={"wait": 30})
    assert response.status_code == 200
    return response.json()


async def _start(client: httpx.AsyncClient, workflow: str, value: Any) -> dict[str, Any]:
    response = await client.post("/runs", json={"workflow": workflow, "input": value})
    assert response.status_code == 202, response.text
    return response.json()


def _pointers(response: httpx.Response) -> list[str]:
    return [e["pointer"] for e in response.json()["details"]["errors"]]


async def test_a_signal_is_delivered_to_its_wait_and_the_run_completes(
    client: httpx.AsyncClient,
) -> None:
    run = await _start(client, "primitives.mailbox", {"count": 2, "items": []})
    waiting = await _settled(client, run["id"])
    assert waiting["status"] == "waiting"
    [wait] = waiting["waiting_for"]
    assert (wait["kind"], wait["name"], wait["wake_at"]) == ("signal", "item", None)

    kept = await client.post(f"/runs/{run['id']}/signals", json={"name": "note", "payload": [1]})
    assert kept.status_code == 202
    assert kept.json()["delivered"] is False  # nothing waits for "note": it stays in the mailbox

    for item in (5, 6):
        sent = await client.post(
            f"/runs/{run['id']}/signals", json={"name": "item", "payload": item}
        )
        assert sent.status_code == 202, sent.text
        body = sent.json()
        assert body["delivered"] is True
        assert body["signal"]["name"] == "item"
        assert body["signal"]["payload"] == item
        assert body["signal"]["run_id"] == run["id"]
        assert body["run"]["id"] == run["id"]
        assert body["run"]["status"] in ("queued", "running")
        settled = await _settled(client, run["id"])

    assert settled["status"] == "completed"
    assert settled["output"]["items"] == [5, 6]
    listed = await client.get(f"/runs/{run['id']}/signals")
    assert listed.status_code == 200
    signals = listed.json()["signals"]
    assert [(s["name"], s["payload"]) for s in signals] == [("note", [1]), ("item", 5), ("item", 6)]
    assert [s["consumed_at"] is not None for s in signals] == [False, True, True]


async def test_a_signal_wait_with_a_timeout_shows_its_wake_time(
    client: httpx.AsyncClient,
) -> None:
    run = await _start(client, "primitives.deadline", {"seconds": 600})
    [wait] = (await _settled(client, run["id"]))["waiting_for"]
    assert (wait["kind"], wait["name"]) == ("signal", "approve")
    assert wait["wake_at"] is not None
    sent = await client.post(
        f"/runs/{run['id']}/signals", json={"name": "approve", "payload": {"by": "ana"}}
    )
    assert sent.status_code == 202
    done = await _settled(client, run["id"])
    assert done["output"]["outcome"] == "approved by ana"


async def test_bad_signals_are_refused_and_store_nothing(client: httpx.AsyncClient) -> None:
    run = await _start(client, "primitives.deadline", {"seconds": 600})
    assert (await _settled(client, run["id"]))["status"] == "waiting"
    signals = f"/runs/{run['id']}/signals"

    undeclared = await client.post(signals, json={"name": "other", "payload": 1})
    assert undeclared.status_code == 422
    assert undeclared.json()["code"] == "validation_failed"
    assert _pointers(undeclared) == ["/name"]
    wrong = await client.post(signals, json={"name": "approve", "payload": {"by": 5}})
    assert wrong.status_code == 422
    assert _pointers(wrong) == ["/payload/by"]
    missing = await client.post(signals, json={"name": "approve", "payload": {}})
    assert missing.status_code == 422
    assert _pointers(missing) == ["/payload"]
    malformed = await client.post(signals, json={"name": "no spaces", "payload": 1})
    assert malformed.status_code == 422
    extra = await client.post(signals, json={"name": "approve", "value": 1})
    assert extra.status_code == 422
    assert (await client.get(signals)).json() == {"signals": []}
    assert (await client.get(f"/runs/{run['id']}")).json()["status"] == "waiting"

    unknown = await client.post(f"/runs/{MISSING}/signals", json={"name": "approve"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "run_not_found"
    assert (await client.get(f"/runs/{MISSING}/signals")).status_code == 404

    assert (await client.post(f"/runs/{run['id']}/cancel")).status_code == 200
    ended = await client.post(signals, json={"name": "approve", "payload": {"by": "ana"}})
    assert ended.status_code == 409
    assert ended.json()["code"] == "invalid_transition"
    assert (await client.get(signals)).json() == {"signals": []}


async def test_a_full_mailbox_is_409(client: httpx.AsyncClient) -> None:
    run = await _start(client, "primitives.mailbox", {"count": 1, "items": []})
    await _settled(client, run["id"])
    signals = f"/runs/{run['id']}/signals"
    for n in range(2):
        assert (await client.post(signals, json={"name": "note", "payload": n})).status_code == 202
    full = await client.post(signals, json={"name": "note", "payload": 2})
    assert full.status_code == 409
    assert full.json()["code"] == "signal_queue_full"
    assert len((await client.get(signals)).json()["signals"]) == 2


async def test_pause_a_queued_run_then_resume_it(make_engine: EngineFactory) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        api = await _serve(engine)
        async with api.client("write") as client:
            run = await _start(client, "primitives.chain", {"x": 0, "trail": []})
            assert run["status"] == "queued"  # no worker here
            paused = await client.post(f"/runs/{run['id']}/pause")
            assert paused.status_code == 200
            assert paused.json()["status"] == "paused"
            again = await client.post(f"/runs/{run['id']}/pause")
            assert again.status_code == 409
            assert again.json()["code"] == "invalid_transition"
            with_value = await client.post(f"/runs/{run['id']}/resume", json={"value": 1})
            assert with_value.status_code == 422
            assert _pointers(with_value) == ["/value"]
            assert (await client.get(f"/runs/{run['id']}")).json()["status"] == "paused"
            resumed = await client.post(f"/runs/{run['id']}/resume", json={})
            assert resumed.status_code == 200
            assert resumed.json()["status"] == "queued"
            missing = await client.post(f"/runs/{MISSING}/pause")
            assert missing.status_code == 404
    async with make_engine("primitives") as engine:
        done = await engine.wait(run["id"], timeout=30)
    assert done.output == {"x": 111, "trail": ["a", "b", "c"]}


async def test_pause_a_running_run_at_its_next_step(
    client: httpx.AsyncClient, gated: ModuleType
) -> None:
    run = await _start(client, "gated.blocking", {"x": 0})
    await entered(gated)
    asked = await client.post(f"/runs/{run['id']}/pause")
    assert asked.status_code == 200
    assert asked.json()["status"] == "running"  # it finishes its step first
    gated.GATE.set()
    paused = await _settled(client, run["id"])
    assert paused["status"] == "paused"
    assert paused["output"] is None
    assert (await client.post(f"/runs/{run['id']}/resume", json={})).status_code == 200
    done = await _settled(client, run["id"])
    assert done["status"] == "completed"
    assert done["output"] == {"x": 3}
    ended = await client.post(f"/runs/{run['id']}/pause")
    assert ended.status_code == 409


async def test_fork_from_a_checkpoint_with_an_update(client: httpx.AsyncClient) -> None:
    source = await _start(client, "primitives.chain", {"x": 0, "trail": []})
    before = await _settled(client, source["id"])
    assert before["output"] == {"x": 111, "trail": ["a", "b", "c"]}
    history = (await client.get(f"/runs/{source['id']}/history")).json()["checkpoints"]
    [after_a] = [c for c in history if c["node"] == "a"]
    assert after_a["state"]["x"] == 1

    forked = await client.post(
        f"/runs/{source['id']}/fork",
        json={"checkpoint_id": after_a["id"], "update": {"x": 1000}},
    )
    assert forked.status_code == 202, forked.text
    new = forked.json()
    assert new["id"] != source["id"]
    assert new["forked_from"] == source["id"]
    done = await _settled(client, new["id"])
    assert done["status"] == "completed"
    assert done["output"] == {"x": 1110, "trail": ["a", "b", "c"]}
    assert done["forked_from"] == source["id"]

    assert (await client.get(f"/runs/{source['id']}")).json() == before
    again = (await client.get(f"/runs/{source['id']}/history")).json()["checkpoints"]
    assert again == history


async def test_fork_without_a_body_continues_from_the_latest_checkpoint(
    client: httpx.AsyncClient,
) -> None:
    source = await _start(client, "primitives.chain", {"x": 0, "trail": []})
    await _settled(client, source["id"])
    forked = await client.post(f"/runs/{source['id']}/fork")
    assert forked.status_code == 202
    done = await _settled(client, forked.json()["id"])
    assert done["status"] == "completed"
    assert done["output"] == {"x": 111, "trail": ["a", "b", "c"]}
    assert done["forked_from"] == source["id"]


async def test_fork_errors(client: httpx.AsyncClient, make_engine: EngineFactory) -> None:
    source = await _start(client, "primitives.chain", {"x": 0, "trail": []})
    await _settled(client, source["id"])
    fork = f"/runs/{source['id']}/fork"

    no_checkpoint = await client.post(fork, json={"checkpoint_id": "not-a-checkpoint"})
    assert no_checkpoint.status_code == 404
    assert no_checkpoint.json()["code"] == "checkpoint_not_found"
    no_run = await client.post(f"/runs/{MISSING}/fork", json={})
    assert no_run.status_code == 404
    assert no_run.json()["code"] == "run_not_found"
    extra = await client.post(fork, json={"update": {"x": 1}, "nope": 1})
    assert extra.status_code == 422
    for update in ("text", [1], {"trail": "not a list"}):  # a node returns an object
        bad = await client.post(fork, json={"update": update})
        assert bad.status_code == 422, update
        assert _pointers(bad) == ["/update"]
    assert len((await client.get("/runs")).json()["runs"]) == 1  # nothing was started

    async with make_engine(run_worker=False) as bare:  # no app code: an update cannot apply
        app = create_app(bare, auth=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as plain:
            unloaded = await plain.post(fork, json={"update": {"x": 1}})
    assert unloaded.status_code == 404
    assert unloaded.json()["code"] == "workflow_not_found"


async def test_openapi_documents_the_new_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert paths["/runs/{run_id}/signals"]["post"]["operationId"] == "signal_run"
    assert paths["/runs/{run_id}/signals"]["get"]["operationId"] == "run_signals"
    assert paths["/runs/{run_id}/pause"]["post"]["operationId"] == "pause_run"
    assert paths["/runs/{run_id}/fork"]["post"]["operationId"] == "fork_run"
    assert "202" in paths["/runs/{run_id}/signals"]["post"]["responses"]
    links = paths["/runs"]["post"]["responses"]["202"]["links"]
    assert {"signal_run", "run_signals", "pause_run", "fork_run"} <= set(links)
    schemas = spec["components"]["schemas"]
    assert "name" in schemas["WaitingOnOut"]["properties"]
    assert "forked_from" in schemas["RunOut"]["properties"]


async def test_schedules_crud_over_http(client: httpx.AsyncClient) -> None:
    body = {
        "id": "nightly",
        "workflow": "primitives.chain",
        "input": {"x": 0, "trail": []},
        "cron": "30 2 * * *",
        "timezone": "Europe/Riga",
    }
    created = await client.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["next_fire_at"] is not None
    again = await client.post("/schedules", json=body)
    assert (again.status_code, again.json()["code"]) == (409, "schedule_exists")
    listed = await client.get("/schedules")
    assert [s["id"] for s in listed.json()["schedules"]] == ["nightly"]
    one = await client.get("/schedules/nightly")
    assert one.json()["cron"] == "30 2 * * *"
    assert (await client.delete("/schedules/nightly")).status_code == 204
    gone = await client.get("/schedules/nightly")
    assert (gone.status_code, gone.json()["code"]) == (404, "schedule_not_found")
    assert (await client.delete("/schedules/nightly")).status_code == 404


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"cron": "61 * * * *"}, "/cron"),  # docs/RELIABILITY.md row 24
        ({"cron": "* * *"}, "/cron"),
        ({"cron": "*/0 * * * *"}, "/cron"),
        ({"cron": "0 0 * * 8"}, "/cron"),
        ({"cron": "@reboot"}, "/cron"),
        ({"cron": "0 0 31 2 *"}, "/cron"),  # row 25: never fires
        ({"cron": "* * * * * *"}, "/cron"),  # row 25: six fields, sub-minute
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "/timezone"),  # row 26
        ({"every": 0}, "/every"),
        ({"every": 0.5}, "/every"),
        ({"input": {"x": 0, "trail": 5}}, "/input/trail"),  # the reducer refuses it
        ({"id": "Not An Id"}, "/id"),
    ],
)
async def test_invalid_schedules_are_422(
    client: httpx.AsyncClient, patch: dict[str, Any], pointer: str
) -> None:
    body = {"id": "bad", "workflow": "primitives.chain", "input": {"x": 0, "trail": []}}
    body |= {"every": 60} if "cron" not in patch else {}
    body |= patch
    response = await client.post("/schedules", json=body)
    assert response.status_code == 422, response.text
    assert pointer in _pointers(response)
    assert (await client.get("/schedules")).json() == {"schedules": []}
