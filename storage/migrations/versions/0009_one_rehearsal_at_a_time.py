"""One rehearsal at a time per plan: ten clicks on Rehearse queue one.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

UNDER_WAY = sa.text("state IN ('queued', 'running')")


def upgrade() -> None:
    op.create_index(
        "uq_rehearsals_under_way",
        "rehearsals",
        ["plan_id"],
        unique=True,
        sqlite_where=UNDER_WAY,
        postgresql_where=UNDER_WAY,
    )


def downgrade() -> None:
    op.drop_index("uq_rehearsals_under_way", "rehearsals")
