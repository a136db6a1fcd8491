"""A run's own LangGraph config and context; whether a published input schema is a check.

``runs.config`` holds what the caller gave in ``config`` (``configurable`` values,
``recursion_limit``, ``tags``, ``metadata``) and ``runs.context`` the ``context`` value:
both are used again on every execution of the run (resume, retry, fork, recovery).
``workflows.input_enforced`` says whether ``input_schema`` checks a start (a manifest model,
a YAML schema) or only describes the graph's input; NULL (published before) checks it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("config", JSONType, nullable=True))
        batch.add_column(sa.Column("context", JSONType, nullable=True))
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("input_enforced", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("input_enforced")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("context")
        batch.drop_column("config")
