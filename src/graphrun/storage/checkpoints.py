"""graphrun's LangGraph checkpointer: checkpoints in the engine's database, fenced by leases.

Why our own saver (docs/DESIGN.md section 6): LangGraph's savers open their own connections (a
second SQLite writer) and nothing in them stops a worker that lost its lease from writing.
This one writes through the engine's single writer and, when the run is executed by a
worker, checks the lease epoch in the same transaction as every write.

During a worker's execution the config carries an `Execution` under `EXECUTION_KEY`. Its
pending writes are buffered in memory and committed together with the next checkpoint, so a
super-step costs one transaction; writes left when the graph stops (an interrupt, an error)
commit together with the run's status change. Without an `Execution` (direct use, the
conformance suite) every call is its own transaction.
"""

from __future__ import annotations

import builtins
import random
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from sqlalchemy import and_, delete, insert, select, tuple_

from . import events
from . import runs as runs_store
from .loop_bridge import LoopBridge
from .records import Fence, Flush
from .schema import checkpoint_writes, checkpoints

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database, RawStatement

__all__ = (
    "EXECUTION_KEY",
    "Execution",
    "Flush",
    "GraphrunCheckpointer",
    "committing",
    "flush",
    "strict_serializer",
)


#: How LangGraph's task path for its own input-mapping task ends.
START_TASK = "__start__"

#: Config key (``configurable``) under which a worker passes its `Execution`. The leading
#: ``__`` keeps LangGraph from copying it into checkpoint metadata.
EXECUTION_KEY = "__graphrun_execution"


def strict_serializer() -> JsonPlusSerializer:
    """LangGraph's serializer in strict mode: no pickle, only allow-listed msgpack types."""
    return JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=None)


