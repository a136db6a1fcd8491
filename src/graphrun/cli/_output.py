"""How the CLI shows runs: rich for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from graphrun.storage.records import Run, RunStatus

__all__ = ("STATUS_STYLE", "print_json", "print_run", "print_runs")

STATUS_STYLE = {
    RunStatus.QUEUED: "cyan",
    RunStatus.RUNNING: "blue",
    RunStatus.WAITING: "yellow",
    RunStatus.PAUSED: "yellow",
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "magenta",
}


def print_json(console: Console, value: Any) -> None:
    """Print a value as indented JSON (no markup)."""
    console.print_json(json.dumps(value))


def print_run(console: Console, run: Run) -> None:
    """Print one run in full."""
    style = STATUS_STYLE[run.status]
    console.print(f"[bold]{run.id}[/]  {run.workflow}  [{style}]{run.status.value}[/]")
    console.print(f"  created {run.created_at:%Y-%m-%d %H:%M:%S}  attempts {run.attempts}")
    if run.status is RunStatus.WAITING:
        for waiting in run.waiting_for:
            console.print(f"  waiting for [yellow]{waiting.kind}[/] (interrupt {waiting.id})")
            console.print(f"    prompt: {json.dumps(waiting.prompt)}")
            if waiting.schema:
                console.print(f"    schema: {json.dumps(waiting.schema)}")
        console.print(
            f"  answer with: graphrun runs resume {run.id} --value '<json>'",
            highlight=False,
        )
    if run.output is not None:
        console.print("  output:")
        console.print_json(json.dumps(run.output), indent=2)
    if run.error:
        console.print(
            f"  [red]error in {run.error.get('node')}: {run.error.get('type')}:[/] {run.error.get('message')}"
        )
        console.print(f"  retry with: graphrun runs retry {run.id}", highlight=False)


def print_runs(console: Console, runs: tuple[Run, ...], next_cursor: str | None) -> None:
    """Print runs as a table."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("id", "workflow", "status", "created"):
        table.add_column(name, no_wrap=True)
    for run in runs:
        style = STATUS_STYLE[run.status]
        table.add_row(
            run.id,
            run.workflow,
            f"[{style}]{run.status.value}[/]",
            f"{run.created_at:%m-%d %H:%M:%S}",
        )
    console.print(table)
    if next_cursor:
        console.print(f"more: --cursor {next_cursor}", highlight=False)
