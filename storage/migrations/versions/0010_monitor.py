"""The monitor window after apply, its samples, incidents and their pages.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

TS = sa.DateTime(timezone=True)
UNRESOLVED = sa.text("state IN ('open', 'acknowledged')")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("baseline", sa.JSON, nullable=False),
        sa.Column("streaks", sa.JSON, nullable=False),
        sa.Column("last", sa.JSON, nullable=False),
        sa.Column("worst", sa.JSON, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("decision", sa.Text, nullable=True),
        sa.Column("message_ts", sa.String(50), nullable=True),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("early_until", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("next_sample_at", TS, nullable=True),
        sa.Column("reminders", sa.JSON, nullable=False),
        sa.Column("next_reminder_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "monitor_samples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitors.id"), nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
    )
    op.create_index("ix_monitor_samples_monitor_id", "monitor_samples", ["monitor_id"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(2), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("paging_since", TS, nullable=True),
        sa.Column("next_ping_at", TS, nullable=True),
        sa.Column("response_due_at", TS, nullable=True),
        sa.Column("decision_due_at", TS, nullable=True),
        sa.Column("decision_asked", sa.Boolean, nullable=False),
        sa.Column("acknowledged_by", sa.String(100), nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_incidents_plan_id", "incidents", ["plan_id"])
    op.create_index(
        "uq_incidents_unresolved",
        "incidents",
        ["plan_id"],
        unique=True,
        sqlite_where=UNRESOLVED,
        postgresql_where=UNRESOLVED,
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("users", sa.JSON, nullable=False),
        sa.Column("why", sa.String(30), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_pages_incident_id", "pages", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_pages_incident_id", "pages")
    op.drop_table("pages")
    op.drop_index("uq_incidents_unresolved", "incidents")
    op.drop_index("ix_incidents_plan_id", "incidents")
    op.drop_table("incidents")
    op.drop_index("ix_monitor_samples_monitor_id", "monitor_samples")
    op.drop_table("monitor_samples")
    op.drop_table("monitors")
