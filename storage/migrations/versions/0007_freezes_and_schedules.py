"""Change freezes per environment, and runs scheduled for a set time.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

TS = sa.DateTime(timezone=True)
IN_FORCE = sa.text("lifted_at IS NULL")
WAITING = sa.text("state = 'scheduled'")


def upgrade() -> None:
    op.create_table(
        "freezes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("lifted_by", sa.String(100), nullable=True),
        sa.Column("lifted_at", TS, nullable=True),
    )
    op.create_index(
        "uq_freezes_in_force",
        "freezes",
        ["environment"],
        unique=True,
        sqlite_where=IN_FORCE,
        postgresql_where=IN_FORCE,
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("run_at", TS, nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("notice", sa.Text, nullable=True),
        sa.Column("noticed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_schedules_plan_id", "schedules", ["plan_id"])
    op.create_index(
        "uq_schedules_waiting",
        "schedules",
        ["plan_id"],
        unique=True,
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("uq_schedules_waiting", "schedules")
    op.drop_index("ix_schedules_plan_id", "schedules")
    op.drop_table("schedules")
    op.drop_index("uq_freezes_in_force", "freezes")
    op.drop_table("freezes")
