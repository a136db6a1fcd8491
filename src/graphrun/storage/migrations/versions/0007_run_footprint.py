"""What finished runs hold, on their rows and summed by status, workflow and finish day.

Each run gets its footprint (checkpoints, writes, events, signals, bytes) counted when it
finishes; ``run_totals`` sums them by status, workflow and finish day, so retention stats
read thousands of rows instead of every run and checkpoint. Runs finished before this
migration are counted here. A partial index holds the finished runs with more than one
checkpoint (what ``keep_last_checkpoint_after`` cuts down). The foreign keys of
``run_events`` and ``signals`` to ``runs`` go: the purge deletes those rows itself, and
their per-row check doubled its cost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTERS = ("n_checkpoints", "n_writes", "n_events", "n_signals")
AMOUNTS = (*COUNTERS, "checkpoint_bytes")

BACKFILL_RUNS = """
UPDATE runs SET
    n_checkpoints = (SELECT count(*) FROM checkpoints c WHERE c.thread_id = runs.id),
    n_writes = (SELECT count(*) FROM checkpoint_writes w WHERE w.thread_id = runs.id),
    n_events = (SELECT count(*) FROM run_events e WHERE e.run_id = runs.id),
    n_signals = (SELECT count(*) FROM signals s WHERE s.run_id = runs.id),
    checkpoint_bytes = coalesce((
        SELECT sum(length(c.checkpoint) + length(c.metadata))
        FROM checkpoints c WHERE c.thread_id = runs.id), 0)
      + coalesce((
        SELECT sum(length(w.value)) FROM checkpoint_writes w WHERE w.thread_id = runs.id), 0)
WHERE status IN ('completed', 'failed', 'cancelled')
"""

BACKFILL_TOTALS = """
INSERT INTO run_totals (status, workflow, day, shard, runs, n_checkpoints, n_writes,
                        n_events, n_signals, checkpoint_bytes)
SELECT status, workflow, {day}, substr(id, 36, 1), count(*),
       sum(n_checkpoints), sum(n_writes), sum(n_events), sum(n_signals), sum(checkpoint_bytes)
FROM runs
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY status, workflow, {day}, substr(id, 36, 1)
"""
#: floor(finished_at / 86400): PostgreSQL's cast rounds, SQLite's truncates.
DAY = {
    "postgresql": "CAST(floor(finished_at / 86400.0) AS INTEGER)",
    "sqlite": "CAST(finished_at / 86400.0 AS INTEGER)",
}


def upgrade() -> None:
    op.create_table(
        "run_totals",
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workflow", sa.String(130), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("shard", sa.String(1), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in AMOUNTS),
        sa.PrimaryKeyConstraint("status", "workflow", "day", "shard", name="pk_run_totals"),
    )
    with op.batch_alter_table("runs") as batch:
        for name in COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch.add_column(sa.Column("checkpoint_bytes", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL_RUNS)
    op.execute(BACKFILL_TOTALS.format(day=DAY[op.get_bind().dialect.name]))
    op.create_index(
        "ix_runs_compactable",
        "runs",
        ["status", "finished_at"],
        sqlite_where=sa.text("n_checkpoints > 1"),
        postgresql_where=sa.text("n_checkpoints > 1"),
    )
    for table in ("run_events", "signals"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_run_id_runs", type_="foreignkey")


def downgrade() -> None:
    for table in ("run_events", "signals"):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_run_id_runs", "runs", ["run_id"], ["id"], ondelete="CASCADE"
            )
    op.drop_index("ix_runs_compactable", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name in AMOUNTS:
            batch.drop_column(name)
    op.drop_table("run_totals")
