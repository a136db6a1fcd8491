"""SQLite: one writer connection with group commit, reader threads, and WAL.

One connection does all of a process's writing (docs/RELIABILITY.md: two writers on one file lock
each other out and expose the WAL-reset bug). Every write is a *job*, a short synchronous
function over that connection; jobs that arrive together commit together (group commit),
each in its own savepoint so one job's failure rolls back only that job. Reads use a pool of
reader threads and never wait for the writer (WAL).

Where the time goes decides where the work runs. A batch's statements touch pages already
in memory and take microseconds, so they run on the event loop; everything that waits runs
on the writer thread: acquiring the write lock when another process holds it, and COMMIT,
which is the fsync. Running the statements on a thread instead costs a GIL hand-off per
statement, which under load measured slower than the statements themselves.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Integer, Table, cast, create_engine, event, func, literal
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
from typing_extensions import override

from graphrun import errors
from graphrun.storage.database import Database, Job
from graphrun.storage.driver_errors import map_errors, storage_error

from .pg_batch import settle

__all__ = ("SQLiteDatabase",)

logger = logging.getLogger("graphrun.storage")

T = TypeVar("T")

MAX_BATCH = 256  # jobs per group commit
SLICE_S = 0.004  # longest stretch a batch runs on the event loop before letting others in
READ_THREADS = 4  # reader connections and threads
SQLITE_FIXED_VERSION = (3, 51, 3)  # first release without the WAL-reset corruption bug
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p"})


@dataclass(eq=False)
class _Pending:
    job: Job[Any]
    future: asyncio.Future[Any]


class SQLiteDatabase(Database):
    """A SQLite file: WAL, a single writer with group commit, readers that never wait."""

    dialect = "sqlite"

    def __init__(self, url: URL, *, synchronous: str = "full", busy_timeout_s: float = 30.0):
        super().__init__(url, busy_timeout_s=busy_timeout_s)
        self._synchronous = synchronous
        self._pending: collections.deque[_Pending] = collections.deque()
        self._work = asyncio.Event()
        self._closing = False
        self._writer_conn: Connection | None = None
        self._point_conn: Connection | None = None
        self._writer_task: asyncio.Task[None] | None = None
        #: Where the writer waits: lock acquisition and COMMIT (fsync).
        self._waiter: ThreadPoolExecutor | None = None

    @override
    def connect(self) -> None:
        self._check_sqlite_path()
        args = {"timeout": 0, "check_same_thread": False}
        self._writer_engine = create_engine(
            self.url, pool_size=1, max_overflow=0, connect_args=args
        )
        self._setup_sqlite(self._writer_engine, immediate=True)
        self._reader_engine = create_engine(
            self.url, pool_size=READ_THREADS + 1, max_overflow=0, connect_args=args
        )
        self._setup_sqlite(self._reader_engine, immediate=False)
        # The connection `read_point` uses on the event loop: it never waits for a lock.
        self._point_conn = self._reader_engine.connect()
        self._point_conn.exec_driver_sql("PRAGMA busy_timeout = 0")
        self._point_conn.rollback()
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="graphrun-db-reader")
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="graphrun-db-writer")
        logger.info("sqlite %s", sqlite3.sqlite_version, extra={"action": "sqlite_version"})
        if sqlite3.sqlite_version_info < SQLITE_FIXED_VERSION:
            logger.debug(
                "SQLite %s predates the WAL-reset fix (3.51.3); safe here because this "
                "process writes through a single connection",
                sqlite3.sqlite_version,
            )
        with map_errors():
            self._writer_conn = self._writer_engine.connect()

    @override
    def run_schema(self, job: Job[None], *, creating: bool) -> None:
        conn = self._writer_conn
        assert conn is not None
        with map_errors():
            driver: Any = conn.connection.driver_connection  # autocommit: no BEGIN around it
            if creating and driver.execute("SELECT 1 FROM sqlite_master").fetchone() is None:
                # A new database (no table yet, the only time it can be set): freed pages can
                # then go back to the file system after a purge (`reclaim_space`).
                driver.execute("PRAGMA auto_vacuum = INCREMENTAL")
                driver.execute("VACUUM")  # applies it (WAL is on already); instant when empty
            with conn.begin():
                job(conn)

    @override
    async def start(self) -> None:
        conn = self._writer_conn
        assert conn is not None
        with map_errors():
            # From here on the writer never waits on the event loop: taking the lock fails
            # at once and `_begin` waits for it on the writer thread instead.
            conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            conn.commit()
        self._writer_task = asyncio.create_task(self._writer_loop(), name="graphrun-db-writer")
        self._open = True

    @override
    async def close(self) -> None:
        self._open = False
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        if self._writer_task is not None:
            self._closing = True
            self._work.set()
            # Shielded: a cancelled close must not cancel the writer mid-batch.
            await asyncio.shield(self._writer_task)
            self._writer_task = None
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None
        if self._point_conn is not None:
            self._point_conn.close()
            self._point_conn = None
        for pool in (self._readers, self._waiter):
            if pool is not None:
                pool.shutdown(wait=False)
        self._readers = self._waiter = None
        for engine in (self._writer_engine, self._reader_engine):
            if engine is not None:
                engine.dispose()
        self._writer_engine = self._reader_engine = None

    @override
    async def write(self, job: Job[T]) -> T:
        if not self._open or self._closing:
            raise errors.DatabaseClosed()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(job, future))
        self._work.set()
        return await future

    async def _writer_loop(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
                await self._commit_batch(batch)
            if self._closing:
                return

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        conn = self._writer_conn
        assert conn is not None
        assert self._waiter is not None
        loop = asyncio.get_running_loop()
        outcomes: list[tuple[_Pending, Any, BaseException | None]] = []
        try:
            transaction = await self._begin(conn)
            try:
                with map_errors():
                    outcomes = await _run_jobs(conn, batch)
                    if all(error is not None for _, _, error in outcomes):
                        transaction.rollback()
                    else:
                        await loop.run_in_executor(self._waiter, transaction.commit)
            except BaseException:
                _reset(conn)
                raise
        except Exception as exc:
            if not isinstance(exc, errors.GraphrunError):
                exc = errors.StorageError(f"Database error: {exc}")
            outcomes = [(pending, None, exc) for pending in batch]
        for pending, result, error in outcomes:
            settle(pending.future, result, error)

    async def _begin(self, conn: Connection) -> Any:
        try:
            with map_errors():
                return conn.begin()
        except errors.StorageBusy:
            pass
        # Another process holds the write lock: wait for it off the event loop.
        assert self._waiter is not None
        timeout_ms = self._busy_timeout_ms

        def wait_for_lock() -> Any:
            # On the driver connection: through SQLAlchemy the PRAGMA would autobegin.
            driver = conn.connection.driver_connection
            assert driver is not None
            with map_errors():
                driver.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                try:
                    return conn.begin()
                finally:
                    driver.execute("PRAGMA busy_timeout = 0")

        return await asyncio.get_running_loop().run_in_executor(self._waiter, wait_for_lock)

    @override
    async def read_point(self, job: Job[T]) -> T:
        """Run a lookup by key (a few rows by an index) right here, on the event loop.

        Such a read takes microseconds on SQLite's cached pages, far less than the trip to a
        reader thread and back through a busy event loop, so request paths use it. It never
        waits for a lock: in the rare case SQLite reports one, it goes to a reader thread.
        """
        conn = self._point_conn
        if conn is None:
            raise errors.DatabaseClosed()
        try:
            with map_errors():
                try:
                    return job(conn)
                finally:
                    conn.rollback()  # end the read transaction: never hold a snapshot open
        except errors.StorageBusy:
            return await self.read(job)

    @override
    async def reclaim_space(self, max_pages: int = 2000) -> int:
        """Give up to ``max_pages`` free pages back to the file system; the pages freed.

        SQLite keeps deleted rows' pages for reuse; with ``auto_vacuum=INCREMENTAL`` (set on
        every database graphrun creates) ``incremental_vacuum`` truncates them off the file.
        It runs on a connection of its own, briefly holding the write lock.
        """
        if not self.url.database:
            return 0
        database, timeout = self.url.database, self._busy_timeout_ms / 1000

        def run() -> int:
            path = str(Path(database).resolve())
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            try:
                before = conn.execute("PRAGMA freelist_count").fetchone()[0]
                # executescript runs the pragma to the end (execute frees a single page)
                conn.executescript(f"PRAGMA incremental_vacuum({int(max_pages)});")
                after = conn.execute("PRAGMA freelist_count").fetchone()[0]
                return int(before) - int(after)
            finally:
                conn.close()

        with map_errors():
            return await asyncio.to_thread(run)

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
            # fails with "database is locked" instead of waiting (docs/RELIABILITY.md finding 4).
            conn.exec_driver_sql(begin)

    # -- dialect pieces ------------------------------------------------------------------

    @override
    def now(self) -> ColumnElement[float]:
        return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)

    @override
    def insert(self, table: Table) -> Any:
        return sqlite_dialect.insert(table)

    @override
    def floor_int(self, value: Any) -> Any:
        # SQLite's cast truncates, which is floor for positive numbers (and its ``floor`` is
        # not always compiled in).
        return cast(value, Integer)

    @override
    def among(self, column: Any, ids: Sequence[str]) -> Any:
        return column.in_(ids)

    @override
    def locked_in_key_order(self, conditions: Sequence[Any], key: Any) -> list[Any]:
        return list(conditions)  # one writer: nothing to order

    @override
    def try_transaction_lock(self, conn: Connection, key: int) -> bool:
        return True  # one writer: its transactions are serialized anyway

    @override
    def notify_queued(self, conn: Connection, workflows: Collection[str]) -> None:
        """Nothing to send: one process per database file, which wakes its worker itself."""


def _reset(conn: Connection) -> None:
    """Leave no transaction open after a failed batch, whatever state the failure left.

    A COMMIT that fails (a deferred constraint, an I/O error) can leave SQLite's transaction
    open while SQLAlchemy considers its own finished; the next batch would then fail forever.
    """
    driver: Any = conn.connection.driver_connection
    with contextlib.suppress(Exception):
        if driver.in_transaction:
            driver.rollback()
    with contextlib.suppress(Exception):
        conn.rollback()  # also discards a transaction SQLAlchemy holds as inactive


async def _run_jobs(
    conn: Connection, batch: list[_Pending]
) -> list[tuple[_Pending, Any, BaseException | None]]:
    """Run a batch's jobs in the open transaction, each in its own savepoint.

    Every `SLICE_S` of work it lets the event loop run other tasks (requests, heartbeats),
    so a large batch never stalls the loop for its whole length; only this writer uses the
    connection, so the open transaction is safe meanwhile.
    """
    if len(batch) == 1:
        return [(batch[0], batch[0].job(conn), None)]
    outcomes: list[tuple[_Pending, Any, BaseException | None]] = []
    driver: Any = conn.connection.driver_connection
    slice_started = time.perf_counter()
    for pending in batch:
        if time.perf_counter() - slice_started > SLICE_S:
            await asyncio.sleep(0)
            slice_started = time.perf_counter()
        # Raw SAVEPOINT statements: SQLAlchemy's begin_nested() costs ten times more here.
        driver.execute("SAVEPOINT job")
        try:
            result = pending.job(conn)
        except Exception as exc:
            if not driver.in_transaction:
                # SQLite aborted the whole transaction (disk full, I/O error): every job of
                # the batch fails with the cause.
                raise
            driver.execute("ROLLBACK TO job")
            failure = storage_error(exc) if isinstance(exc, DBAPIError | sqlite3.Error) else exc
            outcomes.append((pending, None, failure))
        else:
            outcomes.append((pending, result, None))
        driver.execute("RELEASE job")
    return outcomes


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
