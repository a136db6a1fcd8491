"""``graphrun db``: schema migrations."""

from __future__ import annotations

import typer

from graphrun.config import Settings
from graphrun.storage import migrations, open_database

from ._common import DbOption, console, run_async

__all__ = (
    "app",
    "upgrade",
)

app = typer.Typer(help="The database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(database: DbOption = None) -> None:
    """Bring the database schema to this graphrun's version."""
    url = database or Settings.from_env().database_url

    async def main() -> None:
        db = await open_database(url, migrate=True)
        await db.close()

    run_async(main)
    console.print(f"database at revision {migrations.head_revision()}", highlight=False)
