"""Drop the index on (status, lease_expires_at): heartbeats and checkpoints update in place.

Every heartbeat and every checkpoint sets a run's ``lease_expires_at``. While an index held
that column, each of those updates added an entry to every index of ``runs``; without it,
PostgreSQL updates the row in place (HOT). The reaper finds expired leases among the running
runs through ``ix_runs_status_created_at_id``: there are no more of those than the workers
execute.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_lease_expires_at")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_status_lease_expires_at", ["status", "lease_expires_at"])
