"""The engine's database: connections, dialect setup, the single writer, error mapping.

Every dialect difference in connection handling lives here.

PostgreSQL: a pool of connections (psycopg 3 under SQLAlchemy), used from as many threads;
each job is its own transaction on one of them, so many writers from many processes run at
once and row locks (``FOR UPDATE [SKIP LOCKED]``) order them. Every statement has a
deadline (``statement_timeout``), and a job that lost a deadlock is run again.

SQLite: one connection does
all of a process's writing (RELIABILITY.md: two writers on one file lock each other out and
expose the WAL-reset bug). Every write is a *job*, a short synchronous function over that
connection; jobs that arrive together commit together (group commit), each in its own
savepoint so one job's failure rolls back only that job. Reads use a pool of reader
threads and never wait for the writer (WAL).

Where the time goes decides where the work runs. A batch's statements touch pages already
in memory and take microseconds, so they run on the event loop; everything that waits runs
on the writer thread: acquiring the write lock when another process holds it, and COMMIT,
which is the fsync. Running the statements on a thread instead costs a GIL hand-off per
statement, which under load measured slower than the statements themselves (bench/README).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import Table, create_engine, event, func, literal
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from graphrun import errors
from graphrun.storage.pg_batch import StatementBatcher, settle

__all__ = (
    "Database",
    "Job",
    "RawStatement",
    "map_errors",
)

logger = logging.getLogger("graphrun.storage")

T = TypeVar("T")

#: A unit of database work: a synchronous function over a connection inside a transaction.
#: It must only talk to the database (it runs on the database thread).
Job = Callable[[Connection], T]

MAX_BATCH = 256  # jobs per group commit
SLICE_S = 0.004  # longest stretch a batch runs on the event loop before letting others in
READ_THREADS = 4  # reader connections and threads
SQLITE_FIXED_VERSION = (3, 51, 3)  # first release without the WAL-reset corruption bug
PG_POOL = 8  # PostgreSQL connections (and threads) per process
PG_RETRIES = 3  # attempts of a job that lost a deadlock or a serialization check
PG_RETRY_STATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
MIGRATION_LOCK = 0x67726170  # pg_advisory_xact_lock key: one process migrates at a time
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p"})


#: Driver errors: SQLAlchemy's wrapper, and the drivers' own (raw statements use the cursor).
DRIVER_ERRORS = (DBAPIError, sqlite3.Error, psycopg.Error)
#: PostgreSQL SQLSTATEs that mean "try again soon": deadlock, serialization failure, lock
#: not available, statement cancelled by its timeout.
PG_BUSY_STATES = frozenset({"40P01", "40001", "55P03", "57014"})
#: ... and those that mean the server is gone or refuses: admin shutdown, crash shutdown,
#: cannot connect now, too many connections (plus class 08, connection exceptions).
PG_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: Connection failures psycopg reports without a SQLSTATE.
PG_CONNECTION_SIGNS = (
    "connection failed",
    "server closed the connection",
    "connection is closed",
    "connection is lost",
    "consuming input failed",
    "sending query failed",
    "could not send data",
    "connection socket closed",
)


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate driver errors into the `StorageError` tree; never leak SQLAlchemy upward."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise _storage_error(exc) from exc


def _sqlstate(exc: BaseException) -> str | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _storage_error(exc: DBAPIError | sqlite3.Error | psycopg.Error) -> errors.StorageError:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig if orig is not None else exc).lower()
    if isinstance(orig, psycopg.Error) or isinstance(exc, psycopg.Error):
        state = _sqlstate(exc)
        invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
        if state in PG_BUSY_STATES:
            return errors.StorageBusy(f"The database is busy: {text}")
        if (
            invalidated
            or state in PG_UNAVAILABLE_STATES
            or (state or "").startswith("08")
            or (state is None and isinstance(orig, psycopg.OperationalError))
            or any(sign in text for sign in PG_CONNECTION_SIGNS)
        ):
            return errors.DatabaseUnavailable(f"Database unavailable: {text}")
        return errors.StorageError(f"Database error ({type(orig).__name__}): {text}")
    if "database is locked" in text or "database table is locked" in text:
        return errors.StorageBusy()
    if "database or disk is full" in text or "no space left" in text:
        return errors.StorageFull()
    if "disk i/o error" in text:
        return errors.StorageIOError()
    if "unable to open database" in text or ("connection" in text and "refused" in text):
        return errors.DatabaseUnavailable(f"Database unavailable: {text}")
    if isinstance(exc, OperationalError | sqlite3.OperationalError):
        return errors.StorageError(f"Database error: {text}")
    return errors.StorageError(f"Database error ({type(orig).__name__}): {text}")


@dataclass(frozen=True)
class RawStatement:
    """A statement compiled once to the driver's SQL and run on the driver's cursor.

    For the few statements every step of every run executes: SQLAlchemy's execution path
    costs several times the statement itself there. Everything else uses SQLAlchemy.
    """

    sql: str
    #: Parameter names in positional order (``None`` for named paramstyles).
    positions: tuple[str, ...] | None
    #: Values of parameters the statement carries itself (literals).
    defaults: dict[str, Any]
    #: Parameters stored in JSON columns, serialized here as SQLAlchemy's JSON type would.
    json_keys: frozenset[str]

    def bind(self, values: dict[str, Any]) -> Any:
        """Driver parameters for one execution."""
        merged = {**self.defaults, **values}
        for key in self.json_keys & merged.keys():
            merged[key] = json.dumps(merged[key])
        if self.positions is None:
            return merged
        return tuple(merged[k] for k in self.positions)


@dataclass(eq=False)
class _Pending:
    job: Job[Any]
    future: asyncio.Future[Any]


class Database:
    """The engine's database: one writer, a read pool, and the dialect's SQL pieces.

    Create with `Database.open(url)`; close with `close()`. Storage modules take it as their
    first argument and use `write(job)` and `read(job)`.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "full",
        busy_timeout_s: float = 30.0,
        pool_size: int = PG_POOL,
    ):
        self.url: URL = _sync_url(url)
        self.dialect: str = self.url.get_backend_name()
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._pool_size = pool_size
        self._writer_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._pending: collections.deque[_Pending] = collections.deque()
        self._work = asyncio.Event()
        self._closing = False
        self._writer_conn: Connection | None = None
        self._point_conn: Connection | None = None
        self._writer_task: asyncio.Task[None] | None = None
        #: Where the writer waits: lock acquisition and COMMIT (fsync).
        self._waiter: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._statements: dict[str, Any] = {}
        #: Reads (and PostgreSQL writes) in flight on pool threads: `close` waits for them.
        self._in_flight: set[asyncio.Future[Any]] = set()
        #: PostgreSQL: the statements every step executes, committed in batches.
        self._batcher: StatementBatcher | None = None
        self._open = False

    def libpq_dsn(self) -> str:
        """The URL as libpq (psycopg) takes it, for connections of its own (``LISTEN``)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        synchronous: str = "full",
        busy_timeout_s: float = 30.0,
        migrate: bool = True,
        pool_size: int = PG_POOL,
    ) -> Database:
        """Connect, check the environment, and bring the schema to the current migration.

        Raises:
            StorageError: The database cannot be used safely (network filesystem, no WAL).
            MigrationRequired: ``migrate`` is false and the schema is not current.
        """
        db = cls(url, synchronous=synchronous, busy_timeout_s=busy_timeout_s, pool_size=pool_size)
        try:
            await asyncio.to_thread(db._connect, migrate)
            if db.dialect == "postgresql":
                db._batcher = StatementBatcher(
                    db.libpq_dsn(),
                    connections=max(1, pool_size // 4),
                    timeout_s=busy_timeout_s,
                    connect_kwargs=db.pg_connect_args(),
                    to_error=_storage_error,
                )
                await db._batcher.open()
        except BaseException:
            await db.close()
            raise
        if db.dialect == "sqlite":
            db._writer_task = asyncio.create_task(db._writer_loop(), name="graphrun-db-writer")
        db._open = True
        return db

    def _connect(self, migrate: bool) -> None:
        if self.dialect == "sqlite":
            self._connect_sqlite(migrate)
        elif self.dialect == "postgresql":
            self._connect_postgres(migrate)
        else:
            raise errors.StorageError(
                f"Unsupported database {self.dialect!r}: use sqlite:///path or "
                "postgresql://user@host/database."
            )

    def pg_connect_args(self) -> dict[str, Any]:
        """Connection settings (psycopg) every PostgreSQL connection of this process uses."""
        deadline_ms = self._busy_timeout_ms
        return {
            "connect_timeout": 10,
            # Every statement has a deadline; a lock wait gives up at the same time.
            "options": f"-c statement_timeout={deadline_ms} -c lock_timeout={deadline_ms}"
            " -c idle_in_transaction_session_timeout=60000",
            "application_name": "graphrun",
            # A connection dropped silently (no FIN) is noticed within a minute.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }

    def _connect_postgres(self, migrate: bool) -> None:
        from graphrun.storage import migrations

        engine = create_engine(
            self.url,
            pool_size=self._pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            pool_timeout=self._busy_timeout_ms / 1000,
            connect_args=self.pg_connect_args(),
        )
        self._writer_engine = self._reader_engine = engine
        self._readers = ThreadPoolExecutor(self._pool_size, thread_name_prefix="graphrun-db")
        with map_errors(), engine.begin() as conn:
            # A migration may take long (an index on a big table): no deadline for it.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            if migrate:
                migrations.upgrade_on(conn)
            else:
                migrations.check_current_on(conn)

    def _connect_sqlite(self, migrate: bool) -> None:
        from graphrun.storage import migrations

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
            conn = self._writer_engine.connect()
            self._writer_conn = conn
            driver: Any = conn.connection.driver_connection  # autocommit: no BEGIN around it
            if migrate and driver.execute("SELECT 1 FROM sqlite_master").fetchone() is None:
                # A new database (no table yet, the only time it can be set): freed pages can
                # then go back to the file system after a purge (`reclaim_space`).
                driver.execute("PRAGMA auto_vacuum = INCREMENTAL")
                driver.execute("VACUUM")  # applies it (WAL is on already); instant when empty
            with conn.begin():
                if migrate:
                    migrations.upgrade_on(conn)
                else:
                    migrations.check_current_on(conn)
            # From here on the writer never waits on the event loop: taking the lock fails
            # at once and `_begin` waits for it on the writer thread instead.
            conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            conn.commit()

    async def reclaim_space(self, max_pages: int = 2000) -> int:
        """Give up to ``max_pages`` free pages back to the file system (SQLite); pages freed.

        SQLite keeps deleted rows' pages for reuse; with ``auto_vacuum=INCREMENTAL`` (set on
        every database graphrun creates) ``incremental_vacuum`` truncates them off the file.
        It runs on a connection of its own, briefly holding the write lock. PostgreSQL
        reuses the space of deleted rows after (auto)vacuum: nothing to do here.
        """
        if self.dialect != "sqlite" or not self.url.database:
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
            # fails with "database is locked" instead of waiting (RELIABILITY.md finding 4).
            conn.exec_driver_sql(begin)

    async def close(self) -> None:
        """Finish queued writes, stop the writer and readers, close every connection."""
        self._open = False
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
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

    # -- writing -------------------------------------------------------------------------

    async def write(self, job: Job[T]) -> T:
        """Run ``job`` in a write transaction and return its result once committed.

        Raises:
            StorageError: The transaction could not commit; nothing of the job was written.
            Exception: Whatever the job raised; its writes were rolled back.
        """
        if not self._open or self._closing:
            raise errors.StorageError("The database is closed.")
        if self.dialect == "postgresql":
            return await self._write_postgres(job)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(job, future))
        self._work.set()
        return await future

    async def batched(self, sql: str, params: dict[str, Any], *, order: str) -> Any:
        """PostgreSQL: run one self-contained write statement in the next group commit.

        Returns the first column of its first row. Statements that arrive together share a
        transaction (`storage/pg_batch.py` says what such a statement must guarantee);
        ``order`` is the key of the row it locks first (batches lock in that order).

        Raises:
            StorageError: It failed, or its outcome is unknown (the connection was lost).
        """
        if not self._open or self._batcher is None:
            raise errors.StorageError("The database is closed.")
        return await self._batcher.execute(sql, params, order=order)

    async def _write_postgres(self, job: Job[T]) -> T:
        assert self._readers is not None
        engine = self._writer_engine
        assert engine is not None

        def run() -> T:
            for attempt in range(PG_RETRIES):
                try:
                    with engine.begin() as conn:
                        return job(conn)
                except DRIVER_ERRORS as exc:
                    if _sqlstate(exc) in PG_RETRY_STATES and attempt + 1 < PG_RETRIES:
                        continue  # rolled back whole: running it again is safe
                    raise _storage_error(exc) from exc
            raise AssertionError("unreachable")

        # The transaction outlives a cancelled caller: its outcome stands either way.
        future = asyncio.get_running_loop().run_in_executor(self._readers, run)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(future)

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

    # -- reading -------------------------------------------------------------------------

    async def read(self, job: Job[T]) -> T:
        """Run ``job`` on a reader connection and return its result.

        On SQLite the job sees one consistent snapshot; on PostgreSQL (READ COMMITTED) each
        statement sees what was committed when it began.
        """
        if self._readers is None or self._reader_engine is None:
            raise errors.StorageError("The database is closed.")
        engine = self._reader_engine
        # PostgreSQL: READ COMMITTED gives each statement its own snapshot anyway; without a
        # transaction there is no BEGIN to send nor ROLLBACK to wait for (one round trip).
        options = {"isolation_level": "AUTOCOMMIT"} if self.dialect == "postgresql" else {}

        def run() -> T:
            with map_errors(), engine.connect() as conn:
                return job(conn.execution_options(**options) if options else conn)

        # Tracked and shielded like writes: a cancelled caller leaves the thread running with
        # a connection checked out, and `close` must wait for it to come back.
        future = asyncio.get_running_loop().run_in_executor(self._readers, run)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(future)

    async def read_point(self, job: Job[T]) -> T:
        """Run a lookup by key (a few rows by an index) right here, without a thread hop.

        Such a read takes microseconds on SQLite's cached pages, far less than the trip to a
        reader thread and back through a busy event loop, so request paths use it. It never
        waits for a lock: in the rare case SQLite reports one, it goes to a reader thread.
        """
        if self.dialect == "postgresql":
            return await self.read(job)  # a network round trip: never on the event loop
        conn = self._point_conn
        if conn is None:
            raise errors.StorageError("The database is closed.")
        try:
            with map_errors():
                try:
                    return job(conn)
                finally:
                    conn.rollback()  # end the read transaction: never hold a snapshot open
        except errors.StorageBusy:
            return await self.read(job)

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

    def raw(
        self,
        key: str,
        build: Callable[[], Any],
        *,
        columns: Sequence[str] | None = None,
        json_columns: Collection[str] = (),
    ) -> RawStatement:
        """A `RawStatement`, compiled once per database from a SQLAlchemy statement."""

        def compile_raw() -> RawStatement:
            assert self._writer_engine is not None
            compiled = build().compile(dialect=self._writer_engine.dialect, column_keys=columns)
            names = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            return RawStatement(
                sql=compiled.string,
                positions=names,
                defaults=dict(compiled.params),
                json_keys=frozenset(json_columns),
            )

        return self.statement(f"raw:{key}", compile_raw)

    def execute_raw(self, conn: Connection, statement: RawStatement, values: dict[str, Any]) -> int:
        """Execute a `RawStatement` once in the caller's transaction; return the row count."""
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(statement.sql, statement.bind(values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany_raw(
        self, conn: Connection, statement: RawStatement, rows: Sequence[dict[str, Any]]
    ) -> None:
        """Execute a `RawStatement` for many rows in the caller's transaction."""
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(statement.sql, [statement.bind(r) for r in rows])
        finally:
            cursor.close()

    # -- dialect pieces ------------------------------------------------------------------

    def now(self) -> ColumnElement[float]:
        """The database clock in seconds since the epoch, as a SQL expression."""
        if self.dialect == "sqlite":
            return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)
        # statement_timestamp: one value for the whole statement (created_at == updated_at).
        return cast(ColumnElement[float], func.extract("epoch", func.statement_timestamp()))

    def insert(self, table: Table) -> Any:
        """An INSERT for ``table`` that supports ``on_conflict_do_*`` on this dialect."""
        if self.dialect == "sqlite":
            return sqlite_dialect.insert(table)
        return pg_dialect.insert(table)


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
            failure = _storage_error(exc) if isinstance(exc, DBAPIError | sqlite3.Error) else exc
            outcomes.append((pending, None, failure))
        else:
            outcomes.append((pending, result, None))
        driver.execute("RELEASE job")
    return outcomes


def _sync_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername="sqlite+pysqlite")
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
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