@dataclass(eq=False)
class Execution:
    """One worker's execution of a run: its lease and what waits to be committed."""

    fence: Fence
    lease_ttl_s: float
    #: The run has no committed checkpoint: reads can answer without asking the database.
    fresh: bool = False
    #: Serialized ``checkpoint_writes`` rows not yet committed.
    pending_writes: list[dict[str, Any]] = field(default_factory=list)
    #: ``(kind, data)`` run events to commit with the next checkpoint.
    pending_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Checkpoints of a fresh run taken before any node of the app ran (the input and
    #: ``__start__`` steps): committed with the first checkpoint that follows app code, since
    #: losing them only means starting again from the input.
    deferred: list[dict[str, Any]] = field(default_factory=list)

    def take(self) -> Flush:
        """Remove and return everything buffered, to commit in one transaction."""
        taken = Flush(
            run_id=self.fence.run_id,
            checkpoints=self.deferred,
            writes=self.pending_writes,
            events=self.pending_events,
        )
        self.deferred, self.pending_writes, self.pending_events = [], [], []
        return taken

    def deferred_checkpoint(self, ns: str, checkpoint_id: str | None) -> dict[str, Any] | None:
        """The newest deferred checkpoint matching ``ns`` (and ``checkpoint_id``), if any."""
        for row in reversed(self.deferred):
            if row["checkpoint_ns"] == ns and checkpoint_id in (None, row["checkpoint_id"]):
                found: dict[str, Any] = row
                return found
        return None


def _execution(config: RunnableConfig) -> Execution | None:
    value = config.get("configurable", {}).get(EXECUTION_KEY)
    return value if isinstance(value, Execution) else None


_WRITE_KEY = ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")
_WRITE_COLUMNS = (*_WRITE_KEY, "channel", "type", "value", "task_path")
_CHECKPOINT_COLUMNS = (
    "thread_id",
    "checkpoint_ns",
    "checkpoint_id",
    "parent_checkpoint_id",
    "type",
    "checkpoint",
    "metadata_type",
    "metadata",
)


def _insert_writes(db: Database, conn: Connection, rows: list[dict[str, Any]]) -> None:
    # Special channels (errors, interrupts, resumes) are replaced; regular writes are kept
    # as first written, as LangGraph's own savers do.
    upsert = [r for r in rows if r["channel"] in WRITES_IDX_MAP]
    keep = [r for r in rows if r["channel"] not in WRITES_IDX_MAP]
    if keep:
        conn.execute(
            db.statement(
                "checkpoints.writes.keep",
                lambda: db.insert(checkpoint_writes).on_conflict_do_nothing(
                    index_elements=_WRITE_KEY
                ),
            ),
            keep,
        )
    if upsert:

        def build() -> Any:
            stmt = db.insert(checkpoint_writes)
            return stmt.on_conflict_do_update(
                index_elements=_WRITE_KEY,
                set_={c: stmt.excluded[c] for c in ("channel", "type", "value", "task_path")},
            )

        db.executemany_raw(
            conn, db.raw("checkpoints.writes.upsert", build, columns=_WRITE_COLUMNS), upsert
        )


def _upsert_checkpoint(db: Database) -> RawStatement:
    def build() -> Any:
        stmt = db.insert(checkpoints).values(created_at=db.now())
        return stmt.on_conflict_do_update(
            index_elements=("thread_id", "checkpoint_ns", "checkpoint_id"),
            set_={
                c: stmt.excluded[c]
                for c in ("parent_checkpoint_id", "type", "checkpoint", "metadata_type", "metadata")
            },
        )

    return db.raw("checkpoints.put", build, columns=_CHECKPOINT_COLUMNS)


def flush(db: Database, conn: Connection, taken: Flush) -> None:
    """Write taken buffers inside the caller's transaction (the caller fences it)."""
    for row in taken.checkpoints:
        db.execute_raw(conn, _upsert_checkpoint(db), row)
    if taken.writes:
        _insert_writes(db, conn, taken.writes)
    if taken.events:
        events.append(db, conn, [(taken.run_id, k, d) for k, d in taken.events])


def committing(db: Database, taken: Flush) -> Callable[[Connection], None]:
    """`flush` as the ``before`` step of a run transition: the rows commit with it."""
    return lambda conn: flush(db, conn, taken)


def _before_app_code(metadata: CheckpointMetadata, pending: list[dict[str, Any]]) -> bool:
    """Whether a checkpoint follows only LangGraph's own input handling (no app node ran)."""
    if metadata.get("source") == "input":
        return True
    return bool(pending) and all(w["task_path"].endswith(START_TASK) for w in pending)


class GraphrunCheckpointer(BaseCheckpointSaver[str]):
    """A LangGraph checkpoint saver on graphrun's `Database`, fenced by run leases.

    graphrun runs graphs asynchronously. The sync methods exist for sync nodes that call a
    subgraph's ``invoke()`` from their worker thread: as LangGraph's async savers do, they
    hand the work to the loop the saver was made on and wait for it there. Called on that
    loop itself they would deadlock, so they refuse instead.
    """

    def __init__(self, db: Database, *, serde: JsonPlusSerializer | None = None) -> None:
        super().__init__(serde=serde or strict_serializer())
        self.db = db
        self._on_loop = LoopBridge("checkpointer", "ainvoke, aget_state...").run

    # -- the sync interface (from a node's thread) ----------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """`aget_tuple`, from a thread other than the engine's loop."""
        return self._on_loop(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """`alist`, from a thread other than the engine's loop."""

        async def collect() -> builtins.list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._on_loop(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """`aput`, from a thread other than the engine's loop."""
        return self._on_loop(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`aput_writes`, from a thread other than the engine's loop."""
        self._on_loop(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """`adelete_thread`, from a thread other than the engine's loop."""
        self._on_loop(self.adelete_thread(thread_id))

    # -- writing -------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (with any buffered writes) in one fenced transaction."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        checkpoint_ns = conf.get("checkpoint_ns", "")
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta_type, meta_blob = self.serde.dumps_typed(
            get_serializable_checkpoint_metadata(config, metadata)
        )
        row = {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": conf.get("checkpoint_id"),
            "type": type_,
            "checkpoint": blob,
            "metadata_type": meta_type,
            "metadata": meta_blob,
        }
        saved: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        execution = _execution(config)
        if (
            execution is not None
            and execution.fresh
            and _before_app_code(metadata, execution.pending_writes)
        ):
            execution.deferred.append(row)
            return saved
        taken = execution.take() if execution is not None else None
        if execution is not None:
            execution.fresh = False
        db = self.db
        # Only the root graph's checkpoints mark the run's progress.
        progress = checkpoint["id"] if not checkpoint_ns else None
        if (
            execution is not None
            and taken is not None
            and await db.write_step(
                execution.fence,
                taken,
                row,
                progress=progress or taken.root_checkpoint_id,
                lease_ttl_s=execution.lease_ttl_s,
            )
        ):
            return saved

        def job(conn: Connection) -> None:
            if execution is not None and taken is not None:
                runs_store.fence_checkpoint(
                    db,
                    conn,
                    execution.fence,
                    # Only the root graph's checkpoints mark the run's progress.
                    checkpoint_id=progress or taken.root_checkpoint_id,
                    lease_ttl_s=execution.lease_ttl_s,
                )
                flush(db, conn, taken)
            db.execute_raw(conn, _upsert_checkpoint(db), row)

        await db.write(job)
        return saved

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes: buffered under a worker's execution, else at once."""
        conf = config["configurable"]
        base = {
            "thread_id": str(conf["thread_id"]),
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": str(conf["checkpoint_id"]),
            "task_id": task_id,
            "task_path": task_path,
        }
        rows = []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            rows.append(
                {
                    **base,
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "type": type_,
                    "value": blob,
                }
            )
        execution = _execution(config)
        if execution is not None:
            # Same key replaces (special channels) or is ignored (regular), as in the table.
            held = {_write_key(r): i for i, r in enumerate(execution.pending_writes)}
            for row in rows:
                at = held.get(_write_key(row))
                if at is None:
                    execution.pending_writes.append(row)
                elif row["channel"] in WRITES_IDX_MAP:
                    execution.pending_writes[at] = row
            return
        db = self.db

        def job(conn: Connection) -> None:
            _insert_writes(db, conn, rows)

        await db.write(job)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread."""
        db = self.db

        def job(conn: Connection) -> None:
            conn.execute(
                delete(checkpoint_writes).where(checkpoint_writes.c.thread_id == thread_id)
            )
            conn.execute(delete(checkpoints).where(checkpoints.c.thread_id == thread_id))

        await db.write(job)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another."""
        await self.copy_until(source_thread_id, target_thread_id, None)

    async def copy_until(
        self, source_thread_id: str, target_thread_id: str, checkpoint_id: str | None
    ) -> None:
        """Copy a thread's history up to ``checkpoint_id`` (all of it for None): a fork's base.

        Checkpoint ids grow with time, so "up to" is ``<=``; the copy's newest checkpoint is
        then ``checkpoint_id``, where a graph run on the copy continues. The writes recorded
        against ``checkpoint_id`` itself (the next step's results) are not copied: that step
        runs again, as in a LangGraph replay.
        """
        db = self.db

        def job(conn: Connection) -> None:
            for table in (checkpoints, checkpoint_writes):
                names = [c.name for c in table.columns if c.name != "thread_id"]
                columns = [table.c[n] for n in names]
                query = select(_literal(target_thread_id), *columns).where(
                    table.c.thread_id == source_thread_id
                )
                if checkpoint_id is not None:
                    newest = table.c.checkpoint_id
                    query = query.where(
                        newest <= checkpoint_id if table is checkpoints else newest < checkpoint_id
                    )
                conn.execute(insert(table).from_select(["thread_id", *names], query))

        await db.write(job)

    # -- reading -------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by the config, or the thread's latest, with pending writes."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        checkpoint_ns = conf.get("checkpoint_ns", "")
        execution = _execution(config)
        if execution is not None:
            deferred = execution.deferred_checkpoint(checkpoint_ns, get_checkpoint_id(config))
            if deferred is not None:
                return self._tuple(
                    deferred, _buffered(execution, checkpoint_ns, deferred["checkpoint_id"])
                )
            if execution.fresh:
                return None
        query = select(checkpoints).where(
            checkpoints.c.thread_id == thread_id, checkpoints.c.checkpoint_ns == checkpoint_ns
        )
        if checkpoint_id := get_checkpoint_id(config):
            query = query.where(checkpoints.c.checkpoint_id == checkpoint_id)
        else:
            query = query.order_by(checkpoints.c.checkpoint_id.desc()).limit(1)

        def read(conn: Connection) -> CheckpointTuple | None:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            key = (checkpoint_ns, row["checkpoint_id"])
            writes = self._writes_for(conn, thread_id, [key]).get(key, [])
            return self._tuple(row, _merge_writes(writes, _buffered(execution, *key)))

        return await self.db.read(read)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints matching the config, newest first; writes fetched in one query."""
        query = _list_query(config)
        if before is not None and (before_id := get_checkpoint_id(before)):
            query = query.where(checkpoints.c.checkpoint_id < before_id)
        query = query.order_by(checkpoints.c.checkpoint_id.desc())
        if limit is not None and not filter:
            query = query.limit(limit)

        def read(conn: Connection) -> builtins.list[CheckpointTuple]:
            rows = list(conn.execute(query).mappings())
            if filter:
                rows = [r for r in rows if _matches(self._metadata(r), filter)]
                if limit is not None:
                    rows = rows[:limit]
            by_thread: dict[str, builtins.list[tuple[str, str]]] = {}
            for r in rows:
                by_thread.setdefault(r["thread_id"], []).append(
                    (r["checkpoint_ns"], r["checkpoint_id"])
                )
            writes: dict[tuple[str, str, str], builtins.list[dict[str, Any]]] = {}
            for thread_id, keys in by_thread.items():
                for key, found in self._writes_for(conn, thread_id, keys).items():
                    writes[(thread_id, *key)] = found
            return [
                self._tuple(
                    r, writes.get((r["thread_id"], r["checkpoint_ns"], r["checkpoint_id"]), [])
                )
                for r in rows
            ]

        for item in await self.db.read(read):
            yield item

    def _writes_for(
        self, conn: Connection, thread_id: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], builtins.list[dict[str, Any]]]:
        keys = list(keys)
        found: dict[tuple[str, str], builtins.list[dict[str, Any]]] = {}
        # Primary-key prefix (thread_id, checkpoint_ns, checkpoint_id): one indexed query.
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            result = conn.execute(
                select(checkpoint_writes).where(
                    and_(
                        checkpoint_writes.c.thread_id == thread_id,
                        tuple_(
                            checkpoint_writes.c.checkpoint_ns, checkpoint_writes.c.checkpoint_id
                        ).in_(chunk),
                    )
                )
            )
            for w in result.mappings():
                found.setdefault((w["checkpoint_ns"], w["checkpoint_id"]), []).append(dict(w))
        return found

    def _metadata(self, row: Any) -> CheckpointMetadata:
        loaded: CheckpointMetadata = self.serde.loads_typed((row["metadata_type"], row["metadata"]))
        return loaded

    def _tuple(self, row: Any, writes: builtins.list[dict[str, Any]]) -> CheckpointTuple:
        thread_id, ns = row["thread_id"], row["checkpoint_ns"]
        ordered = sorted(
            writes, key=lambda w: writes_sort_key(w["task_path"], w["task_id"], w["idx"])
        )
        pending: builtins.list[PendingWrite] = [
            (w["task_id"], w["channel"], self.serde.loads_typed((w["type"], w["value"])))
            for w in ordered
        ]
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": row["checkpoint_id"],
                }
            },
            checkpoint=self.serde.loads_typed((row["type"], row["checkpoint"])),
            metadata=self._metadata(row),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            pending_writes=pending,
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A version string that sorts after ``current`` (LangGraph's own savers' scheme)."""
        current_v = 0 if current is None else int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"  # noqa: S311 - not security


def _list_query(config: RunnableConfig | None) -> Any:
    query = select(checkpoints)
    if config is not None:
        conf = config["configurable"]
        query = query.where(checkpoints.c.thread_id == str(conf["thread_id"]))
        if (ns := conf.get("checkpoint_ns")) is not None:
            query = query.where(checkpoints.c.checkpoint_ns == ns)
        if checkpoint_id := get_checkpoint_id(config):
            query = query.where(checkpoints.c.checkpoint_id == checkpoint_id)
    return query


def _write_key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return (row["checkpoint_ns"], row["checkpoint_id"], row["task_id"], row["idx"])


def _merge_writes(
    stored: list[dict[str, Any]], buffered: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Stored writes overlaid with buffered ones, as committing them would leave the table."""
    merged = {(w["task_id"], w["idx"]): w for w in stored}
    for w in buffered:
        key = (w["task_id"], w["idx"])
        if key not in merged or w["channel"] in WRITES_IDX_MAP:
            merged[key] = w
    return list(merged.values())


def _buffered(execution: Execution | None, ns: str, checkpoint_id: str) -> list[dict[str, Any]]:
    if execution is None:
        return []
    return [
        w
        for w in execution.pending_writes
        if w["checkpoint_ns"] == ns and w["checkpoint_id"] == checkpoint_id
    ]


def _matches(metadata: CheckpointMetadata, wanted: dict[str, Any]) -> bool:
    return all(metadata.get(k) == v for k, v in wanted.items())


def _literal(value: str) -> Any:
    from sqlalchemy import literal

    return literal(value)
