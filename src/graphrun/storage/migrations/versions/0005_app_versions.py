"""App versions (files, dependency lock), app status, and child runs' parents.

``app_versions`` keeps what a worker needs to serve a version again after the app folder
changed (its files, zipped) and, once ``graphrun apps install`` ran, the exact packages its
environment holds. ``apps`` shows the last load of each app: ok, or failed with why. The
catalog learns which app version each workflow version belongs to. A run started by another
run's ``workflow`` node records its parent, which it tells when it ends.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "app_versions",
        sa.Column("app", sa.String(63), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("files", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("dependencies", JSONType, nullable=False),
        sa.Column("lock", JSONType, nullable=True),
        sa.Column("install_log", sa.Text, nullable=True),
        sa.Column("installed_at", sa.Double, nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "apps",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("app_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parent_id")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("kind")
        batch.drop_column("app_version")
    op.drop_table("apps")
    op.drop_table("app_versions")
