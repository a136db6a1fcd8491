"""The engine's database: connections, dialect setup, the single writer, error mapping.

Every dialect difference in connection handling lives here. On SQLite one writer task owns
the only connection that writes (RELIABILITY.md: two writers on one file lock each other out
and expose the WAL-reset bug); every write in the process is a *job* submitted to it, and
jobs that arrive together commit together (group commit), each in its own savepoint so one
job's failure rolls back only that job. Reads go through a separate pool and never wait for
the writer (WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Table, event, func, literal
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

from graphrun import errors

__all__ = ("Database", "WriteJob", "map_errors")

logger = logging.getLogger("graphrun.storage")

T = TypeVar("T")

#: A unit of work for the writer: runs inside the writer's transaction, touches only the DB.
WriteJob = Callable[[AsyncConnection], Awaitable[T]]

MAX_BATCH = 256  # jobs per group commit
READ_POOL_SIZE = 4  # connections
SQLITE_FIXED_VERSION = (3, 51, 3)  # first release without the WAL-reset corruption bug
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p"})


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate driver errors into the `StorageError` tree; never leak SQLAlchemy upward."""
    try:
        yield
    except DBAPIError as exc:
        raise _storage_error(exc) from exc


def _storage_error(exc: DBAPIError) -> errors.StorageError:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    if "database is locked" in text or "database table is locked" in text:
        return errors.StorageBusy()
    if "database or disk is full" in text or "no space left" in text:
        return errors.StorageFull()
    if "disk i/o error" in text:
        return errors.StorageIOError()
    if "unable to open database" in text or ("connection" in text and "refused" in text):
        return errors.DatabaseUnavailable(f"Database unavailable: {text}")
    if isinstance(exc, OperationalError):
        return errors.StorageError(f"Database error: {text}")
    return errors.StorageError(f"Database error ({type(exc.orig).__name__}): {text}")


@dataclass(eq=False)
class _Pending:
    job: WriteJob[Any]
    future: asyncio.Future[Any]


