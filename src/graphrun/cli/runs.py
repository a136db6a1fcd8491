"""``graphrun runs``: list, show and steer runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    AppsOption,
    DbOption,
    JsonOption,
    console,
    exit_code,
    follow,
    make_engine,
    parse_json,
    run_async,
)
from ._output import print_json, print_run, print_runs

__all__ = ("app",)

app = typer.Typer(help="List, inspect and steer runs.", no_args_is_help=True)

RunId = Annotated[str, typer.Argument(help="The run id.")]


@app.command("list")
def list_runs(
    status: Annotated[
        list[str] | None, typer.Option(help="Only runs in this status (repeatable).")
    ] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this app.workflow.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            page = await engine.list_runs(
                status=status or None, workflow=workflow, limit=limit, cursor=cursor
            )
        if as_json:
            print_json(
                console, {"runs": [r.to_json() for r in page.runs], "next_cursor": page.next_cursor}
            )
        else:
            print_runs(console, page.runs, page.next_cursor)

    run_async(main)


@app.command("show")
def show(run_id: RunId, database: DbOption = None, as_json: JsonOption = False) -> None:
    """Show one run: status, what it waits for, output or error."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            run = await engine.get(run_id)
        if as_json:
            print_json(console, run.to_json())
        else:
            print_run(console, run)

    run_async(main)


def _steer(
    action: str,
    run_id: str,
    database: str | None,
    apps: list[Path] | None,
    as_json: bool,
    **kw: object,
) -> None:
    async def main() -> int:
        async with make_engine(database, apps, run_worker=bool(apps)) as engine:
            seen = await engine.events(run_id)
            method = getattr(engine, action)
            run = await method(run_id, **kw)
            if apps and not run.status.terminal:
                after = seen[-1].id if seen else 0
                run = await follow(engine, run.id, quiet=as_json, after_id=after)
            elif not as_json:
                print_run(console, run)
                if not apps and not run.status.terminal:
                    console.print(
                        "  queued for a worker (pass --app to execute it here)", highlight=False
                    )
        if as_json:
            print_json(console, run.to_json())
        return exit_code(run) if action != "cancel" else 0

    raise typer.Exit(run_async(main))


@app.command("resume")
def resume(
    run_id: RunId,
    value: Annotated[str, typer.Option("--value", "-v", help="The answer, as JSON.")] = "null",
    interrupt_id: Annotated[str | None, typer.Option(help="Which interrupt to answer.")] = None,
    apps: AppsOption = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a waiting run. With --app, execute it here until it next waits or ends."""
    parsed = parse_json(value, "--value")
    _steer("resume", run_id, database, apps, as_json, value=parsed, interrupt_id=interrupt_id)


@app.command("cancel")
def cancel(run_id: RunId, database: DbOption = None, as_json: JsonOption = False) -> None:
    """Cancel a run."""
    _steer("cancel", run_id, database, None, as_json)


@app.command("retry")
def retry(
    run_id: RunId, apps: AppsOption = None, database: DbOption = None, as_json: JsonOption = False
) -> None:
    """Retry a failed run from the step that failed. With --app, execute it here."""
    _steer("retry", run_id, database, apps, as_json)
