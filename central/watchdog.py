"""Camera-offline alerts, with a grace period so a flapping camera pages nobody.

A camera counts as offline when its retained status says so or its edge's LWT does.
Once it has stayed offline for ``alerts.camera_offline_grace_s`` the watchdog opens a
``camera_offline`` alert (an event, so it shows on the live page and is acknowledged
like any other); when the camera is back, the alert ends. A camera back within the
grace period raises nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from central.storage.db import as_utc
from central.storage.models import CameraRow, EdgeRow, EventRow, EventUpdateRow

log = logging.getLogger(__name__)
KIND = "camera_offline"


class CameraWatchdog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        grace_s: float,
        publish: Callable[[str], None],
        period_s: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.grace_s = grace_s
        self.publish = publish
        self.period_s = period_s
        self._since: dict[tuple[str, str, str], datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                for event_id in self.tick(datetime.now(UTC)):
                    self.publish(event_id)
            except Exception:  # the database restarting, say: try again next tick
                log.exception("camera watchdog tick failed")

    def tick(self, now: datetime) -> list[str]:
        """One pass; returns the ids of alerts opened or ended."""
        changed: list[str] = []
        with self.sessions.begin() as session:
            edges = {
                (e.site, e.edge_id): (e.state, as_utc(e.updated_at))
                for e in session.scalars(select(EdgeRow))
            }
            open_alerts = {
                (e.site, e.edge_id, e.camera_id): e
                for e in session.scalars(
                    select(EventRow).where(EventRow.kind == KIND, EventRow.state == "active")
                )
            }
            for cam in session.scalars(select(CameraRow)):
                key = (cam.site, cam.edge_id, cam.camera_id)
                edge_state, edge_at = edges.get((cam.site, cam.edge_id), ("online", None))
                causes = []
                if cam.state == "offline":
                    causes.append((as_utc(cam.updated_at), cam.error or "camera offline"))
                if edge_state == "offline":
                    causes.append((edge_at, "edge offline"))
                alert = open_alerts.get(key)
                if not causes:
                    self._since.pop(key, None)
                    if alert is not None:
                        self._end(session, alert, now)
                        changed.append(alert.id)
                    continue
                if alert is not None:
                    continue
                first = min((t for t, _ in causes if t is not None), default=now)
                since = self._since.setdefault(key, min(first, now))
                if (now - since).total_seconds() >= self.grace_s:
                    changed.append(self._open(session, cam, since, causes[0][1], now))
        return changed

    def _open(
        self, session: Session, cam: CameraRow, since: datetime, reason: str, now: datetime
    ) -> str:
        event_id = str(uuid.uuid4())
        session.add(
            EventRow(
                id=event_id,
                site=cam.site,
                edge_id=cam.edge_id,
                camera_id=cam.camera_id,
                kind=KIND,
                analytic="hub-watchdog",
                label=None,
                state="active",
                start_time=since,
                end_time=None,
                frame_time=now,
                score=1.0,
                box=None,
                zone=None,
                lat=cam.lat,
                lon=cam.lon,
                attributes={"reason": reason[:200], "grace_s": self.grace_s},
                last_seq=0,
                messages=1,
                first_received_at=now,
                updated_at=now,
                status="new",
            )
        )
        session.add(
            EventUpdateRow(
                event_id=event_id, seq=0, type="new", frame_time=now, score=1.0, received_at=now
            )
        )
        log.warning(
            "camera offline alert",
            extra={"camera": cam.camera_id, "edge": cam.edge_id, "since": since.isoformat()},
        )
        return event_id

    def _end(self, session: Session, alert: EventRow, now: datetime) -> None:
        alert.state, alert.end_time, alert.updated_at = "ended", now, now
        alert.last_seq += 1
        alert.messages += 1
        session.add(
            EventUpdateRow(
                event_id=alert.id,
                seq=alert.last_seq,
                type="end",
                frame_time=now,
                score=1.0,
                received_at=now,
            )
        )
        log.info("camera back online", extra={"camera": alert.camera_id, "edge": alert.edge_id})
