"""accounts and sessions; alert status, audit, timeline, traffic review and evidence files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="new"))
        batch.add_column(sa.Column("status_by", sa.String(64)))
        batch.add_column(sa.Column("status_at", TS))
        batch.add_column(sa.Column("review", sa.String(16)))
        batch.add_column(sa.Column("reviewer", sa.String(64)))
        batch.add_column(sa.Column("review_reason", sa.Text))
        batch.add_column(sa.Column("reviewed_at", TS))
    op.create_index("ix_events_status", "events", ["status"])
    op.create_index("ix_events_review", "events", ["review"])
    op.create_table(
        "event_updates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("frame_time", TS, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "event_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, index=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "evidence_files",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("csrf", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False, index=True),
        sa.Column("last_seen_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_sessions")
    op.drop_table("users")
    op.drop_table("evidence_files")
    op.drop_table("event_audit")
    op.drop_table("event_updates")
    op.drop_index("ix_events_review", "events")
    op.drop_index("ix_events_status", "events")
    with op.batch_alter_table("events") as batch:
        for col in ("reviewed_at", "review_reason", "reviewer", "review", "status_at"):
            batch.drop_column(col)
        batch.drop_column("status_by")
        batch.drop_column("status")
