"""`serve`: the API and the embedded worker in one process, with graceful SIGTERM.

One process, because SQLite has one writer: the server's engine both answers requests and
executes the runs of the apps it loaded. On the first SIGTERM (or Ctrl-C) it stops accepting
connections and claiming runs; in-flight runs get the grace period to finish, then are
released to the queue for the next start. A second signal releases them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Generator

import uvicorn

from graphrun import errors
from graphrun.engine import Engine
from graphrun.engine.process import settle_after_startup

from .app import create_app
from .hygiene import DEFAULT_MAX_BODY_BYTES

__all__ = ("check_dev_host", "serve")

logger = logging.getLogger("graphrun.api")

#: The longest grace period `serve` accepts, in seconds.
MAX_GRACE_S = 3600.0


def check_dev_host(host: str) -> None:
    """Refuse to serve without auth on anything but a loopback address.

    Raises:
        ValidationFailed: ``host`` is not a loopback name or address.
    """
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise errors.ValidationFailed(
            "--host",
            [
                {
                    "pointer": "/host",
                    "message": f"--dev turns auth off, so it serves on loopback only, not {host!r}",
                }
            ],
        )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (`serve` installs graphrun's), telling when up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Bind and start serving, then set ``up``."""
        await super().startup(sockets)
        if self.started:
            self.up.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    auth: bool = True,
    grace_s: float = 10.0,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Open ``engine``, serve the API until SIGTERM/SIGINT, then shut down gracefully.

    Args:
        engine: An engine not yet opened; `serve` opens and closes it.
        host: Address to bind.
        port: Port to bind (0 picks a free one; ``on_ready`` is told which).
        auth: Require API keys (see `check_dev_host` for turning it off).
        grace_s: How long in-flight runs may go on after the first signal.
        max_body_bytes: Largest request body accepted.
        on_ready: Called with the bound host and port once requests are being served.
    """
    if not auth:
        check_dev_host(host)
    if not 0 <= grace_s <= MAX_GRACE_S:  # also refuses NaN
        raise errors.ValidationFailed(
            "--grace", [{"pointer": "/grace", "message": f"between 0 and {MAX_GRACE_S} seconds"}]
        )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it, a keep-alive response written in two
    # parts waits out the client's delayed ACK (40 ms on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    app = create_app(engine, auth=auth, max_body_bytes=max_body_bytes)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=max(1, int(grace_s)),
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    stopping: asyncio.Task[None] | None = None

    def on_signal() -> None:
        nonlocal stopping
        server.should_exit = True
        app.state.shutdown.set()  # open streams and long-polls end now
        if stopping is None:
            stopping = asyncio.create_task(engine.stop_worker(grace_s))
        else:
            server.force_exit = True
            engine.force_stop()

    async with engine:
        settle_after_startup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            up = asyncio.create_task(server.up.wait())
            await asyncio.wait([serving, up], return_when=asyncio.FIRST_COMPLETED)
            up.cancel()
            if server.started and on_ready is not None:
                on_ready(*sock.getsockname()[:2])
            await serving
            if stopping is not None:
                await stopping
            await engine.close(grace_s=grace_s)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            sock.close()
