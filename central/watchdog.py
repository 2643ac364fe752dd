"""Camera-offline alerts, with a grace period so a flapping camera pages nobody.

A camera counts as offline when its retained status says so or its edge's LWT does.
Once it has stayed offline for ``alerts.camera_offline_grace_s`` the watchdog opens a
``camera_offline`` alert (an event, so it shows on the live page and is acknowledged
like any other); when the camera is back, the alert ends. A camera back within the
grace period raises nothing.

The fleet is not scanned: each pass asks the database for two small sets only, the
offline cameras that have no active alert yet (candidates) and the active alerts whose
camera is no longer offline (to end). A fleet of healthy cameras, however large, costs
two empty queries per second; the work grows with the cameras that are actually out.

A mass outage, or a forged one (someone publishing thousands of "offline" statuses),
must not bury the live page: at most ``limits.max_offline_alerts_per_min`` alerts open
per sliding minute, the longest-offline cameras first. The rest wait for a slot (their
offline time is kept, so none is forgotten) and are counted once each in
``edgewatch_hub_offline_alerts_capped``; ``edgewatch_hub_offline_alerts_held`` says how
many are waiting now.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from central.metrics import HubMetrics
from central.storage.db import as_utc
from central.storage.models import CameraRow, EdgeRow, EventRow, EventUpdateRow

log = logging.getLogger(__name__)
KIND = "camera_offline"
WINDOW = timedelta(minutes=1)
Key = tuple[str, str, str]

_SAME_EDGE = and_(EdgeRow.site == CameraRow.site, EdgeRow.edge_id == CameraRow.edge_id)
_ACTIVE = and_(EventRow.kind == KIND, EventRow.state == "active")
_SAME_CAMERA = and_(
    EventRow.site == CameraRow.site,
    EventRow.edge_id == CameraRow.edge_id,
    EventRow.camera_id == CameraRow.camera_id,
)
_EDGE_OFFLINE = exists().where(_SAME_EDGE, EdgeRow.state == "offline")

# Offline cameras (by their own status or their edge's LWT) that have no active alert.
CANDIDATES = (
    select(
        CameraRow.site,
        CameraRow.edge_id,
        CameraRow.camera_id,
        CameraRow.state.label("cam_state"),
        # hub receipt time, not the edge's own clock: an edge an hour behind must not
        # look an hour offline the moment it reports
        CameraRow.received_at.label("cam_at"),
        CameraRow.error,
        CameraRow.lat,
        CameraRow.lon,
        EdgeRow.state.label("edge_state"),
        EdgeRow.updated_at.label("edge_at"),
    )
    .select_from(CameraRow)
    .outerjoin(EdgeRow, _SAME_EDGE)
    .where(
        or_(CameraRow.state == "offline", EdgeRow.state == "offline"),
        ~exists().where(_ACTIVE, _SAME_CAMERA),
    )
)
# Active alerts whose camera is not offline any more (or no longer exists).
ENDING = select(EventRow).where(
    _ACTIVE,
    ~exists().where(_SAME_CAMERA, or_(CameraRow.state == "offline", _EDGE_OFFLINE)),
)


class CameraWatchdog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        grace_s: float,
        publish: Callable[[str], None],
        period_s: float = 1.0,
        *,
        max_alerts_per_min: int = 120,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.grace_s = grace_s
        self.publish = publish
        self.period_s = period_s
        self.max_alerts_per_min = max_alerts_per_min
        self.metrics = metrics
        self._since: dict[Key, datetime] = {}  # offline, no alert yet: since when
        self._held: set[Key] = set()  # past the grace, waiting for a slot
        self._opened: deque[datetime] = deque()  # when the last alerts opened
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> int:
        """Cameras past the grace period whose alert the cap holds back."""
        return len(self._held)

    def start(self) -> None:
        # a run's own event: a thread a slow stop left behind keeps its set one
        self._stop = run_stop = threading.Event()
        self._since = {}  # what another leader saw meanwhile is in the database, not here
        self._thread = threading.Thread(
            target=self._run, args=(run_stop,), name="camera-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.period_s):
            try:
                for event_id in self.tick(datetime.now(UTC)):
                    self.publish(event_id)
            except Exception:  # the database restarting, say: try again next tick
                log.exception("camera watchdog tick failed")

    def tick(self, now: datetime) -> list[str]:
        """One pass; returns the ids of alerts opened or ended."""
        changed: list[str] = []
        with self.sessions.begin() as session:
            for alert in session.scalars(ENDING):
                self._end(session, alert, now)
                changed.append(alert.id)
            pending: dict[Key, datetime] = {}
            due: list[tuple[datetime, Key, Any, str]] = []
            for cam in session.execute(CANDIDATES):
                key = (cam.site, cam.edge_id, cam.camera_id)
                causes = []
                if cam.cam_state == "offline":
                    causes.append((as_utc(cam.cam_at), cam.error or "camera offline"))
                if cam.edge_state == "offline":
                    causes.append((as_utc(cam.edge_at), "edge offline"))
                first = min((t for t, _ in causes if t is not None), default=now)
                since = pending[key] = self._since.get(key) or min(first, now)
                if (now - since).total_seconds() >= self.grace_s:
                    due.append((since, key, cam, causes[0][1]))
            self._since = pending  # cameras back online, or alerted, are forgotten
            due.sort(key=lambda d: (d[0], d[1]))  # the longest offline first
            slots = self._slots(now)
            for since, _key, cam, reason in due[:slots]:
                changed.append(self._open(session, cam, since, reason, now))
                self._opened.append(now)
            held = {key for _since, key, _cam, _reason in due[slots:]}
        newly = len(held - self._held)
        if newly:
            log.warning(
                "camera_offline alerts capped",
                extra={"held": len(held), "new": newly, "per_min": self.max_alerts_per_min},
            )
        if self.metrics is not None:
            self.metrics.offline_alerts_capped.inc(newly)
            self.metrics.offline_alerts_held.set(len(held))
        self._held = held
        return changed

    def _slots(self, now: datetime) -> int:
        """How many alerts may open now without passing the per-minute cap."""
        while self._opened and (now - self._opened[0] >= WINDOW or self._opened[0] > now):
            self._opened.popleft()  # out of the window (or from a clock that went back)
        return max(0, self.max_alerts_per_min - len(self._opened))

    def _open(self, session: Session, cam: Any, since: datetime, reason: str, now: datetime) -> str:
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
