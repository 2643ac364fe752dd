"""hotspot_readings: every flood reading, for the public hotspot API and its charts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hotspot_readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hotspot_id", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("level_state", sa.String(64), nullable=False),
        sa.Column("level_cm", sa.Float),
        sa.Column("reason", sa.String(64)),
        sa.Column("period_s", sa.Float, nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("hotspot_id", "time", name="uq_hotspot_reading_time"),
    )
    op.create_index("ix_hotspot_readings_hotspot_id", "hotspot_readings", ["hotspot_id"])
    op.create_index("ix_hotspot_readings_time", "hotspot_readings", ["time"])


def downgrade() -> None:
    op.drop_table("hotspot_readings")
