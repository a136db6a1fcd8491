"""Group commit on PostgreSQL: the statement every step of every run executes, many per commit.

A worker executing hundreds of runs checkpoints each of their steps. Written one transaction
each from a thread, a step costs a thread hop, several round trips and a WAL flush, and on a
small machine that CPU is what limits throughput (README, the PostgreSQL benchmark). A step is one
self-contained statement (`pg_step`) run on the event loop over psycopg's async
driver: statements that arrive together are sent in one pipeline, inside one transaction,
so they share a round trip and a commit, as the SQLite writer's batches do.

Each statement must be correct on its own inside any batch: it must not raise for an
expected outcome (a lost lease makes it write nothing and say so), so that one step's
outcome never rolls back another's. A statement error nonetheless (a bug, a constraint)
rolls the batch back, and its statements run again one transaction each, so only the
faulty one fails. Once COMMIT is sent nothing runs again: a connection lost then fails the
whole batch with its outcome unknown, and the callers treat it as a storage outage (the run
goes back to the queue and continues from its last committed checkpoint).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from graphrun import errors
from graphrun.storage.driver_errors import PG_RETRY_STATES

__all__ = ("StatementBatcher", "settle")

logger = logging.getLogger("graphrun.storage")

MAX_BATCH = 128  # statements per transaction
RETRIES = 3  # attempts of a batch that lost a deadlock or a serialization check


@dataclass(eq=False)
class _Statement:
    sql: str
    params: dict[str, Any]
    #: Batches run their statements in this order (bytewise, as ``COLLATE "C"``): rows
    #: are locked in one global order, the one every multi-row lock of runs takes
    #: (`runs.heartbeat`), so a batch never deadlocks with another or with a heartbeat.
    order: str
    future: asyncio.Future[Any] = field(repr=False)


class StatementBatcher:
    """Runs single statements on PostgreSQL, committing the ones that arrive together at once.

    ``connections`` transactions are open at most at a time; while one commits, the next
    batch gathers. Open with `open`, stop with `close` (which finishes what is queued).
    """

    def __init__(
        self,
        dsn: str,
        *,
        connections: int,
        timeout_s: float,
        connect_kwargs: dict[str, Any],
        to_error: Any,
    ) -> None:
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=connections,
            kwargs={**connect_kwargs, "autocommit": True},
            timeout=timeout_s,
            # A connection the server dropped (a restart, an outage) is found out by an empty
            # query when taken, instead of failing a whole batch of steps.
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="graphrun-steps",
        )
        self._connections = connections
        #: Maps a driver error to the `StorageError` tree (`driver_errors.storage_error`).
        self._to_error = to_error
        self._pending: collections.deque[_Statement] = collections.deque()
        self._work = asyncio.Event()
        self._closing = False
        self._loops: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Start connecting (in the background) and the committing loops."""
        await self._pool.open(wait=False)
        self._loops = [
            asyncio.create_task(self._loop(), name=f"graphrun-pg-batch-{i}")
            for i in range(self._connections)
        ]

    async def close(self) -> None:
        """Commit what is queued, stop the loops, close the connections."""
        self._closing = True
        self._work.set()
        if self._loops:
            # Shielded: a cancelled close must not cancel a batch mid-commit.
            await asyncio.shield(asyncio.gather(*self._loops, return_exceptions=True))
            self._loops = []
        await self._pool.close()

    async def execute(self, sql: str, params: dict[str, Any], *, order: str) -> Any:
        """Run ``sql`` in the next batch; return the first column of its first row (or None).

        A cancelled caller does not withdraw the statement: once queued, its outcome stands.

        Raises:
            StorageError: The statement failed, or its outcome is unknown (connection lost).
        """
        if self._closing:
            raise errors.DatabaseClosed()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Statement(sql, params, order, future))
        self._work.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self._work.wait()
            if not self._pending:
                if self._closing:
                    return
                self._work.clear()
                continue
            batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
            if not self._pending and not self._closing:
                self._work.clear()
            batch.sort(key=lambda s: s.order)
            try:
                await self._commit(batch)
            except Exception as exc:  # a bug here must not strand the callers
                logger.exception("statement batch failed", extra={"action": "batch_failed"})
                for statement in batch:
                    settle(statement.future, error=errors.StorageError(f"Database error: {exc}"))

    async def _commit(self, batch: list[_Statement]) -> None:
        try:
            results = await self._run(batch)
        except _OutcomeUnknown as unknown:
            # COMMIT was sent: the batch may have committed, so nothing of it runs again.
            for statement in batch:
                settle(statement.future, error=unknown.error)
            return
        except errors.StorageError as exc:
            if len(batch) == 1 or isinstance(exc, errors.DatabaseUnavailable):
                for statement in batch:
                    settle(statement.future, error=exc)
                return
            # Rolled back whole because of one statement (a bug, a constraint, a lock it
            # waited too long for): find it by running each alone, so that only it fails.
            for at, statement in enumerate(batch):
                try:
                    settle(statement.future, (await self._run([statement]))[0])
                except (_OutcomeUnknown, errors.DatabaseUnavailable) as gone:
                    error = gone.error if isinstance(gone, _OutcomeUnknown) else gone
                    for rest in batch[at:]:  # the database went away: stop here
                        settle(rest.future, error=error)
                    return
                except errors.StorageError as alone:
                    settle(statement.future, error=alone)
            return
        for statement, result in zip(batch, results, strict=True):
            settle(statement.future, result)

    async def _run(self, batch: list[_Statement]) -> list[Any]:
        """Run ``batch`` in one transaction (a single statement: on its own); its results.

        Raises:
            _OutcomeUnknown: The failure came once COMMIT was sent.
            StorageError: The batch failed before its commit and was rolled back whole.
        """
        for attempt in range(RETRIES):
            committing = False
            try:
                async with self._pool.connection() as conn:
                    if len(batch) == 1:
                        # Autocommit: the statement commits as it runs.
                        committing = True
                        cursor = await conn.execute(batch[0].sql, batch[0].params)
                        return [await _first(cursor)]
                    async with conn.pipeline() as pipeline, conn.transaction():
                        if all(s.sql == batch[0].sql for s in batch):
                            results = await _executemany(conn, batch)
                        else:
                            cursors = [await conn.execute(s.sql, s.params) for s in batch]
                            await pipeline.sync()  # a statement's error raises here
                            results = [await _first(cursor) for cursor in cursors]
                        committing = True
                    return results
            except psycopg.Error as exc:
                error = self._to_error(exc)
                if committing and not _rolled_back(exc):
                    raise _OutcomeUnknown(error) from exc
                if getattr(exc, "sqlstate", None) in PG_RETRY_STATES and attempt + 1 < RETRIES:
                    logger.warning(
                        "statement batch of %d lost a deadlock; running it again",
                        len(batch),
                        extra={"action": "batch_retried"},
                    )
                    continue  # rolled back whole: running it again is safe
                if not isinstance(error, errors.StorageBusy | errors.DatabaseUnavailable):
                    logger.warning(
                        "statement batch of %d failed: %s",
                        len(batch),
                        exc,
                        extra={"action": "batch_failed"},
                    )
                raise error from exc
        raise AssertionError("unreachable")


