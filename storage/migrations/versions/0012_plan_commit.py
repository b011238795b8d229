"""The git commit a plan's migration was read at (empty for a migrations directory on the host).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("source_commit", sa.String(40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("source_commit")
