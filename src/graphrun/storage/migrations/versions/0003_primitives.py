"""Workflow primitives: timers, pause requests, forks, signal mailboxes and schedules.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("wake_at", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column("pause_requested", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("forked_from", sa.String(36), nullable=True))
        batch.create_index("ix_runs_status_wake_at", ["status", "wake_at"])
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("signals", JSONType, nullable=True))
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("payload", JSONType, nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("consumed_at", sa.Double(), nullable=True),
        sa.Column("interrupt_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_signals_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
    )
    op.create_index(
        "ix_signals_run_id_consumed_at_name_id", "signals", ["run_id", "consumed_at", "name", "id"]
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workflow", sa.String(130), nullable=False),
        sa.Column("cron", sa.String(255), nullable=True),
        sa.Column("interval_s", sa.Double(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("input", JSONType, nullable=False),
        sa.Column("next_fire_at", sa.Double(), nullable=False),
        sa.Column("last_fired_at", sa.Double(), nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
    )
    op.create_index("ix_schedules_next_fire_at", "schedules", ["next_fire_at"])


def downgrade() -> None:
    op.drop_index("ix_schedules_next_fire_at", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_signals_run_id_consumed_at_name_id", table_name="signals")
    op.drop_table("signals")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("signals")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_wake_at")
        batch.drop_column("forked_from")
        batch.drop_column("pause_requested")
        batch.drop_column("wake_at")
