"""User-group members as last read from Slack, shared by the bot's processes.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "user_groups",
        sa.Column("group_id", sa.String(50), primary_key=True),
        sa.Column("members", sa.JSON, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_groups")
