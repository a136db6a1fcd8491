"""The two storage backends, and `open_database`, which picks one by URL and sets it up.

`sqlite.SQLiteDatabase` (the embedded default) and `postgres.PostgresDatabase` (many
workers on many machines) implement the `Database` contract; these modules, and the
PostgreSQL pieces beside them (`pg_batch`, `pg_step`, `pg_listen`), are the only ones that
know which database they talk to.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import URL, make_url

from graphrun import errors
from graphrun.storage import migrations
from graphrun.storage.database import Database

from .postgres import PG_POOL, PostgresDatabase
from .sqlite import SQLiteDatabase

__all__ = ("PostgresDatabase", "SQLiteDatabase", "open_database")


async def open_database(
    url: str,
    *,
    synchronous: str = "full",
    busy_timeout_s: float = 30.0,
    migrate: bool = True,
    pool_size: int = PG_POOL,
) -> Database:
    """Connect to ``url`` and bring its schema to the current migration (or check it).

    Args:
        url: ``sqlite:///path`` or ``postgresql://user@host/database``.
        synchronous: SQLite's ``synchronous`` pragma (``full``: every commit is on disk).
        busy_timeout_s: How long a write waits for a lock, and every PostgreSQL
            statement's deadline.
        migrate: Upgrade the schema (the default); otherwise only check that it is current.
        pool_size: PostgreSQL connections (and threads) of this process.

    Raises:
        StorageError: The database cannot be used (unsupported URL, network filesystem...).
        MigrationRequired: ``migrate`` is false and the schema is not current.
    """
    parsed = _sync_url(url)
    backend = parsed.get_backend_name()
    db: Database
    if backend == "sqlite":
        db = SQLiteDatabase(parsed, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
    elif backend == "postgresql":
        db = PostgresDatabase(parsed, busy_timeout_s=busy_timeout_s, pool_size=pool_size)
    else:
        raise errors.StorageError(
            f"Unsupported database {backend!r}: use sqlite:///path or "
            "postgresql://user@host/database."
        )
    try:
        await asyncio.to_thread(db.connect)
        # The one schema step: migrations run before the database takes any other work.
        schema = migrations.upgrade_on if migrate else migrations.check_current_on
        await asyncio.to_thread(db.run_schema, schema, creating=migrate)
        await db.start()
    except BaseException:
        await db.close()
        raise
    return db


def _sync_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername="sqlite+pysqlite")
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed
