"""Schema migrations (Alembic): one linear history for both dialects.

`upgrade(db)` runs on every `Engine` start and from ``graphrun db upgrade``; revisions branch
on ``op.get_bind().dialect.name`` inside where the dialects differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from graphrun import errors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from graphrun.storage.database import Database

__all__ = ("alembic_config", "check_current", "head_revision", "upgrade")


def alembic_config() -> Config:
    """An Alembic configuration pointing at this package's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head_revision() -> str:
    """The newest revision this graphrun knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default), in one transaction."""

    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.migration_connection() as conn:
        await conn.run_sync(_run)


async def check_current(db: Database) -> None:
    """Raise `MigrationRequired` unless the schema is at the head revision."""
    async with db.read() as conn:
        current = await conn.run_sync(_current)
    if current != head_revision():
        raise errors.MigrationRequired(
            f"Database schema is at {current or 'nothing'}, this graphrun needs "
            f"{head_revision()}: run `graphrun db upgrade`."
        )
