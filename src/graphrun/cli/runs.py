"""``graphrun runs``: list, show and steer runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from graphrun.storage.records import RunStatus, SignalSent

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
from ._output import print_json, print_run, print_runs, print_signal_sent, print_signals

__all__ = (
    "app",
    "cancel",
    "fork",
    "list_runs",
    "pause",
    "resume",
    "retry",
    "show",
    "signal",
    "signals",
)

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
    """Call ``Engine.<action>(run_id, **kw)`` and show the run it leaves.

    With app folders the run (for `fork`, the new one) executes here until it waits or
    ends. `signal` answers with what the signal did as well (its JSON: the SignalSent form).
    """

    async def main() -> int:
        async with make_engine(database, apps, run_worker=bool(apps)) as engine:
            seen = await engine.runs.events(run_id)
            result = await getattr(engine, action)(run_id, **kw)
            sent = result if isinstance(result, SignalSent) else None
            run = sent.run if sent else result
            if sent and not as_json:
                print_signal_sent(console, sent)
            if apps and not run.status.terminal:
                after = seen[-1].id if seen and run.id == run_id else 0
                run = await follow(engine, run.id, quiet=as_json, after_id=after)
            elif not as_json:
                print_run(console, run)
                if run.status is RunStatus.QUEUED:
                    console.print(
                        "  queued for a worker (pass --app to execute it here)", highlight=False
                    )
        if as_json:
            shown: dict[str, Any] = run.to_json()
            print_json(console, {**sent.to_json(), "run": shown} if sent else shown)
        return exit_code(run) if action != "cancel" else 0

    raise typer.Exit(run_async(main))


@app.command("resume")
def resume(
    run_id: RunId,
    value: Annotated[str, typer.Option("--value", "-v", help="The answer, as JSON.")] = "null",
    interrupt_id: Annotated[str | None, typer.Option(help="Which interrupt to answer.")] = None,
    answers: Annotated[
        str | None,
        typer.Option(help='Several answers at once, as JSON: {"<interrupt id>": value, ...}.'),
    ] = None,
    apps: AppsOption = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a waiting run, or resume a paused one (no --value).

    With --app, execute it here until it next waits or ends.
    """
    parsed = parse_json(value, "--value")
    several = None if answers is None else parse_json(answers, "--answers")
    _steer(
        "resume",
        run_id,
        database,
        apps,
        as_json,
        value=parsed,
        interrupt_id=interrupt_id,
        answers=several,
    )


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


@app.command("signal")
def signal(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="The signal, as the workflow declares it.")],
    payload: Annotated[str, typer.Argument(help="The payload, as JSON.")] = "null",
    apps: AppsOption = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a signal; a wait for it takes it now or later. With --app, execute the run here."""
    parsed = parse_json(payload, "PAYLOAD")
    _steer("signal", run_id, database, apps, as_json, name=name, payload=parsed)


@app.command("signals")
def signals(run_id: RunId, database: DbOption = None, as_json: JsonOption = False) -> None:
    """List a run's signals, consumed or waiting in its mailbox, in the order sent."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            sent = await engine.runs.signals(run_id)
        if as_json:
            print_json(console, {"signals": [s.to_json() for s in sent]})
        else:
            print_signals(console, sent)

    run_async(main)


@app.command("pause")
def pause(run_id: RunId, database: DbOption = None, as_json: JsonOption = False) -> None:
    """Pause a run: a queued one at once, a running one at its next step boundary."""
    _steer("pause", run_id, database, None, as_json)


@app.command("fork")
def fork(
    run_id: RunId,
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="Fork from this checkpoint (default: the latest)."),
    ] = None,
    update: Annotated[
        str | None,
        typer.Option("--update", "-u", help="A state patch, as JSON (needs --app)."),
    ] = None,
    apps: AppsOption = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new run from a checkpoint of this one. With --app, execute it here."""
    parsed = None if update is None else parse_json(update, "--update")
    if parsed is not None and not isinstance(parsed, dict):
        raise typer.BadParameter("a state patch is a JSON object", param_hint="--update")
    _steer("fork", run_id, database, apps, as_json, checkpoint_id=checkpoint, update=parsed)
