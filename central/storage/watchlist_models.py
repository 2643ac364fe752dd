"""Tables of the plate watch list (``central.watchlist``), on the hub's declarative Base.

Its own module so the watch list can be added and reviewed apart from the other tables;
``central.watchlist`` imports it, which registers the tables on ``Base.metadata``. The
schema itself comes from migration 0010, as every table's does.

Entries are never deleted: removing one stamps ``removed_at``/``removed_by``, so who put a
plate on the list, and who took it off, stays on record (plates are personal data; the
list sends people after cars). A partial unique index keeps one active entry per plate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from central.storage.db import UTCDateTime
from central.storage.models import Base

ACTIVE = text("removed_at IS NULL")


class WatchlistEntryRow(Base):
    __tablename__ = "watchlist_entries"
    __table_args__ = (
        Index(
            "ux_watchlist_active_plate",
            "plate",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plate: Mapped[str] = mapped_column(String(12))  # normalized: A-Z, 0-9
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_by: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WatchlistStateRow(Base):
    """One row (id 1): the list's version, raised by every change in the same transaction."""

    __tablename__ = "watchlist_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