def _rolled_back(exc: psycopg.Error) -> bool:
    """Whether the server answered ``exc`` for a statement it rolled back (not a lost link)."""
    state = exc.sqlstate
    return state is not None and not state.startswith("08") and not state.startswith("57P0")


class _OutcomeUnknown(Exception):
    """A batch failed once its COMMIT was sent: it may or may not have committed."""

    def __init__(self, error: errors.StorageError) -> None:
        super().__init__(str(error))
        self.error = error


async def _executemany(conn: psycopg.AsyncConnection[Any], batch: list[_Statement]) -> list[Any]:
    """One statement for every parameter set: the driver pipelines them with less work."""
    results = []
    async with conn.cursor() as cursor:
        await cursor.executemany(batch[0].sql, [s.params for s in batch], returning=True)
        while True:
            results.append(await _first(cursor))
            if not cursor.nextset():
                break
    return results


async def _first(cursor: psycopg.AsyncCursor[Any]) -> Any:
    """The first column of the statement's first row; None if it returned no rows."""
    if cursor.description is None:
        return None
    row = await cursor.fetchone()
    return None if row is None else row[0]


def settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Give a queued write's caller its outcome, unless the caller was cancelled meanwhile.

    A cancelled caller does not undo the write: its outcome stands regardless.
    """
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
