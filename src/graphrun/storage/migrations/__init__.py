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

__all__ = (
    "alembic_config",
    "check_current",
    "check_current_on",
    "head_revision",
    "upgrade",
    "upgrade_on",
)


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


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Bring the schema to ``revision`` on a connection inside the caller's transaction."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def check_current_on(connection: Connection) -> None:
    """Raise `MigrationRequired` unless the schema is at the head revision."""
    current = _current(connection)
    if current != head_revision():
        raise errors.MigrationRequired(
            f"Database schema is at {current or 'nothing'}, this graphrun needs "
            f"{head_revision()}: run `graphrun db upgrade`."
        )


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default), in one transaction."""
    await db.write(lambda conn: upgrade_on(conn, revision))


async def check_current(db: Database) -> None:
    """Raise `MigrationRequired` unless the schema is at the head revision."""
    await db.read(check_current_on)
