"""How the CLI shows runs: rich for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from graphrun.storage.records import Run, RunStatus, SignalRecord, SignalSent
from graphrun.waits import WaitingOn, WaitKind

__all__ = (
    "STATUS_STYLE",
    "print_json",
    "print_run",
    "print_runs",
    "print_signal_sent",
    "print_signals",
)

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
    """Print one run in full: what it waits on, output or error, and how to go on."""
    style = STATUS_STYLE[run.status]
    console.print(f"[bold]{run.id}[/]  {run.workflow}  [{style}]{run.status.value}[/]")
    console.print(f"  created {run.created_at:%Y-%m-%d %H:%M:%S}  attempts {run.attempts}")
    if run.forked_from:
        console.print(f"  forked from {run.forked_from}", highlight=False)
    if run.status is RunStatus.WAITING:
        for waiting in run.waiting_for:
            _print_waiting(console, run.id, waiting)
    if run.status is RunStatus.RUNNING and run.pause_requested:
        console.print("  pause requested: it pauses at its next step boundary", highlight=False)
    if run.status is RunStatus.PAUSED:
        console.print(f"  resume with: graphrun runs resume {run.id}", highlight=False)
    if run.output is not None:
        console.print("  output:")
        console.print_json(json.dumps(run.output), indent=2)
    if run.error:
        console.print(f"  [red]error in {run.error.node}: {run.error.type}:[/] {run.error.message}")
        console.print(f"  retry with: graphrun runs retry {run.id}", highlight=False)


def _print_waiting(console: Console, run_id: str, waiting: WaitingOn) -> None:
    """One pending interrupt: input, a signal (by name) or a timer, its wake time, the way on."""
    what = f"signal {waiting.name}" if waiting.kind is WaitKind.SIGNAL else waiting.kind
    wake = waiting.wake_at
    until = f" until {wake.isoformat(sep=' ', timespec='seconds')}" if wake else ""
    console.print(f"  waiting for [yellow]{what}[/]{until} (interrupt {waiting.id})")
    if waiting.prompt is not None or waiting.kind is WaitKind.INPUT:
        console.print(f"    prompt: {json.dumps(waiting.prompt)}")
    if waiting.schema:
        console.print(f"    schema: {json.dumps(waiting.schema)}")
    if waiting.kind is WaitKind.INPUT:
        hint = f"answer with: graphrun runs resume {run_id} --value '<json>'"
    elif waiting.kind is WaitKind.SIGNAL:
        hint = f"send it with: graphrun runs signal {run_id} {waiting.name} '<json>'"
    else:
        return  # a timer wakes the run by itself
    console.print(f"    {hint}", highlight=False)


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


def print_signal_sent(console: Console, sent: SignalSent) -> None:
    """Say what sending a signal did: consumed at once, or kept in the run's mailbox."""
    fate = "delivered" if sent.delivered else "kept in the mailbox until a wait takes it"
    console.print(f"signal {sent.signal.name} #{sent.signal.id} {fate}", highlight=False)


def print_signals(console: Console, signals: list[SignalRecord]) -> None:
    """Print a run's signals as a table, in the order sent."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("id", "name", "payload", "sent", "consumed"):
        table.add_column(name, no_wrap=name != "payload")
    for signal in signals:
        consumed = f"{signal.consumed_at:%m-%d %H:%M:%S}" if signal.consumed_at else "-"
        table.add_row(
            str(signal.id),
            signal.name,
            Text(json.dumps(signal.payload)),
            f"{signal.created_at:%m-%d %H:%M:%S}",
            consumed,
        )
    console.print(table)
