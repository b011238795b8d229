"""Plans and their timeline events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("file_path", sa.Text, nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rollback_sql", sa.Text, nullable=False),
        sa.Column("rollback_sha256", sa.String(64), nullable=False),
        sa.Column("rollback", sa.JSON, nullable=False),
        sa.Column("analysis", sa.JSON, nullable=False),
        sa.Column("rollback_analysis", sa.JSON, nullable=True),
        sa.Column("complexity", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("channel_id", sa.String(50), nullable=True),
        sa.Column("message_ts", sa.String(50), nullable=True),
        sa.Column("superseded_by", sa.Integer, sa.ForeignKey("plans.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_plans_environment_file", "plans", ["environment", "file_name", "state"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_plan_id", "events", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_events_plan_id", "events")
    op.drop_table("events")
    op.drop_index("ix_plans_environment_file", "plans")
    op.drop_table("plans")
