"""The database contract: what storage modules may ask of a backend, and nothing dialect-specific.

Storage modules take a `Database` as their first argument and use `write(job)` (a short
synchronous function over a connection, in a transaction that commits before the call
returns), `read(job)` (on a reader thread) and `read_point(job)` (a lookup by key, where the
backend can answer without a thread hop). Every way SQLite and PostgreSQL differ is a
method here, implemented by `backends.sqlite.SQLiteDatabase` and
`backends.postgres.PostgresDatabase`; nothing outside those two modules asks which one it
has. `backends.open_database` picks the backend from the URL and sets up the schema.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.engine import URL, Connection, Engine, RowMapping
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from graphrun import errors

from .driver_errors import map_errors

if TYPE_CHECKING:
    from sqlalchemy import Table

    from .records import Fence, Flush

__all__ = ("Database", "Job", "Listener", "RawStatement")

T = TypeVar("T")

#: A unit of database work: a synchronous function over a connection inside a transaction.
#: It must only talk to the database (it runs on the database thread).
Job = Callable[[Connection], T]


class Listener(abc.ABC):
    """A background task telling this process about runs other processes queued."""

    @abc.abstractmethod
    async def run(self) -> None:
        """Listen until cancelled; reconnecting is the listener's own business."""


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


class Database(abc.ABC):
    """The engine's database: a writer, a read pool, and the dialect's SQL pieces.

    Open with `backends.open_database(url)`; close with `close()`.
    """

    #: ``sqlite`` or ``postgresql``: for logs and measurements. Behaviour that differs by
    #: dialect is a method of the backend, never a comparison with this name.
    dialect: str

    def __init__(self, url: URL, *, busy_timeout_s: float) -> None:
        self.url = url
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._writer_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._statements: dict[str, Any] = {}
        #: Reads (and PostgreSQL writes) in flight on pool threads: `close` waits for them.
        self._in_flight: set[asyncio.Future[Any]] = set()
        #: Execution options of reader connections.
        self._read_options: dict[str, Any] = {}
        self._open = False

    # -- lifecycle (backends.open_database calls these in order) -------------------------

    @abc.abstractmethod
    def connect(self) -> None:
        """Create the connection pools and check the environment (runs on a thread).

        Raises:
            StorageError: The database cannot be used safely.
        """

    @abc.abstractmethod
    def run_schema(self, job: Job[None], *, creating: bool) -> None:
        """Run a schema job (a migration, or its check) alone, without deadlines (a thread).

        ``creating`` allows preparing a database that has no table yet.
        """

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the backend's own tasks; from now on it takes work."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish queued writes, stop the writer and readers, close every connection."""

    def _raise_if_closed(self) -> None:
        if not self._open:
            raise errors.DatabaseClosed()

    # -- work ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def write(self, job: Job[T]) -> T:
        """Run ``job`` in a write transaction and return its result once committed.

        Raises:
            DatabaseClosed: The database is closed.
            StorageError: The transaction could not commit; nothing of the job was written.
            Exception: Whatever the job raised; its writes were rolled back.
        """

    async def read(self, job: Job[T]) -> T:
        """Run ``job`` on a reader connection and return its result.

        On SQLite the job sees one consistent snapshot; on PostgreSQL (READ COMMITTED) each
        statement sees what was committed when it began.

        Raises:
            DatabaseClosed: The database is closed.
        """
        if self._readers is None or self._reader_engine is None:
            raise errors.DatabaseClosed()
        engine, options = self._reader_engine, self._read_options

        def run() -> T:
            with map_errors(), engine.connect() as conn:
                return job(conn.execution_options(**options) if options else conn)

        # Tracked and shielded like writes: a cancelled caller leaves the thread running with
        # a connection checked out, and `close` must wait for it to come back.
        return await self._on_pool(run)

    async def _on_pool(self, run: Callable[[], T]) -> T:
        """Run ``run`` on a pool thread; it outlives a cancelled caller, `close` waits for it."""
        assert self._readers is not None
        future = asyncio.get_running_loop().run_in_executor(self._readers, run)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(future)

    @abc.abstractmethod
    async def read_point(self, job: Job[T]) -> T:
        """Run a lookup by key (a few rows by an index), without a thread hop where possible."""

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

    async def write_step(
        self,
        fence: Fence,
        taken: Flush,
        checkpoint: dict[str, Any],
        *,
        progress: str | None,
        lease_ttl_s: float,
    ) -> bool:
        """Commit a worker's checkpoint by the backend's fast path, if it has one that fits.

        Returns:
            True if written; False if the caller must write it the general way.

        Raises:
            LeaseLost: The fence no longer holds the lease; nothing was written.
        """
        return False

    async def reclaim_space(self, max_pages: int = 2000) -> int:
        """Give up to ``max_pages`` free pages back to the file system; the pages freed."""
        return 0

    def listener(
        self, on_queued: Callable[[str], None], on_connected: Callable[[], None]
    ) -> Listener | None:
        """A listener for runs other processes queue, where the backend can tell (else None).

        ``on_queued(workflow)`` is called for each; ``on_connected()`` on every
        (re)connection, since runs queued while nobody listened are not announced again.
        """
        return None

    # -- dialect pieces ------------------------------------------------------------------

    @abc.abstractmethod
    def now(self) -> ColumnElement[float]:
        """The database clock in seconds since the epoch, as a SQL expression."""

    @abc.abstractmethod
    def insert(self, table: Table) -> Any:
        """An INSERT for ``table`` that supports ``on_conflict_do_*`` on this dialect."""

    @abc.abstractmethod
    def floor_int(self, value: Any) -> Any:
        """``floor(value)`` as an integer, for the positive numbers of times and days."""

    @abc.abstractmethod
    def among(self, column: Any, ids: Sequence[str]) -> Any:
        """``column IN ids``, cheap for hundreds of ids (which hold no comma)."""

    @abc.abstractmethod
    def locked_in_key_order(self, conditions: Sequence[Any], key: Any) -> list[Any]:
        """Conditions that select the same rows, locked in one global order of ``key``.

        Two transactions that lock several runs (heartbeats, group commits) then never
        deadlock. Where one writer serializes everything, the conditions as they are.
        """

    @abc.abstractmethod
    def try_transaction_lock(self, conn: Connection, key: int) -> bool:
        """Take the lock ``key`` for this transaction unless another process holds it."""

    @abc.abstractmethod
    def notify_queued(self, conn: Connection, workflows: Collection[str]) -> None:
        """Inside a write transaction: tell other processes runs of ``workflows`` were queued."""
