"""initial schema: events, snapshots, cameras, edges

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("analytic", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("start_time", TZ, nullable=False),
        sa.Column("end_time", TZ),
        sa.Column("frame_time", TZ, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("box", sa.JSON),
        sa.Column("zone", sa.String(64)),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("snapshot_sha256", sa.String(64)),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("first_received_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    for col in ("camera_id", "kind", "state", "start_time", "first_received_at"):
        op.create_index(f"ix_events_{col}", "events", [col])
    op.create_table(
        "snapshots",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_table(
        "cameras",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fps", sa.Float, nullable=False),
        sa.Column("last_frame_time", TZ),
        sa.Column("reconnects", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_table(
        "edges",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("edges", "cameras", "snapshots", "events"):
        op.drop_table(table)
