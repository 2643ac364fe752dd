"""hub secrets: keys the hub generates once and keeps (the ack-link key when unset)

Without ``incidents.secret`` the ack links in notifications were signed with a key random
per start, so every link sent before a restart stopped working. The hub now generates the
key once and keeps it here, shared by every hub on the database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_secrets")
