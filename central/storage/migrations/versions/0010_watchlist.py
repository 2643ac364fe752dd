"""watchlist: plates the hub sends to every edge; a read of one raises an urgent alert

``watchlist_entries`` keeps every entry ever made (removal stamps ``removed_at``), with one
active entry per plate (a partial unique index, on SQLite and PostgreSQL alike).
``watchlist_state`` holds the list's version; it starts at the creation time in
milliseconds so that a hub on a new database still sends a version newer than any an edge
kept from before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

import time
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plate", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(64)),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
    )
    active = sa.text("removed_at IS NULL")
    op.create_index(
        "ux_watchlist_active_plate",
        "watchlist_entries",
        ["plate"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    state = op.create_table(
        "watchlist_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        state,
        [{"id": 1, "version": int(time.time() * 1000), "updated_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("watchlist_state")
    op.drop_index("ux_watchlist_active_plate", table_name="watchlist_entries")
    op.drop_table("watchlist_entries")
