"""PostgreSQL: a pool of connections, group-committed steps, LISTEN/NOTIFY wake-ups.

A pool of connections (psycopg 3 under SQLAlchemy), used from as many threads; each job is
its own transaction on one of them, so many writers from many processes run at once and row
locks (``FOR UPDATE [SKIP LOCKED]``) order them. Every statement has a deadline
(``statement_timeout``), and a job that lost a deadlock is run again. A worker's checkpoint
is one statement (`pg_step`) committed in batches with other runs' (`pg_batch`); queued runs
are announced with ``NOTIFY`` and heard by a `pg_listen.QueuedRunListener`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Integer, Table, any_, bindparam, create_engine, func, select, text
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import ColumnElement
from typing_extensions import override

from graphrun import errors
from graphrun.storage.database import Database, Job, Listener
from graphrun.storage.driver_errors import (
    DRIVER_ERRORS,
    PG_RETRY_STATES,
    map_errors,
    sqlstate,
    storage_error,
)

from . import pg_step
from .pg_batch import StatementBatcher
from .pg_listen import CHANNEL, QueuedRunListener

if TYPE_CHECKING:
    from graphrun.storage.records import Fence, Flush

__all__ = ("PG_POOL", "PostgresDatabase")

T = TypeVar("T")

PG_POOL = 8  # PostgreSQL connections (and threads) per process
PG_RETRIES = 3  # attempts of a job that lost a deadlock or a serialization check
MIGRATION_LOCK = 0x67726170  # pg_advisory_xact_lock key: one process migrates at a time


class PostgresDatabase(Database):
    """A PostgreSQL database shared by many worker processes on many machines."""

    dialect = "postgresql"

    def __init__(self, url: URL, *, busy_timeout_s: float = 30.0, pool_size: int = PG_POOL):
        super().__init__(url, busy_timeout_s=busy_timeout_s)
        self._pool_size = pool_size
        #: The statements every step executes, committed in batches.
        self._batcher: StatementBatcher | None = None
        # READ COMMITTED gives each statement its own snapshot anyway; without a transaction
        # there is no BEGIN to send nor ROLLBACK to wait for (one round trip).
        self._read_options = {"isolation_level": "AUTOCOMMIT"}

    def libpq_dsn(self) -> str:
        """The URL as libpq (psycopg) takes it, for connections of its own (``LISTEN``)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def connect_args(self) -> dict[str, Any]:
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

    @override
    def connect(self) -> None:
        self._writer_engine = self._reader_engine = create_engine(
            self.url,
            pool_size=self._pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            pool_timeout=self._busy_timeout_ms / 1000,
            connect_args=self.connect_args(),
        )
        self._readers = ThreadPoolExecutor(self._pool_size, thread_name_prefix="graphrun-db")

    @override
    def run_schema(self, job: Job[None], *, creating: bool) -> None:
        assert self._writer_engine is not None
        with map_errors(), self._writer_engine.begin() as conn:
            # A migration may take long (an index on a big table): no deadline for it.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            job(conn)

    @override
    async def start(self) -> None:
        self._batcher = StatementBatcher(
            self.libpq_dsn(),
            connections=max(1, self._pool_size // 4),
            timeout_s=self._busy_timeout_ms / 1000,
            connect_kwargs=self.connect_args(),
            to_error=storage_error,
        )
        await self._batcher.open()
        self._open = True

    @override
    async def close(self) -> None:
        self._open = False
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        if self._readers is not None:
            self._readers.shutdown(wait=False)
        self._readers = None
        if self._writer_engine is not None:
            self._writer_engine.dispose()
        self._writer_engine = self._reader_engine = None

    @override
    async def write(self, job: Job[T]) -> T:
        self._raise_if_closed()
        engine = self._writer_engine
        assert engine is not None

        def run() -> T:
            for attempt in range(PG_RETRIES):
                try:
                    with engine.begin() as conn:
                        return job(conn)
                except DRIVER_ERRORS as exc:
                    if sqlstate(exc) in PG_RETRY_STATES and attempt + 1 < PG_RETRIES:
                        continue  # rolled back whole: running it again is safe
                    raise storage_error(exc) from exc
            raise AssertionError("unreachable")

        # The transaction outlives a cancelled caller: its outcome stands either way.
        return await self._on_pool(run)

    @override
    async def read_point(self, job: Job[T]) -> T:
        return await self.read(job)  # a network round trip: never on the event loop

    async def batched(self, sql: str, params: dict[str, Any], *, order: str) -> Any:
        """Run one self-contained write statement in the next group commit.

        Returns the first column of its first row. Statements that arrive together share a
        transaction (`pg_batch` says what such a statement must guarantee); ``order`` is
        the key of the row it locks first (batches lock in that order).

        Raises:
            DatabaseClosed: The database is closed.
            StorageError: It failed, or its outcome is unknown (the connection was lost).
        """
        if not self._open or self._batcher is None:
            raise errors.DatabaseClosed()
        return await self._batcher.execute(sql, params, order=order)

    @override
    async def write_step(
        self,
        fence: Fence,
        taken: Flush,
        checkpoint: dict[str, Any],
        *,
        progress: str | None,
        lease_ttl_s: float,
    ) -> bool:
        if not pg_step.fits(fence, taken, checkpoint):
            return False
        params = pg_step.step_params(
            fence, lease_ttl_s=lease_ttl_s, progress=progress, taken=taken, checkpoint=checkpoint
        )
        if await self.batched(pg_step.STEP_SQL, params, order=fence.run_id) != 1:
            raise errors.LeaseLost(fence.run_id, fence.epoch)
        return True

    @override
    def listener(
        self, on_queued: Callable[[str], None], on_connected: Callable[[], None]
    ) -> Listener | None:
        return QueuedRunListener(self.libpq_dsn(), self.connect_args(), on_queued, on_connected)

    # -- dialect pieces ------------------------------------------------------------------

    @override
    def now(self) -> ColumnElement[float]:
        # statement_timestamp: one value for the whole statement (created_at == updated_at).
        return cast(ColumnElement[float], func.extract("epoch", func.statement_timestamp()))

    @override
    def insert(self, table: Table) -> Any:
        return pg_dialect.insert(table)

    @override
    def floor_int(self, value: Any) -> Any:
        # Its cast to integer rounds: floor first.
        return sql_cast(func.floor(value), Integer)

    @override
    def among(self, column: Any, ids: Sequence[str]) -> Any:
        # One string parameter the server splits: far cheaper for the client than rendering
        # and sending a parameter per id.
        return column == any_(func.string_to_array(bindparam(None, ",".join(ids)), ","))

    @override
    def locked_in_key_order(self, conditions: Sequence[Any], key: Any) -> list[Any]:
        # Bytewise, as group commits lock rows (`pg_batch`): two transactions locking
        # several runs never deadlock.
        ordered = (
            select(key)
            .where(*conditions)
            .order_by(key.collate("C"))
            .with_for_update(key_share=True)
        )
        return [key.in_(ordered.scalar_subquery())]

    @override
    def try_transaction_lock(self, conn: Connection, key: int) -> bool:
        return bool(conn.execute(select(func.pg_try_advisory_xact_lock(key))).scalar_one())

    @override
    def notify_queued(self, conn: Connection, workflows: Collection[str]) -> None:
        # Delivered when the transaction commits, never before.
        statement = text("SELECT pg_notify(:channel, :workflow)")
        for workflow in sorted(workflows):
            conn.execute(statement, {"channel": CHANNEL, "workflow": workflow})
