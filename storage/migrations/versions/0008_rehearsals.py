"""Rehearsals: a plan applied, rolled back and applied again on a scratch copy, and the report.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rehearsals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rollback_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("rows", sa.Integer, nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("progress", sa.Text, nullable=True),
        sa.Column("scratch_name", sa.String(63), nullable=True),
        sa.Column("runner", sa.String(200), nullable=True),
        sa.Column("message_ts", sa.String(50), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_rehearsals_plan_id", "rehearsals", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_rehearsals_plan_id", "rehearsals")
    op.drop_table("rehearsals")
