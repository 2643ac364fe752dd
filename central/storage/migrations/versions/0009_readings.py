"""readings: every reading of any analytic (counts, occupancy, levels), for the API and charts

One table for the measurements of every analytic type, so that a new analytic that
publishes readings needs no migration, ingest path or router of its own. Unique on
(site, edge, camera, analytic, time): a replayed message is absorbed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("analytic", sa.String(64), nullable=False),
        sa.Column("analytic_type", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_s", sa.Float),
        sa.Column("state", sa.String(32)),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("units", sa.JSON, nullable=False),
        sa.UniqueConstraint(
            "site", "edge_id", "camera_id", "analytic", "time", name="uq_reading_series_time"
        ),
    )
    op.create_index(
        "ix_readings_camera_analytic_time", "readings", ["camera_id", "analytic", "time"]
    )


def downgrade() -> None:
    op.drop_table("readings")
