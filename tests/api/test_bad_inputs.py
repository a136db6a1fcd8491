"""docs/RELIABILITY.md bad inputs 1-11 and 33-35 over HTTP: the status code, and nothing changed.

"Nothing changed" is checked on the database itself: the rows of runs, run events and
checkpoints are counted before and after each request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from graphrun import Engine
from tests.api.conftest import Api

START = {"workflow": "linear.ten", "input": {"x": 1}}


async def _counts(engine: Engine) -> tuple[int, ...]:
    def read(conn) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
        return tuple(
            conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("runs", "run_events", "checkpoints", "checkpoint_writes")
        )

    return await engine.db.read(read)


@pytest.fixture
async def unchanged(api: Api) -> AsyncIterator[None]:
    """Assert that the test changed no stored row."""
    before = await _counts(api.engine)
    yield
    assert await _counts(api.engine) == before, "a rejected request changed stored state"


def _raw(body: bytes | str, content_type: str = "application/json") -> dict:
    content = body.encode() if isinstance(body, str) else body
    return {"content": content, "headers": {"content-type": content_type}}


def _nested(depth: int) -> str:
    return (
        '{"workflow": "linear.ten", "input": {"x": 1, "deep": ' + "[" * depth + "]" * depth + "}}"
    )


BAD_BODIES = [
    # (row, name, request kwargs, status, code)
    (2, "nested 100 000 deep", _raw(_nested(100_000)), 422, "validation_failed"),
    (2, "input nested 66 levels", _raw(_nested(65)), 422, "validation_failed"),
    (3, "malformed JSON", _raw('{"workflow": "linear.ten",'), 422, "validation_failed"),
    (3, "text/plain", _raw(json.dumps(START), "text/plain"), 415, "unsupported_media_type"),
    (3, "form", _raw("workflow=linear.ten", "application/x-www-form-urlencoded"), 415, None),
    (3, "no content type", {"content": json.dumps(START).encode()}, 415, None),
    (
        4,
        "invalid UTF-8",
        _raw(b'{"workflow": "linear.ten", "input": {"x": "\xff\xfe"}}'),
        400,
        "malformed_body",
    ),
    (
        5,
        "lone surrogate",
        _raw('{"workflow": "linear.ten", "input": {"x": 1, "s": "\\ud800"}}'),
        422,
        None,
    ),
    (
        5,
        "lone low surrogate key",
        _raw('{"workflow": "linear.ten", "input": {"\\udfff": 1}}'),
        422,
        None,
    ),
    (6, "NaN", _raw('{"workflow": "linear.ten", "input": {"x": NaN}}'), 422, None),
    (6, "Infinity", _raw('{"workflow": "linear.ten", "input": {"x": Infinity}}'), 422, None),
    (6, "-Infinity", _raw('{"workflow": "linear.ten", "input": {"x": -Infinity}}'), 422, None),
    (
        7,
        "NUL in a value",
        _raw('{"workflow": "linear.ten", "input": {"x": 1, "s": "a\\u0000b"}}'),
        422,
        None,
    ),
    (
        7,
        "NUL in a key",
        _raw('{"workflow": "linear.ten", "input": {"x": 1, "a\\u0000": 1}}'),
        422,
        None,
    ),
    (6, "integer beyond 64 bits", {"json": {**START, "input": {"x": 2**63}}}, 422, None),
    (
        6,
        "5000-digit integer",
        _raw('{"workflow": "linear.ten", "input": {"x": ' + "9" * 5000 + "}}"),
        422,
        None,
    ),
    (
        8,
        "unknown workflow",
        {"json": {"workflow": "linear.nope", "input": {}}},
        404,
        "workflow_not_found",
    ),
    (9, "path traversal", {"json": {"workflow": "../etc.passwd"}}, 422, None),
    (9, "slash", {"json": {"workflow": "linear/ten"}}, 422, None),
    (9, "backslash", {"json": {"workflow": "linear\\ten"}}, 422, None),
    (9, "no dot", {"json": {"workflow": "linearten"}}, 422, None),
    (9, "two dots", {"json": {"workflow": "linear.ten.x"}}, 422, None),
    (9, "look-alike", {"json": {"workflow": "l\u0456near.ten"}}, 422, None),  # Cyrillic i
    (9, "too long", {"json": {"workflow": "a" * 64 + ".ten"}}, 422, None),
    (9, "upper case", {"json": {"workflow": "Linear.ten"}}, 422, None),
    (
        10,
        "input off schema",
        {"json": {"workflow": "linear.ten", "input": {"x": "one"}}},
        422,
        None,
    ),
    (10, "input missing field", {"json": {"workflow": "linear.ten", "input": {}}}, 422, None),
    (
        11,
        "string over 1 000 000 chars",
        {"json": {**START, "input": {"x": 1, "s": "a" * 1_000_001}}},
        422,
        None,
    ),
    (
        11,
        "array over 10 000 items",
        {"json": {**START, "input": {"x": 1, "a": [0] * 10_001}}},
        422,
        None,
    ),
    (23, "idempotency key over 255", {"json": {**START, "idempotency_key": "k" * 256}}, 422, None),
    (
        23,
        "idempotency key with control chars",
        {"json": {**START, "idempotency_key": "a\nb"}},
        422,
        None,
    ),
    (0, "unknown field", {"json": {**START, "priority": 1}}, 422, None),
    (0, "not an object", {"json": [START]}, 422, None),
]


@pytest.mark.parametrize(
    ("row", "name", "request_kwargs", "status", "code"),
    BAD_BODIES,
    ids=[f"row{r[0]}-{r[1]}" for r in BAD_BODIES],
)
@pytest.mark.usefixtures("unchanged")
async def test_bad_start_bodies_are_refused(
    client: httpx.AsyncClient,
    row: int,
    name: str,
    request_kwargs: dict,
    status: int,
    code: str | None,
) -> None:
    response = await client.post("/runs", **request_kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    if code is not None:
        assert body["code"] == code


@pytest.mark.usefixtures("unchanged")
async def test_validation_errors_point_at_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": "one"}})
    assert [e["pointer"] for e in response.json()["details"]["errors"]] == ["/input/x"]
    response = await client.post(
        "/runs",
        content=b'{"workflow": "linear.ten", "input": {"x": 1, "s": ["ok", "\\u0000"]}}',
        headers={"content-type": "application/json"},
    )
    assert response.json()["details"]["errors"][0]["pointer"] == "/input/s/1"


@pytest.mark.usefixtures("unchanged")
async def test_body_over_the_limit_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = json.dumps({**START, "input": {"x": 1, "pad": "a" * (1024 * 1024)}}).encode()
    declared = await client.post("/runs", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["code"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    streamed = await client.post(
        "/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_bad_resume_bodies_change_nothing(api: Api, client: httpx.AsyncClient) -> None:
    run = (await client.post("/runs", json={"workflow": "gated.quick", "input": {"x": 95}})).json()
    waiting = await client.get(f"/runs/{run['id']}", params={"wait": 30})
    assert waiting.json()["status"] == "waiting"
    before = await _counts(api.engine)
    for content in (
        b'{"value": {"ok": NaN}}',
        b'{"value": {"ok": "\\ud800"}}',
        b'{"value": {"ok": "\\u0000"}}',
        b'{"value": {"no": 1}}',
        b'{"value": {"ok": true}, "extra": 1}',
    ):
        response = await client.post(
            f"/runs/{run['id']}/resume",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, content
    assert await _counts(api.engine) == before
    assert (await client.get(f"/runs/{run['id']}")).json()["status"] == "waiting"


RUN_ID_ROUTES = [
    ("GET", "/runs/{id}"),
    ("GET", "/runs/{id}/history"),
    ("GET", "/runs/{id}/events"),
    ("POST", "/runs/{id}/cancel"),
    ("POST", "/runs/{id}/retry"),
]


@pytest.mark.parametrize(("method", "path"), RUN_ID_ROUTES)
@pytest.mark.parametrize(
    "bad_id", ["abc", "1", "' OR 1=1 --", "00000000-0000-0000-0000-00000000000g"]
)
@pytest.mark.usefixtures("unchanged")
async def test_run_ids_that_are_not_uuids_are_422(
    client: httpx.AsyncClient, method: str, path: str, bad_id: str
) -> None:
    response = await client.request(method, path.format(id=bad_id))
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == "path"


@pytest.mark.parametrize(("method", "path"), RUN_ID_ROUTES)
@pytest.mark.usefixtures("unchanged")
async def test_unknown_runs_are_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path.format(id="01a21561-41a9-713d-a9cb-74414cb50833"))
    assert response.status_code == 404
    assert response.json()["code"] == "run_not_found"


BAD_QUERIES = [
    {"limit": -1},
    {"limit": 0},
    {"limit": 10**9},
    {"limit": "ten"},
    {"cursor": "garbage"},
    {"cursor": "eyJ4IjogMX0="},
    {"status": "done"},
    {"workflow": "../x"},
    {"created_after": "yesterday"},
    {"sort": "id;DROP TABLE runs"},
    {'metadata["x" OR 1=1]': "1"},
]


@pytest.mark.parametrize("params", BAD_QUERIES, ids=[str(q) for q in BAD_QUERIES])
@pytest.mark.usefixtures("unchanged")
async def test_bad_list_queries_are_422(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get("/runs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"


async def test_the_runs_table_survives_the_injection_attempts(
    api: Api, client: httpx.AsyncClient
) -> None:
    for params in BAD_QUERIES:
        await client.get("/runs", params=params)
    assert (await client.post("/runs", json=START)).status_code == 202
    assert len((await client.get("/runs")).json()["runs"]) == 1
