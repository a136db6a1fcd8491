"""API keys: 401 without a valid key, 403 without the scope, on every route and on SSE."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import text

from graphrun import errors
from graphrun.api.server import check_dev_host
from tests.api.conftest import Api

RUN = "01a21561-41a9-713d-a9cb-74414cb50833"
#: (method, path, scope needed) for every route that needs a key.
PROTECTED = [
    ("GET", "/runs", "read"),
    ("GET", f"/runs/{RUN}", "read"),
    ("GET", f"/runs/{RUN}/history", "read"),
    ("GET", f"/runs/{RUN}/events", "read"),
    ("GET", f"/runs/{RUN}/signals", "read"),
    ("GET", "/workflows", "read"),
    ("GET", "/workflows/linear.ten", "read"),
    ("POST", "/runs", "write"),
    ("POST", f"/runs/{RUN}/resume", "write"),
    ("POST", f"/runs/{RUN}/cancel", "write"),
    ("POST", f"/runs/{RUN}/retry", "write"),
    ("POST", f"/runs/{RUN}/signals", "write"),
    ("POST", f"/runs/{RUN}/pause", "write"),
    ("POST", f"/runs/{RUN}/fork", "write"),
    ("GET", "/schedules", "read"),
    ("GET", "/schedules/nightly", "read"),
    ("POST", "/schedules", "write"),
    ("DELETE", "/schedules/nightly", "write"),
]
BODIES = {
    "/runs": {"workflow": "linear.ten", "input": {"x": 1}},
    "/resume": {"value": 1},
    "/signals": {"name": "go", "payload": 1},
    "/fork": {"update": {"x": 1}},
    "/schedules": {"id": "nightly", "workflow": "linear.ten", "input": {"x": 1}, "every": 60},
}


def _body(method: str, path: str) -> dict | None:
    if method in ("GET", "DELETE"):
        return None
    return next((b for suffix, b in BODIES.items() if path.endswith(suffix)), None)


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
async def test_no_key_is_401(api: Api, method: str, path: str, scope: str) -> None:
    async with api.client(None) as anonymous:
        response = await anonymous.request(method, path, json=_body(method, path))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthenticated"


async def test_nothing_an_anonymous_caller_sends_is_read(api: Api) -> None:
    async with api.client(None) as anonymous:
        bad_body = await anonymous.post(
            "/runs", content=b'{"x": NaN}', headers={"content-type": "application/json"}
        )
        bad_query = await anonymous.get("/runs", params={"nope": 1})
        huge = await anonymous.post(
            "/runs",
            content=b"[" * 500_000 + b"]" * 500_000,
            headers={"content-type": "application/json"},
        )
    assert [r.status_code for r in (bad_body, bad_query, huge)] == [401, 401, 401]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer grk_000000000000_" + "A" * 43,  # well formed, unknown
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
async def test_invalid_keys_are_401(api: Api, header: str) -> None:
    async with api.client(None, headers={"Authorization": header}) as client:
        response = await client.get("/runs")
    assert response.status_code == 401


async def test_a_tampered_secret_is_401(api: Api) -> None:
    token = api.tokens["admin"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    async with api.client(None, headers={"Authorization": f"Bearer {tampered}"}) as client:
        assert (await client.get("/runs")).status_code == 401


@pytest.mark.parametrize(("method", "path", "scope"), [p for p in PROTECTED if p[2] == "write"])
async def test_a_read_key_cannot_write(api: Api, method: str, path: str, scope: str) -> None:
    async with api.client("read") as client:
        response = await client.request(method, path, json=_body(method, path))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert response.json()["details"]["required"] == "write"
    assert (await api.engine.list_runs()).runs == ()


async def test_scopes_include_the_ones_below(api: Api) -> None:
    for scope in ("read", "write", "admin"):
        async with api.client(scope) as client:
            assert (await client.get("/runs")).status_code == 200
    for scope in ("write", "admin"):
        async with api.client(scope) as client:
            started = await client.post("/runs", json={"workflow": "linear.ten", "input": {"x": 1}})
            assert started.status_code == 202


async def test_a_revoked_key_is_401_at_once(api: Api) -> None:
    issued = await api.engine.keys.create("short-lived", ["write"])
    headers = {"Authorization": f"Bearer {issued.token}"}
    async with api.client(None, headers=headers) as client:
        assert (await client.get("/runs")).status_code == 200
        await api.engine.keys.revoke(issued.record.id)
        assert (await client.get("/runs")).status_code == 401
        assert (await client.get(f"/runs/{RUN}/events")).status_code == 401


async def test_an_expired_key_is_401(api: Api) -> None:
    issued = await api.engine.keys.create("expiring", ["read"], expires_in_s=1)

    def expire(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(
            text("UPDATE api_keys SET expires_at = created_at - 1 WHERE id = :id"),
            {"id": issued.record.id},
        )

    await api.engine.db.write(expire)
    async with api.client(None, headers={"Authorization": f"Bearer {issued.token}"}) as client:
        assert (await client.get("/runs")).status_code == 401


async def test_only_the_hash_of_the_secret_is_stored(api: Api) -> None:
    issued = await api.engine.keys.create("stored", ["read"])
    secret = issued.token.split("_", 2)[2]
    assert len(secret) >= 43  # 32 random bytes, base64url

    def dump(conn) -> str:  # type: ignore[no-untyped-def]
        return repr(conn.exec_driver_sql("SELECT * FROM api_keys").fetchall())

    stored = await api.engine.db.read(dump)
    assert secret not in stored
    assert issued.token not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored


async def test_key_names_scopes_and_expiry_are_validated(api: Api) -> None:
    with pytest.raises(errors.ValidationFailed):
        await api.engine.keys.create("x", ["superuser"])
    with pytest.raises(errors.ValidationFailed):
        await api.engine.keys.create("bad\nname", ["read"])
    with pytest.raises(errors.ValidationFailed):
        await api.engine.keys.create("x", ["read"], expires_in_s=-1)
    with pytest.raises(errors.NotFound):
        await api.engine.keys.revoke("000000000000")


async def test_probes_and_the_spec_are_open(api: Api) -> None:
    async with api.client(None) as anonymous:
        for path in ("/healthz", "/readyz", "/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_dev_mode_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(errors.ValidationFailed, match="loopback"):
        check_dev_host(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_dev_mode_allows_loopback(host: str) -> None:
    check_dev_host(host)


async def test_without_auth_no_key_is_needed(api: Api) -> None:
    from graphrun.api import create_app

    app = create_app(api.engine, auth=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://graphrun.test"
    ) as client:
        assert (await client.get("/runs")).status_code == 200
