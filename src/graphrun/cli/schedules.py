"""``graphrun schedules``: add, list, show and remove schedules that start workflows."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from graphrun.storage.records import ScheduleRecord

from ._common import DbOption, JsonOption, console, make_engine, parse_json, print_json, run_async

__all__ = (
    "add",
    "app",
    "list_schedules",
    "remove",
    "show",
)

app = typer.Typer(
    help="Schedules: start a workflow at cron times or fixed intervals (a running "
    "`graphrun worker` or `serve` fires them).",
    no_args_is_help=True,
)

ScheduleId = Annotated[str, typer.Argument(help="The schedule's id.")]


@app.command("add")
def add(
    schedule_id: ScheduleId,
    workflow: Annotated[str, typer.Argument(help="The app.workflow to start.")],
    cron: Annotated[
        str | None, typer.Option(help="Five-field cron expression, e.g. '30 2 * * *'.")
    ] = None,
    every: Annotated[float | None, typer.Option(help="Or an interval, in whole seconds.")] = None,
    timezone: Annotated[str, typer.Option("--tz", help="IANA time zone of --cron.")] = "UTC",
    input_json: Annotated[
        str, typer.Option("--input", "-i", help="Every run's input, as JSON.")
    ] = "{}",
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a schedule; the input is validated now against the workflow's schema."""
    payload = parse_json(input_json, "--input")

    async def main() -> ScheduleRecord:
        async with make_engine(database, [], run_worker=False) as engine:
            return await engine.schedules.create(
                schedule_id, workflow, payload, cron=cron, every=every, timezone=timezone
            )

    created = run_async(main)
    if as_json:
        print_json(console, created.to_json())
    else:
        console.print(
            f"schedule {created.id} added; first run at {created.next_fire_at:%Y-%m-%d %H:%M:%S} UTC",
            highlight=False,
        )


@app.command("list")
def list_schedules(database: DbOption = None, as_json: JsonOption = False) -> None:
    """List schedules with their next fire time."""

    async def main() -> list[ScheduleRecord]:
        async with make_engine(database, [], run_worker=False) as engine:
            return await engine.schedules.list_all()

    records = run_async(main)
    if as_json:
        print_json(console, {"schedules": [r.to_json() for r in records]})
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "workflow", "when", "next (UTC)", "last run"):
        table.add_column(column)
    for r in records:
        when = f"{r.cron} ({r.timezone})" if r.cron else f"every {r.interval_s:g} s"
        table.add_row(
            r.id, r.workflow, when, f"{r.next_fire_at:%Y-%m-%d %H:%M:%S}", r.last_run_id or "-"
        )
    console.print(table)


@app.command("show")
def show(schedule_id: ScheduleId, database: DbOption = None) -> None:
    """Show one schedule, as JSON."""

    async def main() -> ScheduleRecord:
        async with make_engine(database, [], run_worker=False) as engine:
            return await engine.schedules.get(schedule_id)

    print_json(console, run_async(main).to_json())


@app.command("remove")
def remove(schedule_id: ScheduleId, database: DbOption = None) -> None:
    """Remove a schedule; the runs it started are kept."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            await engine.schedules.delete(schedule_id)

    run_async(main)
    console.print(f"schedule {schedule_id} removed", highlight=False)
