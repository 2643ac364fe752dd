"""single-use incident ack tokens: one row per token already spent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ack_tokens_used",
        # the token's random nonce: the primary key makes a second use fail atomically
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.String(36), nullable=False, index=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        # when the token would have expired anyway: rows older than this can be purged
        sa.Column("expires_at", TS, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("ack_tokens_used")
