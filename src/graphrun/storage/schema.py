"""The database schema: one MetaData, the same tables on SQLite and PostgreSQL.

Changed only through migrations (``storage/migrations``); a test proves that the migration
head equals this module. No table has a foreign key to ``runs``: a run's rows are only ever
deleted by the purge, which deletes them itself, children first, in the run's transaction
(a test counts orphans); a foreign key's check on every deleted run doubled the purge's cost. Timestamps are seconds since the epoch (float) taken from the
database clock, so leases never depend on a worker's clock.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = (
    "api_keys",
    "app_versions",
    "apps",
    "checkpoint_writes",
    "checkpoints",
    "metadata",
    "run_events",
    "run_totals",
    "runs",
    "schedules",
    "signals",
    "workers",
    "workflows",
)

#: JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL, not JSON ``null``.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow", String(130), nullable=False),
    Column("definition_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", JSONType, nullable=False),
    # sha256 of the canonical input JSON: an idempotent start compares it, not the input.
    Column("input_hash", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=True, unique=True),
    Column("output", JSONType, nullable=True),
    Column("error", JSONType, nullable=True),
    Column("waiting_for", JSONType, nullable=True),
    # Resume values not yet consumed by a checkpoint: {interrupt_id: value}.
    Column("resume", JSONType, nullable=True),
    # The caller's LangGraph config (configurable, recursion_limit, tags, metadata) and
    # context: given to every execution of the run.
    Column("config", JSONType, nullable=True),
    Column("context", JSONType, nullable=True),
    # Compare-and-set counter: every transition bumps it.
    Column("version", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(128), nullable=True),
    # Fencing token: bumped on every claim; every write by the worker checks it.
    Column("lease_epoch", Integer, nullable=False, server_default="0"),
    Column("lease_expires_at", Double, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default="0"),
    Column("checkpoint_id", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When a waiting run's timer is due (sleep, or a signal wait's timeout); NULL otherwise.
    Column("wake_at", Double, nullable=True),
    # A pause asked of a running run: it stops at its next step boundary.
    Column("pause_requested", Boolean, nullable=False, server_default="0"),
    # The run this one was forked from, if any.
    Column("forked_from", String(36), nullable=True),
    # A child workflow's parent run: told (a signal) when this run ends.
    Column("parent_id", String(36), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    # What a finished run holds, counted in the transaction that finished it: retention stats
    # sum these instead of reading every checkpoint. NULL until the run first finishes.
    Column("n_checkpoints", Integer, nullable=True),
    Column("n_writes", Integer, nullable=True),
    Column("n_events", Integer, nullable=True),
    Column("n_signals", Integer, nullable=True),
    Column("checkpoint_bytes", BigInteger, nullable=True),
    # list_runs: newest first, filtered by status and/or workflow, keyset on (created_at, id).
    Index(None, "created_at", "id"),
    Index(None, "status", "created_at", "id"),
    Index(None, "workflow", "status", "created_at", "id"),
    # No index holds lease_expires_at (nor checkpoint_id, resume): heartbeats and checkpoints
    # then update the row in place (HOT on PostgreSQL) instead of adding an entry to each
    # index at every step. The reaper reads the running runs by (status, created_at, id).
    Index(None, "lease_owner"),
    # The timer loop: the earliest due time of a waiting run, and the runs due now.
    Index(None, "status", "wake_at"),
    # Retention: the finished runs of a status past a cutoff; and of them, those holding
    # more than one checkpoint (what `keep_last_checkpoint_after` cuts down), only those.
    Index(None, "status", "finished_at"),
    Index(
        "ix_runs_compactable",
        "status",
        "finished_at",
        sqlite_where=text("n_checkpoints > 1"),
        postgresql_where=text("n_checkpoints > 1"),
    ),
)

run_events = Table(
    "run_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSONType, nullable=False),
    Column("created_at", Double, nullable=False),
    Index(None, "run_id", "id"),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workflows", JSONType, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Index(None, "heartbeat_at"),
)

workflows = Table(
    "workflows",
    metadata,
    Column("name", String(130), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("app", String(63), nullable=False),
    Column("input_schema", JSONType, nullable=False),
    Column("graph", Text, nullable=False),
    Column("published_at", Double, nullable=False),
    # The signals the workflow accepts: {name: JSON Schema}.
    Column("signals", JSONType, nullable=True),
    # The app version (content hash of its files) this workflow version belongs to.
    Column("app_version", String(64), nullable=True),
    # "python" (a StateGraph in code) or "yaml".
    Column("kind", String(16), nullable=True),
    # Whether input_schema checks a start (else it only describes the graph's input).
    Column("input_enforced", Boolean, nullable=True),
)

store_items = Table(
    "store_items",
    metadata,
    # LangGraph's store, one per app: an item is (namespace, key) -> a JSON object.
    Column("app", String(63), primary_key=True),
    # The namespace's labels joined by "." (LangGraph refuses "." inside a label).
    Column("prefix", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", JSONType, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # An item with a TTL: when it expires, and the TTL (minutes) a read refreshes it by.
    Column("expires_at", Double, nullable=True),
    Column("ttl_minutes", Double, nullable=True),
    # The sweep of expired items reads them by expiry.
    Index(None, "expires_at"),
)

app_versions = Table(
    "app_versions",
    metadata,
    Column("app", String(63), primary_key=True),
    Column("version", String(64), primary_key=True),
    # The app folder's files, zipped: what a worker serves the version from after a change.
    Column("files", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("dependencies", JSONType, nullable=False),
    # Once installed: [{"name", "version", "sha256"}] of every package in its environment.
    Column("lock", JSONType, nullable=True),
    Column("install_log", Text, nullable=True),
    Column("installed_at", Double, nullable=True),
    Column("created_at", Double, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("version", String(64), nullable=True),
    # "ok" or "failed" (error: type, message, traceback), as the last process loading it saw.
    Column("status", String(16), nullable=False),
    Column("error", JSONType, nullable=True),
    Column("updated_at", Double, nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("name", String(100), nullable=False),
    Column("payload", JSONType, nullable=True),
    Column("created_at", Double, nullable=False),
    # Set when a wait consumed the signal (in the same transaction as the run's change).
    Column("consumed_at", Double, nullable=True),
    Column("interrupt_id", String(64), nullable=True),
    # A run's mailbox: unconsumed signals (count, and oldest by name), in the order sent.
    Index(None, "run_id", "consumed_at", "name", "id"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workflow", String(130), nullable=False),
    Column("cron", String(255), nullable=True),
    Column("interval_s", Double, nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("input", JSONType, nullable=False),
    # The due time of the next fire; the scheduler claims it with a compare-and-set.
    Column("next_fire_at", Double, nullable=False),
    Column("last_fired_at", Double, nullable=True),
    Column("last_run_id", String(36), nullable=True),
    Column("created_at", Double, nullable=False),
    Index(None, "next_fire_at"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("thread_id", String(64), primary_key=True),
    Column("checkpoint_ns", String(255), primary_key=True, server_default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("parent_checkpoint_id", String(64), nullable=True),
    Column("type", String(32), nullable=False),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("metadata_type", String(32), nullable=False),
    Column("metadata", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)

run_totals = Table(
    "run_totals",
    metadata,
    # Finished runs and what they hold, by status, workflow and finish day (UTC days since
    # the epoch): retention stats read these few thousand rows, not a million runs. Kept in
    # the transactions that finish, retry, purge or compact runs. ``shard`` (the run id's
    # last hex digit) spreads runs finishing at once over 16 rows, so they rarely wait on
    # one another's row lock.
    Column("status", String(16), primary_key=True),
    Column("workflow", String(130), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("shard", String(1), primary_key=True),
    Column("runs", BigInteger, nullable=False),
    Column("n_checkpoints", BigInteger, nullable=False),
    Column("n_writes", BigInteger, nullable=False),
    Column("n_events", BigInteger, nullable=False),
    Column("n_signals", BigInteger, nullable=False),
    Column("checkpoint_bytes", BigInteger, nullable=False),
)

checkpoint_writes = Table(
    "checkpoint_writes",
    metadata,
    Column("thread_id", String(64), primary_key=True),
    Column("checkpoint_ns", String(255), primary_key=True, server_default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("task_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("channel", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("task_path", Text, nullable=False, server_default=""),
)

api_keys = Table(
    "api_keys",
    metadata,
    #: The public part of the token (``grk_<id>_<secret>``): how a key is found and named.
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    #: SHA-256 of the secret part, hex; the token itself is never stored.
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSONType, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
)
