"""bind stored data to its publisher: snapshots and evidence per (site, edge)

Snapshots were keyed by event id alone, so any client could replace an event's picture;
evidence files were first-writer-wins across edges. Now a snapshot is keyed by
(event id, SHA-256) and carries the (site, edge) it came from (the hub serves only the one
the event announced, from the event's own edge), evidence files are keyed by
(event id, site, edge, name), and an edge's measured clock offset is kept.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_snapshots",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("received_at", TS, nullable=False, index=True),
    )
    # old snapshots belong to the edge of their event (orphans have no known owner: dropped)
    op.execute(
        "INSERT INTO event_snapshots (event_id, sha256, site, edge_id, jpeg, received_at) "
        "SELECT s.event_id, s.sha256, e.site, e.edge_id, s.jpeg, s.received_at "
        "FROM snapshots s JOIN events e ON e.id = s.event_id"
    )
    op.drop_table("snapshots")
    op.create_table(
        "event_evidence",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("received_at", TS, nullable=False, index=True),
    )
    op.execute(
        "INSERT INTO event_evidence "
        "(event_id, site, edge_id, name, data, sha256, content_type, received_at) "
        "SELECT f.event_id, e.site, e.edge_id, f.name, f.data, f.sha256, f.content_type, "
        "f.received_at FROM evidence_files f JOIN events e ON e.id = f.event_id"
    )
    op.drop_table("evidence_files")
    with op.batch_alter_table("edges") as batch:
        batch.add_column(sa.Column("clock_skew_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("clock_checked_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("edges") as batch:
        batch.drop_column("clock_checked_at")
        batch.drop_column("clock_skew_s")
    op.create_table(
        "evidence_files",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.drop_table("event_evidence")
    op.create_table(
        "snapshots",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.drop_table("event_snapshots")
