"""camera configs: the hub as the source of truth for cameras and their analytics

``camera_configs`` holds each camera's configuration (one row per camera id, unique across
the hub, with the edge it runs on); the URL's password is not in its JSON but in
``url_secret``, encrypted (Fernet) with a key kept in ``hub_secrets``.
``camera_config_history`` keeps every version (who, when, why, what changed), redacted the
same way. ``camera_config_edges`` holds the version of each edge's retained message, which
only grows (``max(version + 1, now in ms)``), and names every edge the hub has ever sent
cameras to: one whose last camera moved away is sent an empty list, not forgotten.
``camera_frames`` keeps the latest frame and preview of each camera, for the set-up page.
Two nullable columns on ``cameras`` carry what the edge reports it runs (or why it refused).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_configs",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("config_version", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("url_secret", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_camera_configs_edge", "camera_configs", ["site", "edge_id"])
    op.create_table(
        "camera_config_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("config_version", sa.String(16), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.UniqueConstraint("camera_id", "version", name="uq_camera_config_history_version"),
    )
    op.create_table(
        "camera_config_edges",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "camera_frames",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary),
        sa.Column("sha256", sa.String(64)),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("preview", sa.JSON),
        sa.Column("preview_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("config_version", sa.String(16)))
        batch.add_column(sa.Column("config_error", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("config_error")
        batch.drop_column("config_version")
    op.drop_table("camera_frames")
    op.drop_table("camera_config_edges")
    op.drop_table("camera_config_history")
    op.drop_index("ix_camera_configs_edge", table_name="camera_configs")
    op.drop_table("camera_configs")
