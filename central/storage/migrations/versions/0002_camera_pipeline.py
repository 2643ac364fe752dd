"""cameras: pipeline figures (decode policy, decoder, rates, lag, faults) and degraded reason

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("pipeline", sa.JSON))
        batch.add_column(sa.Column("degraded_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("degraded_reason")
        batch.drop_column("pipeline")