class Database:
    """The engine's database: one writer, a read pool, and the dialect's SQL pieces.

    Create with `Database.open(url)`; close with `close()`. Storage modules take it as their
    first argument and use `write(job)` and `read()`.
    """

    def __init__(self, url: str, *, synchronous: str = "full", busy_timeout_s: float = 30.0):
        self.url: URL = _async_url(url)
        self.dialect: str = self.url.get_backend_name()
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._writer_engine: AsyncEngine | None = None
        self._reader_engine: AsyncEngine | None = None
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        synchronous: str = "full",
        busy_timeout_s: float = 30.0,
        migrate: bool = True,
    ) -> Database:
        """Connect, check the environment, and bring the schema to the current migration.

        Raises:
            StorageError: The database cannot be used safely (network filesystem, no WAL).
            MigrationRequired: ``migrate`` is false and the schema is not current.
        """
        db = cls(url, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
        await db._connect()
        try:
            from graphrun.storage import migrations

            if migrate:
                await migrations.upgrade(db)
            else:
                await migrations.check_current(db)
        except BaseException:
            await db.close()
            raise
        return db

    async def _connect(self) -> None:
        if self.dialect == "sqlite":
            self._check_sqlite_path()
            self._writer_engine = create_async_engine(
                self.url, pool_size=1, max_overflow=0, connect_args={"timeout": 0}
            )
            self._setup_sqlite(self._writer_engine, immediate=True)
            self._reader_engine = create_async_engine(
                self.url, pool_size=READ_POOL_SIZE, max_overflow=0, connect_args={"timeout": 0}
            )
            self._setup_sqlite(self._reader_engine, immediate=False)
            version = sqlite3.sqlite_version_info
            logger.info("sqlite %s", sqlite3.sqlite_version, extra={"action": "sqlite_version"})
            if version < SQLITE_FIXED_VERSION:
                logger.debug(
                    "SQLite %s predates the WAL-reset fix (3.51.3); safe here because this "
                    "process writes through a single connection",
                    sqlite3.sqlite_version,
                )
        else:
            raise errors.StorageError(
                f"Unsupported database {self.dialect!r}: use sqlite:///path "
                "(PostgreSQL arrives with the scale-out work)."
            )
        self._writer_task = asyncio.create_task(self._writer_loop(), name="graphrun-db-writer")

    def _check_sqlite_path(self) -> None:
        database = self.url.database
        if not database or database == ":memory:":
            raise errors.StorageError(
                "An in-memory SQLite database cannot be shared by the writer and readers; "
                "use a file path."
            )
        path = Path(database).resolve()
        if not path.parent.is_dir():
            raise errors.DatabaseUnavailable(f"Folder {path.parent} does not exist.")
        fstype = _filesystem_type(path)
        if fstype in NETWORK_FILESYSTEMS:
            raise errors.StorageError(
                f"{path} is on a network filesystem ({fstype}); SQLite's WAL needs a local "
                "disk. Use a local path, or PostgreSQL for several machines."
            )

    def _setup_sqlite(self, engine: AsyncEngine, *, immediate: bool) -> None:
        pragmas = [
            "journal_mode=WAL",
            f"busy_timeout={self._busy_timeout_ms}",
            "foreign_keys=ON",
            f"synchronous={self._synchronous.upper()}",
        ]

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # We emit BEGIN ourselves (below), so the driver must not.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            try:
                for pragma in pragmas:
                    cursor.execute(f"PRAGMA {pragma}")
                    if pragma.startswith("journal_mode"):
                        mode = cursor.fetchone()[0]
                        if str(mode).lower() != "wal":
                            raise errors.StorageError(
                                f"SQLite refused WAL mode (got {mode!r}); graphrun needs WAL."
                            )
            finally:
                cursor.close()

        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: a deferred BEGIN that later writes
            # fails with "database is locked" instead of waiting (RELIABILITY.md finding 4).
            conn.exec_driver_sql(begin)

    async def close(self) -> None:
        """Finish queued writes, stop the writer and close every connection."""
        if self._writer_task is not None:
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
            self._writer_task = None
        for engine in (self._writer_engine, self._reader_engine):
            if engine is not None:
                await engine.dispose()
        self._writer_engine = self._reader_engine = None

    # -- writing -------------------------------------------------------------------------

    async def write(self, job: WriteJob[T]) -> T:
        """Run ``job`` in a write transaction and return its result once committed.

        Raises:
            StorageError: The transaction could not commit; nothing of the job was written.
            Exception: Whatever the job raised; its writes were rolled back.
        """
        if self._writer_task is None or self._writer_task.done():
            raise errors.StorageError("The database is closed.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(job, future))
        return await future

    async def _writer_loop(self) -> None:
        assert self._writer_engine is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        assert self._writer_engine is not None
        results: list[tuple[_Pending, Any]] = []
        try:
            with map_errors():
                async with self._writer_engine.begin() as conn:
                    if len(batch) == 1:
                        results.append((batch[0], await batch[0].job(conn)))
                    else:
                        for pending in batch:
                            try:
                                async with conn.begin_nested():
                                    results.append((pending, await pending.job(conn)))
                            except DBAPIError as exc:
                                _fail(pending, _storage_error(exc))
                            except Exception as exc:
                                _fail(pending, exc)
        except Exception as exc:
            for pending in batch:
                _fail(pending, exc)
            return
        for pending, result in results:
            if not pending.future.done():
                pending.future.set_result(result)

    # -- reading -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Open a read-only connection for the duration of the block."""
        if self._reader_engine is None:
            raise errors.StorageError("The database is closed.")
        with map_errors():
            async with self._reader_engine.connect() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def migration_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for schema migrations, on the writer engine, in one transaction."""
        assert self._writer_engine is not None
        with map_errors():
            async with self._writer_engine.begin() as conn:
                yield conn

    # -- dialect pieces ------------------------------------------------------------------

    def now(self) -> ColumnElement[float]:
        """The database clock in seconds since the epoch, as a SQL expression."""
        if self.dialect == "sqlite":
            return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)
        return cast(ColumnElement[float], func.extract("epoch", func.clock_timestamp()))

    def insert(self, table: Table) -> Any:
        """An INSERT for ``table`` that supports ``on_conflict_do_*`` on this dialect."""
        if self.dialect == "sqlite":
            return sqlite_dialect.insert(table)
        return pg_dialect.insert(table)


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)


def _async_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def _filesystem_type(path: Path) -> str | None:
    """The filesystem type holding ``path``, from /proc/mounts (None where unknown)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(
            mount
        ) > len(best):
            best, best_type = mount, parts[2]
    return best_type
