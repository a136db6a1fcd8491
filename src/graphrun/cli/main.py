"""The ``graphrun`` root command: run, worker, serve, runs, apps, retention, keys, schedules, db."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from graphrun import errors
from graphrun.config import DEFAULT_MAX_BODY_BYTES
from graphrun.engine.app_workers import PARENT_PID_ENV
from graphrun.engine.process import settle_after_startup

from . import apps as apps_commands
from . import db, keys, retention, runs, schedules
from ._common import (
    AppsOption,
    DbOption,
    JsonOption,
    console,
    err_console,
    exit_code,
    follow,
    make_engine,
    parse_json,
    print_json,
    run_async,
)

__all__ = (
    "app",
    "main",
    "run_command",
    "serve_command",
    "worker_command",
)

app = typer.Typer(
    name="graphrun",
    help="A durable workflow engine for LangGraph graphs.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(schedules.app, name="schedules")
app.add_typer(apps_commands.app, name="apps")
app.add_typer(retention.app, name="retention")


@app.command("run")
def run_command(
    workflow: Annotated[str, typer.Argument(help="The workflow, as app.workflow.")],
    input: Annotated[str, typer.Option("--input", "-i", help="The run's input, as JSON.")] = "{}",
    apps: AppsOption = None,
    database: DbOption = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Start at most one run per key.")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help='LangGraph config, as JSON: {"configurable": {...}, "recursion_limit": 50}.',
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="The run's Runtime.context, as JSON.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a run and execute it here until it finishes or waits, showing each node."""
    value = parse_json(input, "--input")
    run_config = None if config is None else parse_json(config, "--config")
    run_context = None if context is None else parse_json(context, "--context")

    async def main() -> int:
        async with make_engine(database, apps) as engine:
            run = await engine.start(
                workflow,
                value,
                idempotency_key=idempotency_key,
                config=run_config,
                context=run_context,
            )
            if not as_json:
                console.print(f"run [bold]{run.id}[/] of {workflow}")
            run = await follow(engine, run.id, quiet=as_json)
            if as_json:
                print_json(console, run.to_json())
            return exit_code(run)

    raise typer.Exit(run_async(main))


@app.command("worker")
def worker_command(
    apps: AppsOption = None,
    database: DbOption = None,
    concurrency: Annotated[int | None, typer.Option(help="Runs executed at once.")] = None,
    grace: Annotated[
        float,
        typer.Option(help="Seconds in-flight runs get to finish on SIGTERM.", min=0, max=3600),
    ] = 10.0,
    drain: Annotated[
        bool,
        typer.Option(
            "--drain",
            help="Only finish runs started on these app versions; end when none is left to execute.",
        ),
    ] = False,
) -> None:
    """Execute queued runs of the given apps until SIGTERM or Ctrl-C.

    The first signal stops claiming and gives in-flight runs ``--grace`` seconds to finish;
    unfinished ones are released to the queue. A second signal releases them at once.
    An app that fails to load is reported (and recorded as failed); the others serve.
    """
    if not apps:
        raise typer.BadParameter("give at least one --app", param_hint="--app")

    async def main() -> int:
        stop = asyncio.Event()
        engine = make_engine(
            database, apps, concurrency=concurrency, strict_apps=False, drain=drain
        )
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                engine.force_stop()
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        async with engine:
            settle_after_startup()
            served = engine.workflows.loaded_names() + [
                f"{a} (own environment)" for a in engine.apps.isolated()
            ]
            console.print(
                f"worker {engine.settings.worker_id} serving {', '.join(served) or 'nothing'}",
                highlight=False,
            )
            for name, failure in engine.apps.failures().items():
                err_console.print(
                    f"[red]app {name} failed:[/] {failure['message']}", highlight=False
                )
            if drain and not engine.workflows.loaded_names():
                return 3  # nothing to drain here: the supervisor counts it as a failed start
            watch = asyncio.create_task(_end_with_supervisor(stop))
            if drain:
                drained = asyncio.create_task(engine.drained())
                await asyncio.wait(
                    [drained, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
                )
                drained.cancel()
            else:
                await stop.wait()
            watch.cancel()
            await engine.close(grace_s=grace)
        return 0

    raise typer.Exit(run_async(main))


async def _end_with_supervisor(stop: asyncio.Event) -> None:
    """A supervised worker stops when the process supervising it is gone (a kill -9)."""
    supervisor = os.environ.get(PARENT_PID_ENV)
    if not supervisor:
        return
    while not stop.is_set():
        if os.getppid() != int(supervisor):
            console.print("the supervising process is gone: stopping", highlight=False)
            stop.set()
            return
        await asyncio.sleep(1.0)


@app.command("serve")
def serve_command(
    apps: AppsOption = None,
    database: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free port).")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="No API keys; loopback addresses only.")
    ] = False,
    concurrency: Annotated[int | None, typer.Option(help="Runs executed at once.")] = None,
    grace: Annotated[
        float,
        typer.Option(help="Seconds in-flight runs get to finish on SIGTERM.", min=0, max=3600),
    ] = 10.0,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted.", min=1024)
    ] = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serve the HTTP API, executing the given apps' runs in this process.

    SIGTERM or Ctrl-C: stop accepting requests and claiming runs; in-flight runs get
    ``--grace`` seconds, then are released to the queue. A second signal releases them at once.
    """
    from graphrun.api.server import check_dev_host, serve

    if dev:
        try:
            check_dev_host(host)
        except errors.ValidationFailed as exc:
            raise typer.BadParameter(exc.errors[0]["message"], param_hint="--host") from None

    def ready(bound_host: str, bound_port: int) -> None:
        mode = "[yellow]dev mode, no auth[/]" if dev else "API keys required"
        console.print(f"serving on http://{bound_host}:{bound_port} ({mode})", highlight=False)

    async def main() -> int:
        engine = make_engine(database, apps, concurrency=concurrency, strict_apps=False)
        await serve(
            engine,
            host=host,
            port=port,
            auth=not dev,
            grace_s=grace,
            max_body_bytes=max_body_bytes,
            on_ready=ready,
        )
        return 0

    raise typer.Exit(run_async(main))


def main() -> None:
    """Console-script entry point."""
    app()
