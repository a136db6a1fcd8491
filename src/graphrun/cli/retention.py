"""``graphrun retention``: what the retention policy keeps and ages out; purging on demand."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import DbOption, JsonOption, console, make_engine, print_json, run_async

__all__ = (
    "app",
    "apply",
    "stats",
)

app = typer.Typer(
    help="Retention: stats, and purging what the policy ages out.", no_args_is_help=True
)


@app.command("stats")
def stats(database: DbOption = None, as_json: JsonOption = False) -> None:
    """Runs by status and age, what they hold, and what the next purge would delete."""

    async def main() -> int:
        async with make_engine(database, [], run_worker=False) as engine:
            found = await engine.retention.stats()
        if as_json:
            print_json(console, found.to_json())
            return 0
        for row in sorted(found.runs, key=lambda r: (r["status"], r["age"])):
            console.print(
                f"  {row['status']:<10} {row['age']:>6}  {row['runs']:>9,} runs"
                f"  {row['rows']['checkpoints']:>10,} checkpoints  {row['bytes']:>14,} bytes",
                highlight=False,
            )
        for name, table in found.tables.items():
            size = f", {table['bytes']:,} bytes" if "bytes" in table else ""
            console.print(f"  {name:<18} {table['rows']:>9,} rows{size}", highlight=False)
        doomed = ", ".join(f"{n:,} {t}" for t, n in found.next_purge.items())
        console.print(f"the next purge would delete: {doomed}", highlight=False)
        return 0

    raise typer.Exit(run_async(main))


@app.command("apply")
def apply(
    database: DbOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be deleted.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete the finished runs the policy ages out (GRAPHRUN_RETENTION), in short batches."""

    async def main() -> int:
        async with make_engine(database, [], run_worker=False) as engine:
            report = await engine.retention.purge(dry_run=dry_run)
        if as_json:
            print_json(console, report.to_json())
            return 0
        verb = "would delete" if dry_run else "deleted"
        rows = ", ".join(f"{n:,} {t}" for t, n in report.rows.items())
        console.print(
            f"{verb}: {rows}; {report.bytes:,} checkpoint bytes ({report.seconds:.2f} s)",
            highlight=False,
        )
        if report.compacted_runs:
            console.print(
                f"kept only the last checkpoint of {report.compacted_runs:,} completed runs",
                highlight=False,
            )
        return 0

    raise typer.Exit(run_async(main))
