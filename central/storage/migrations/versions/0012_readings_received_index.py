"""Readings by the time the hub received them: retention deletes the oldest in pages.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_readings_received_at", "readings", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_readings_received_at", table_name="readings")
