"""A worker's checkpoint on PostgreSQL as one statement: fence, progress, rows, events.

What a checkpoint commits under a lease (`storage.checkpoints.GraphrunCheckpointer.aput`, then
`runs.fence_checkpoint` and `checkpoints.flush` on the other path) is here a single statement
of data-modifying CTEs, so it can share a transaction with other runs' steps
(`pg_batch`): the fence is an ``UPDATE`` of the run row that matches only while
the lease is held, and every insert reads from it, so a lost lease writes nothing and counts
0 instead of raising. Its inserts run after the row lock, so event ids follow commit order
per run, as on the other path. Each insert is idempotent (``ON CONFLICT``), except events.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.base import WRITES_IDX_MAP

if TYPE_CHECKING:
    from graphrun.storage.records import Fence, Flush

__all__ = ("STEP_SQL", "fits", "step_params")

#: Timestamps are the database clock (``Database.now``), as everywhere.
STEP_SQL = """
WITH fence AS (
    UPDATE runs
    SET lease_expires_at = extract(epoch FROM statement_timestamp())::float8 + %(ttl)s,
        resume = NULL,
        checkpoint_id = coalesce(%(progress)s, runs.checkpoint_id)
    WHERE id = %(run_id)s AND lease_owner = %(owner)s AND lease_epoch = %(epoch)s
      AND status = 'running'
    RETURNING id
), saved AS (
    INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
                             type, checkpoint, metadata_type, metadata, created_at)
    SELECT fence.id, c.ns, c.id, c.parent, c.type, decode(c.body, 'base64'), c.meta_type,
           decode(c.meta, 'base64'), extract(epoch FROM statement_timestamp())::float8
    FROM fence, json_to_recordset(%(checkpoints)s::json)
                AS c(ns text, id text, parent text, type text, body text, meta_type text,
                     meta text)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type,
        checkpoint = excluded.checkpoint, metadata_type = excluded.metadata_type,
        metadata = excluded.metadata
), writes AS (
    SELECT fence.id AS thread_id, w.ns, w.id, w.task, w.idx, w.channel, w.type,
           decode(w.value, 'base64') AS value, w.path, w.replace
    FROM fence, json_to_recordset(%(writes)s::json)
                AS w(ns text, id text, task text, idx int, channel text, type text,
                     value text, path text, replace bool)
), kept AS (
    -- Regular writes are kept as first written; special channels (errors, interrupts,
    -- resumes) are replaced, as LangGraph's own savers do.
    INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
                                   channel, type, value, task_path)
    SELECT thread_id, ns, id, task, idx, channel, type, value, path
    FROM writes WHERE NOT replace
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
), replaced AS (
    INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
                                   channel, type, value, task_path)
    SELECT thread_id, ns, id, task, idx, channel, type, value, path
    FROM writes WHERE replace
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        channel = excluded.channel, type = excluded.type, value = excluded.value,
        task_path = excluded.task_path
), logged AS (
    INSERT INTO run_events (run_id, kind, data, created_at)
    SELECT fence.id, e.kind, e.data::jsonb, extract(epoch FROM statement_timestamp())::float8
    FROM fence, json_to_recordset(%(events)s::json) AS e(n int, kind text, data json)
    ORDER BY e.n
)
SELECT count(*) FROM fence
"""


def fits(fence: Fence, taken: Flush, checkpoint: dict[str, Any]) -> bool:
    """Whether `STEP_SQL` can write these rows: all of the run's own thread.

    The executor makes the run's id its thread; a graph a node invokes with a thread of its
    own (inheriting the execution) is written the general way.
    """
    rows = (*taken.checkpoints, *taken.writes, checkpoint)
    return all(row["thread_id"] == fence.run_id for row in rows)


def step_params(
    fence: Fence,
    *,
    lease_ttl_s: float,
    progress: str | None,
    taken: Flush,
    checkpoint: dict[str, Any],
) -> dict[str, Any]:
    """`STEP_SQL`'s parameters: the taken buffers, then ``checkpoint`` (a checkpoints row).

    ``progress`` is the run's new progress marker (a root-graph checkpoint id), if any.
    """
    # One statement cannot touch a row twice: fold repeated keys as running the upserts
    # one after another would (a checkpoint put again replaces; see `kept` for writes).
    saved = list(
        {
            (c["checkpoint_ns"], c["checkpoint_id"]): c for c in (*taken.checkpoints, checkpoint)
        }.values()
    )
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for w in taken.writes:
        key = (w["checkpoint_ns"], w["checkpoint_id"], w["task_id"], w["idx"])
        if key not in folded or w["channel"] in WRITES_IDX_MAP:
            folded[key] = w
    writes = list(folded.values())
    return {
        "run_id": fence.run_id,
        "owner": fence.owner,
        "epoch": fence.epoch,
        "ttl": lease_ttl_s,
        "progress": progress,
        # JSON (blobs in base64) rather than arrays: the driver dumps a string in C, an
        # array element by element in Python, which cost more than the rest of the step.
        "checkpoints": json.dumps(
            [
                {
                    "ns": c["checkpoint_ns"],
                    "id": c["checkpoint_id"],
                    "parent": c["parent_checkpoint_id"],
                    "type": c["type"],
                    "body": _b64(c["checkpoint"]),
                    "meta_type": c["metadata_type"],
                    "meta": _b64(c["metadata"]),
                }
                for c in saved
            ]
        ),
        "writes": json.dumps(
            [
                {
                    "ns": w["checkpoint_ns"],
                    "id": w["checkpoint_id"],
                    "task": w["task_id"],
                    "idx": w["idx"],
                    "channel": w["channel"],
                    "type": w["type"],
                    "value": _b64(w["value"]),
                    "path": w["task_path"],
                    "replace": w["channel"] in WRITES_IDX_MAP,
                }
                for w in writes
            ]
        ),
        "events": json.dumps(
            [{"n": n, "kind": kind, "data": data} for n, (kind, data) in enumerate(taken.events)]
        ),
    }


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")
