"""What every command shares: options, the event loop, error reporting."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from graphrun import errors
from graphrun.config import Settings
from graphrun.engine import Engine
from graphrun.storage.records import Run, RunStatus

from ._output import print_json, print_run

__all__ = (
    "AppsOption",
    "DbOption",
    "JsonOption",
    "console",
    "err_console",
    "exit_code",
    "follow",
    "make_engine",
    "parse_json",
    "print_json",
    "run_async",
)

T = TypeVar("T")

# Scripts and pipes get full lines; a terminal gets its own width.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: $GRAPHRUN_DATABASE_URL or sqlite:///./graphrun.db)."
    ),
]
AppsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--app", help="App folder to load (repeatable); its runs execute in this process."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def parse_json(text: str, what: str) -> Any:
    """Parse a JSON option value, or exit with a clear message."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        err_console.print(f"[red]{what} is not valid JSON:[/] {exc}")
        raise typer.Exit(2) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def make_engine(
    db: str | None,
    apps: list[Path] | None,
    *,
    strict_apps: bool = True,
    drain: bool = False,
    **overrides: Any,
) -> Engine:
    """An engine from the environment, the ``--db`` option and app folders."""
    settings = Settings.from_env()
    return Engine(
        database_url=db,
        apps=apps or [],
        settings=settings,
        strict_apps=strict_apps,
        drain=drain,
        **overrides,
    )


def run_async(main: Callable[[], Coroutine[Any, Any, T]], *, threads: int = 32) -> T:
    """Run a command's coroutine; sync workflow steps get a thread pool of their own."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    async def wrapper() -> T:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=threads))
        return await main()

    try:
        return asyncio.run(wrapper())
    except errors.GraphrunError as exc:
        err_console.print(f"[red]{exc.code}:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc


async def follow(engine: Engine, run_id: str, *, quiet: bool = False, after_id: int = 0) -> Run:
    """Show each node as it finishes until the run waits or ends; return the run."""
    async for event in engine.runs.watch(run_id, after_id=after_id):
        if quiet:
            continue
        if event.kind == "node":
            console.print(f"  [green]✓[/] {event.data['node']}")
        elif event.kind == "status" and event.data.get("status") in (
            "waiting",
            "failed",
            "cancelled",
        ):
            console.print(f"  [yellow]•[/] {event.data['status']}")
    run = await engine.get(run_id)
    if not quiet:
        print_run(console, run)
    return run


def exit_code(run: Run) -> int:
    """0 when the run completed or waits, 1 when it failed or was cancelled."""
    return 1 if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) else 0
