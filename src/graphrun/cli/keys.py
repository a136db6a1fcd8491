"""``graphrun keys``: create, list and revoke the HTTP API's keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ._common import DbOption, JsonOption, console, make_engine, print_json, run_async

__all__ = (
    "app",
    "create",
    "list_keys",
    "revoke",
)

app = typer.Typer(help="API keys for `graphrun serve`.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="read, write or admin (repeatable; default read)."),
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expire after this many days.")
    ] = None,
    database: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its token: the only time the token is shown."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            issued = await engine.keys.create(
                name,
                scope or ["read"],
                expires_in_s=None if expires_in_days is None else expires_in_days * 86400,
            )
        if as_json:
            print_json(console, {**issued.record.to_json(), "token": issued.token})
            return
        console.print(
            f"key [bold]{issued.record.id}[/] ({', '.join(issued.record.scopes)}) created; "
            "its token is shown only now:",
            highlight=False,
        )
        console.print(issued.token, markup=False, highlight=False)

    run_async(main)


@app.command("list")
def list_keys(database: DbOption = None, as_json: JsonOption = False) -> None:
    """List keys (never their tokens)."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            records = await engine.keys.list()
        if as_json:
            print_json(console, [r.to_json() for r in records])
            return
        table = Table(box=box.SIMPLE_HEAD)
        for column in ("id", "name", "scopes", "created", "expires", "state"):
            table.add_column(column)
        for r in records:
            expired = r.expires_at is not None and r.expires_at <= datetime.now(UTC)
            state = "revoked" if r.revoked_at else "expired" if expired else "active"
            table.add_row(
                r.id,
                r.name,
                ",".join(r.scopes),
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else "never",
                state,
            )
        console.print(table)

    run_async(main)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `graphrun keys list`).")],
    database: DbOption = None,
) -> None:
    """Revoke a key; requests with it are refused (401) from now on."""

    async def main() -> None:
        async with make_engine(database, [], run_worker=False) as engine:
            await engine.keys.revoke(key_id)

    run_async(main)
    console.print(f"key {key_id} revoked", highlight=False)
