"""Retention: orphans (snapshots and evidence files of events the hub never received) and
old readings.

Readings (any analytic's measurements: a count a minute per line, an occupancy every 30 s)
grow without end otherwise: 100 cameras with three analytics add about 430,000 rows a day.
Those received more than ``limits.readings_retention_days`` ago are deleted in pages of
``PAGE`` rows by their ``received_at`` index, each page in its own short transaction.

A snapshot or an evidence file may arrive a little before its event (they travel on
their own topics), so one with no event is kept for ``limits.orphan_snapshot_ttl_s``
after it arrived; then, if its event still has not come, it is deleted. Without this
anyone who can publish could fill the database with JPEGs and clips of made-up events.

The job looks up orphans by event id only (the primary key's first column, so SQLite
reads its index and never the blobs) in pages, and deletes each page in its own short
transaction, repeating the age and "no such event" conditions in the DELETE so an event
that arrived meanwhile keeps its files.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from central.metrics import HubMetrics
from central.storage.models import EventRow, EvidenceFileRow, ReadingRow, SnapshotRow

log = logging.getLogger(__name__)
PAGE = 500
TABLES = (("snapshot", SnapshotRow), ("evidence", EvidenceFileRow))


def expire_orphans(
    sessions: sessionmaker[Session], now: datetime, ttl_s: float, page: int = PAGE
) -> dict[str, int]:
    """Delete snapshots and evidence files of unknown events older than ``ttl_s``."""
    cutoff = now - timedelta(seconds=ttl_s)
    deleted: dict[str, int] = {}
    for kind, table in TABLES:
        orphan = ~exists(select(EventRow.id).where(EventRow.id == table.event_id))
        deleted[kind] = 0
        after = ""
        while True:
            with sessions() as session:
                ids = list(
                    session.scalars(
                        select(table.event_id)
                        .where(table.event_id > after, orphan)
                        .distinct()
                        .order_by(table.event_id)
                        .limit(page)
                    )
                )
            if not ids:
                break
            after = ids[-1]
            with sessions.begin() as session:
                result = session.execute(
                    delete(table)
                    .where(table.event_id.in_(ids), table.received_at < cutoff, orphan)
                    .execution_options(synchronize_session=False)
                )
                deleted[kind] += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    return deleted


def expire_readings(
    sessions: sessionmaker[Session], now: datetime, days: float, page: int = PAGE
) -> int:
    """Delete readings received more than ``days`` ago; returns how many."""
    cutoff = now - timedelta(days=days)
    deleted = 0
    while True:
        with sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(ReadingRow.id).where(ReadingRow.received_at < cutoff).limit(page)
                )
            )
            if not ids:
                return deleted
            session.execute(
                delete(ReadingRow)
                .where(ReadingRow.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
            deleted += len(ids)


class RetentionJob:
    """Runs :func:`expire_orphans` every ``period_s`` in a thread of its own."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_s: float,
        metrics: HubMetrics | None = None,
        period_s: float = 60.0,
        readings_days: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.readings_days = readings_days
        self.metrics = metrics
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # a run's own event: a thread a slow stop left behind keeps its set one
        self._stop = run_stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(run_stop,), name="retention", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def run_once(self, now: datetime | None = None) -> dict[str, int]:
        deleted = expire_orphans(self.sessions, now or datetime.now(UTC), self.ttl_s)
        for kind in ("snapshot", "evidence"):
            n = deleted[kind]
            if n and self.metrics is not None:
                self.metrics.orphans_expired.labels(kind).inc(n)
        if deleted["snapshot"] or deleted["evidence"]:
            log.info(
                "orphans expired",
                extra={"snapshots": deleted["snapshot"], "evidence_files": deleted["evidence"]},
            )
        return deleted

    def readings_once(self, now: datetime | None = None) -> int:
        if self.readings_days is None:
            return 0
        n = expire_readings(self.sessions, now or datetime.now(UTC), self.readings_days)
        if n:
            log.info("readings expired", extra={"readings": n})
        return n

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.period_s):
            try:
                self.run_once()
                self.readings_once()
            except Exception:  # the database restarting, say: try again next period
                log.exception("retention pass failed")
