"""Running plans: their segments and procedure, and the steps of each run.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("plans") as plans:
        plans.add_column(sa.Column("segments", sa.JSON, nullable=True))
        plans.add_column(sa.Column("procedure", sa.String(20), nullable=True))
        plans.add_column(sa.Column("abort_requested", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("step", sa.String(30), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("message_ts", sa.String(50), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_steps_plan_id", "steps", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_steps_plan_id", "steps")
    op.drop_table("steps")
    with op.batch_alter_table("plans") as plans:
        plans.drop_column("abort_requested")
        plans.drop_column("procedure")
        plans.drop_column("segments")
