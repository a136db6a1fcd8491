"""The engine's database: connections, dialect setup, the single writer, error mapping.

Every dialect difference in connection handling lives here. On SQLite one writer thread owns
the only connection that writes (RELIABILITY.md: two writers on one file lock each other out
and expose the WAL-reset bug); every write in the process is a *job* submitted to it, and
jobs that arrive together commit together (group commit), each in its own savepoint so one
job's failure rolls back only that job. Reads run on a small pool of reader threads and
never wait for the writer (WAL).

Why threads and not an async driver: a job is a short synchronous function over a SQLAlchemy
`Connection`, and a whole batch of them costs one hop between the event loop and the
database thread. Through aiosqlite every statement is a hop of its own; measured here, a
checkpoint transaction took 2.9 ms that way against about 0.3 ms as one job (bench/README).
The event loop never blocks on the database either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Table, create_engine, event, func, literal
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from graphrun import errors

__all__ = ("Database", "Job", "map_errors")

logger = logging.getLogger("graphrun.storage")

T = TypeVar("T")

#: A unit of database work: a synchronous function over a connection inside a transaction.
#: It must only talk to the database (it runs on the database thread).
Job = Callable[[Connection], T]

MAX_BATCH = 256  # jobs per group commit
READ_THREADS = 4  # reader connections and threads
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
    job: Job[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class Database:
    """The engine's database: one writer, a read pool, and the dialect's SQL pieces.

    Create with `Database.open(url)`; close with `close()`. Storage modules take it as their
    first argument and use `write(job)` and `read(job)`.
    """

    def __init__(self, url: str, *, synchronous: str = "full", busy_timeout_s: float = 30.0):
        self.url: URL = _sync_url(url)
        self.dialect: str = self.url.get_backend_name()
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._writer_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._statements: dict[str, Any] = {}

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
        try:
            await asyncio.to_thread(db._connect, migrate)
        except BaseException:
            await db.close()
            raise
        db._writer = threading.Thread(
            target=db._writer_main, name="graphrun-db-writer", daemon=True
        )
        db._writer.start()
        return db

    def _connect(self, migrate: bool) -> None:
        from graphrun.storage import migrations

        if self.dialect != "sqlite":
            raise errors.StorageError(
                f"Unsupported database {self.dialect!r}: use sqlite:///path "
                "(PostgreSQL arrives with the scale-out work)."
            )
        self._check_sqlite_path()
        args = {"timeout": 0, "check_same_thread": False}
        self._writer_engine = create_engine(
            self.url, pool_size=1, max_overflow=0, connect_args=args
        )
        self._setup_sqlite(self._writer_engine, immediate=True)
        self._reader_engine = create_engine(
            self.url, pool_size=READ_THREADS, max_overflow=0, connect_args=args
        )
        self._setup_sqlite(self._reader_engine, immediate=False)
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="graphrun-db-reader")
        logger.info("sqlite %s", sqlite3.sqlite_version, extra={"action": "sqlite_version"})
        if sqlite3.sqlite_version_info < SQLITE_FIXED_VERSION:
            logger.debug(
                "SQLite %s predates the WAL-reset fix (3.51.3); safe here because this "
                "process writes through a single connection",
                sqlite3.sqlite_version,
            )
        with map_errors(), self._writer_engine.begin() as conn:
            if migrate:
                migrations.upgrade_on(conn)
            else:
                migrations.check_current_on(conn)

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

    def _setup_sqlite(self, engine: Engine, *, immediate: bool) -> None:
        pragmas = [
            "journal_mode=WAL",
            f"busy_timeout={self._busy_timeout_ms}",
            "foreign_keys=ON",
            f"synchronous={self._synchronous.upper()}",
        ]

        @event.listens_for(engine, "connect")
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

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: a deferred BEGIN that later writes
            # fails with "database is locked" instead of waiting (RELIABILITY.md finding 4).
            conn.exec_driver_sql(begin)

    async def close(self) -> None:
        """Finish queued writes, stop the writer and reader threads, close every connection."""
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=False)
            self._readers = None
        for engine in (self._writer_engine, self._reader_engine):
            if engine is not None:
                engine.dispose()
        self._writer_engine = self._reader_engine = None

    # -- writing -------------------------------------------------------------------------

    async def write(self, job: Job[T]) -> T:
        """Run ``job`` in a write transaction on the writer thread; return once committed.

        Raises:
            StorageError: The transaction could not commit; nothing of the job was written.
            Exception: Whatever the job raised; its writes were rolled back.
        """
        if self._writer is None:
            raise errors.StorageError("The database is closed.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Pending(job, future, loop))
        return await future

    def _writer_main(self) -> None:
        assert self._writer_engine is not None
        with self._writer_engine.connect() as conn:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._commit_batch(conn, batch)

    def _commit_batch(self, conn: Connection, batch: list[_Pending]) -> None:
        results: list[tuple[_Pending, Any]] = []
        failures: list[tuple[_Pending, BaseException]] = []
        try:
            with map_errors(), conn.begin():
                if len(batch) == 1:
                    results.append((batch[0], batch[0].job(conn)))
                else:
                    for pending in batch:
                        try:
                            with conn.begin_nested():
                                results.append((pending, pending.job(conn)))
                        except DBAPIError as exc:
                            failures.append((pending, _storage_error(exc)))
                        except Exception as exc:
                            failures.append((pending, exc))
        except Exception as exc:
            for pending in batch:
                _resolve(pending, error=exc)
            return
        for pending, failure in failures:
            _resolve(pending, error=failure)
        for pending, result in results:
            _resolve(pending, result=result)

    # -- reading -------------------------------------------------------------------------

    async def read(self, job: Job[T]) -> T:
        """Run ``job`` on a reader connection (a consistent snapshot) and return its result."""
        if self._readers is None or self._reader_engine is None:
            raise errors.StorageError("The database is closed.")
        engine = self._reader_engine

        def run() -> T:
            with map_errors(), engine.connect() as conn:
                return job(conn)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def rows(self, statement: Executable) -> list[RowMapping]:
        """All rows of a query, as mappings."""
        return await self.read(lambda conn: list(conn.execute(statement).mappings()))

    async def row(self, statement: Executable) -> RowMapping | None:
        """The first row of a query, or None."""
        return await self.read(lambda conn: conn.execute(statement).mappings().first())

    def statement(self, key: str, build: Callable[[], T]) -> T:
        """A statement built once per database and reused (hot paths skip rebuilding it)."""
        cached = self._statements.get(key)
        if cached is None:
            cached = self._statements[key] = build()
        return cast(T, cached)

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


def _resolve(pending: _Pending, *, result: Any = None, error: BaseException | None = None) -> None:
    """Complete a job's future from the writer thread, on its event loop."""

    def complete() -> None:
        if pending.future.done():
            return  # the caller was cancelled; the job's outcome stands regardless
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
        pending.loop.call_soon_threadsafe(complete)


def _sync_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername="sqlite+pysqlite")
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
