"""Fixtures for the HTTP API: an engine with the test apps, clients with keys of each scope."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from graphrun import Engine
from graphrun.api import create_app
from graphrun.api.server import _Server
from tests.conftest import EngineFactory


@dataclass
class Api:
    """An app over an open engine, and a token per scope."""

    engine: Engine
    app: object
    tokens: dict[str, str]

    def client(
        self, scope: str | None = "admin", headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.AsyncClient:
        """A client for the ASGI app; ``scope=None`` sends no key."""
        headers = dict(headers or {})
        if scope is not None:
            headers["Authorization"] = f"Bearer {self.tokens[scope]}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
            base_url="http://graphrun.test",
            headers=headers,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
async def api(make_engine: EngineFactory) -> AsyncIterator[Api]:
    async with make_engine("gated", "linear") as engine:
        tokens = {}
        for scope in ("read", "write", "admin"):
            issued = await engine.keys.create(f"test-{scope}", [scope])
            tokens[scope] = issued.token
        yield Api(engine=engine, app=create_app(engine), tokens=tokens)


@pytest.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with api.client("admin") as c:
        yield c


LiveServer = Callable[[Engine], Awaitable[str]]


@pytest.fixture
async def live_server() -> AsyncIterator[LiveServer]:
    """Serve an open engine's API with a real uvicorn on a free loopback port."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(engine: Engine, *, auth: bool = True) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        app = create_app(engine, auth=auth)
        start.app = app  # type: ignore[attr-defined]  # the latest app, for tests that steer it
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await server.up.wait()
        servers.append((server, task))
        host, port = sock.getsockname()
        return f"http://{host}:{port}"

    yield start  # type: ignore[misc]
    for server, task in servers:
        server.should_exit = True
        server.force_exit = True
        await task
