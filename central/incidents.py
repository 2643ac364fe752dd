"""Incidents: fire and smoke alerts merged per plume, routed to teams, escalated, delivered.

- **Merging.** A new alert joins an open incident of a compatible kind when it comes within
  ``merge_window_s`` of the incident's last alert and from the same camera, or from a camera
  within ``merge_distance_m`` of one of the incident's cameras whose bearing to the plume
  crosses the new alert's bearing within ``max_range_m`` (both cameras looking at the same
  place). Cameras without bearings merge on distance and time alone. Where two bearings
  cross, the incident gets an estimated position.
- **Routing.** The incident goes to the first team whose kinds include it and whose area
  holds its (estimated, else camera) position.
- **Delivery.** One row per recipient and notification in ``deliveries``; the
  :class:`Dispatcher` sends them at least once, retrying with exponential backoff, and logs
  each attempt. A cooldown per incident keeps merged alerts from re-notifying. Teams with a
  ``digest_s`` get one digest per period instead of a message per incident.
- **Escalation.** An urgent incident nobody acknowledged within the team's ``ack_timeout_s``
  is sent to the team's ``escalate_to`` (else the ops team), again and again up the chain.
  ``acknowledge`` stops it; every state change is in the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.config import FIRE_KINDS, Channel, HubConfig, Team
from central.storage.db import as_utc
from central.storage.models import (
    AckTokenUsedRow,
    DeliveryRow,
    EventRow,
    IncidentAlertRow,
    IncidentAuditRow,
    IncidentRow,
    PushSubscriptionRow,
)

log = logging.getLogger(__name__)

URGENT_KINDS = ("forest_fire",)
STATES = ("open", "acknowledged", "resolved", "false_alarm")
TEAM_TOPIC = "edgewatch/v1/teams/{team}/incidents"


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- geometry


def _xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    """Metres east and north of (lat0, lon0): flat-earth, fine over tens of kilometres."""
    return (
        (lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)),
        (lat - lat0) * 110_540.0,
    )


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


def bearings_cross(
    a: tuple[float, float],
    bearing_a: float,
    b: tuple[float, float],
    bearing_b: float,
    max_range_m: float,
) -> tuple[float, float] | None:
    """Where the ray from camera ``a`` crosses the ray from ``b`` (lat, lon), if it does
    in front of both and within ``max_range_m`` of each."""
    ax, ay = 0.0, 0.0
    bx, by = _xy(b[0], b[1], a[0], a[1])
    da = (math.sin(math.radians(bearing_a)), math.cos(math.radians(bearing_a)))
    db = (math.sin(math.radians(bearing_b)), math.cos(math.radians(bearing_b)))
    det = da[0] * (-db[1]) - da[1] * (-db[0])
    if abs(det) < 1e-6:  # parallel rays
        return None
    rx, ry = bx - ax, by - ay
    s = (rx * (-db[1]) - ry * (-db[0])) / det
    t = (da[0] * ry - da[1] * rx) / det
    if not (0 < s <= max_range_m and 0 < t <= max_range_m):
        return None
    x, y = ax + s * da[0], ay + s * da[1]
    lat = a[0] + y / 110_540.0
    lon = a[1] + x / (111_320.0 * math.cos(math.radians(a[0])))
    return lat, lon


def in_polygon(lon: float, lat: float, poly: list[tuple[float, float]]) -> bool:
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


# --------------------------------------------------------------------------- ack links


class AckLinkError(Exception):
    """An ack token that may not be used; ``reason`` is invalid, expired or used."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AckToken:
    team_id: str
    expires: int  # Unix seconds
    nonce: str


class AckSigner:
    """Ack links in notifications, so a ranger can acknowledge from a phone without an
    account. A token is ``TEAM~EXPIRES~NONCE~MAC``: ``~`` is in neither a team id nor
    base64url, so team ids with dots (or anything else they may hold) parse back. The MAC
    is an HMAC-SHA256 over incident id, team id, expiry and nonce; the nonce makes each
    link unique, so :meth:`IncidentManager.redeem_ack` can spend it once. A token only
    acknowledges: resolving and false alarms need an account."""

    SEP = "~"

    def __init__(self, secret: str | None, ttl_s: float = 3600) -> None:
        raw = (secret or secrets.token_urlsafe(32)).encode()
        # a key of its own, so the incidents secret signs nothing else by accident
        self.key = hmac.new(raw, b"edgewatch ack link v1", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _mac(self, incident_id: str, team_id: str, expires: int, nonce: str) -> str:
        msg = "\n".join(("ack", incident_id, team_id, str(expires), nonce)).encode()
        mac = hmac.new(self.key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def token(self, incident_id: str, team_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        nonce = secrets.token_urlsafe(16)
        mac = self._mac(incident_id, team_id, expires, nonce)
        return self.SEP.join((team_id, str(expires), nonce, mac))

    def check(self, incident_id: str, token: str, now: float | None = None) -> AckToken:
        """The token's team, expiry and nonce; :class:`AckLinkError` when it is not valid
        for this incident (forged, another incident or team, malformed) or has expired."""
        parts = token.split(self.SEP)
        if len(parts) != 4 or not all(parts) or not parts[1].isdigit() or len(token) > 256:
            raise AckLinkError("invalid", "the ack link is not valid for this incident")
        team_id, expires_s, nonce, mac = parts
        expires = int(expires_s)
        good = self._mac(incident_id, team_id, expires, nonce)
        if not hmac.compare_digest(good.encode(), mac.encode()):
            raise AckLinkError("invalid", "the ack link is not valid for this incident")
        if (time.time() if now is None else now) > expires:
            raise AckLinkError(
                "expired",
                "the ack link has expired; use the newest notification or log in to acknowledge",
            )
        return AckToken(team_id, expires, nonce)


# --------------------------------------------------------------------------- manager


class IncidentManager:
    def __init__(self, cfg: HubConfig, sessions: sessionmaker[Session]) -> None:
        self.cfg = cfg
        self.settings = cfg.incidents
        self.sessions = sessions
        self.signer = AckSigner(cfg.incidents.secret, cfg.incidents.ack_link_ttl_s)
        if cfg.teams and not cfg.incidents.secret:
            log.warning(
                "incidents.secret is not set: ack links are signed with a random key and stop "
                "working when the hub restarts (set it, or EDGEWATCH_INCIDENTS__SECRET)"
            )
        self.wake = threading.Event()  # wakes the dispatcher
        self.queued = False  # deliveries added in the current transaction

    # -- alerts in --------------------------------------------------------------------------

    def on_event(self, session: Session, ev: EventRow, bearing: float | None) -> IncidentRow:
        """A new fire/smoke alert (called inside the ingest transaction)."""
        now = _now()
        t = as_utc(ev.start_time) or now
        exists = session.execute(
            select(IncidentAlertRow).where(IncidentAlertRow.event_id == ev.id)
        ).scalar_one_or_none()
        if exists is not None:
            found = session.get(IncidentRow, exists.incident_id)
            assert found is not None
            return found
        incident, where = self._match(session, ev, bearing, t)
        alert = IncidentAlertRow(
            incident_id="",
            event_id=ev.id,
            site=ev.site,
            edge_id=ev.edge_id,
            camera_id=ev.camera_id,
            time=t,
            kind=ev.kind,
            label=ev.label,
            score=ev.score,
            lat=ev.lat,
            lon=ev.lon,
            bearing_deg=bearing,
            zone=ev.zone,
        )
        if incident is None:
            incident = IncidentRow(
                id=str(uuid.uuid4()),
                kind=ev.kind,
                state="open",
                urgent=ev.kind in URGENT_KINDS,
                opened_at=now,
                updated_at=now,
                last_alert_at=t,
                lat=ev.lat,
                lon=ev.lon,
                escalation_level=0,
                alerts=1,
            )
            session.add(incident)
            alert.incident_id = incident.id
            session.add(alert)
            self._audit(session, incident.id, "system", "opened", f"{ev.kind} from {ev.camera_id}")
            team = self.route(incident)
            incident.team_id = team.id if team else None
            if team is None:
                log.warning("incident has no team", extra={"incident": incident.id})
            else:
                self._notify(session, incident, team, "new", now)
            log.info(
                "incident opened",
                extra={"incident": incident.id, "kind": ev.kind, "team": incident.team_id},
            )
            return incident
        alert.incident_id = incident.id
        session.add(alert)
        incident.alerts += 1
        incident.last_alert_at = max(as_utc(incident.last_alert_at) or t, t)
        incident.updated_at = now
        if where is not None:
            incident.est_lat, incident.est_lon = where
        if ev.kind in URGENT_KINDS and incident.kind not in URGENT_KINDS:
            incident.kind, incident.urgent = ev.kind, True  # a plume seen over forest
        self._audit(session, incident.id, "system", "merged", f"alert from {ev.camera_id}")
        team = self.cfg.team(incident.notified_team or incident.team_id or "")
        last = as_utc(incident.last_notified_at)
        if (
            team is not None
            and incident.state == "open"
            and (last is None or (now - last).total_seconds() >= team.cooldown_s)
        ):
            self._notify(session, incident, team, "update", now)
        return incident

    def _match(
        self, session: Session, ev: EventRow, bearing: float | None, t: datetime
    ) -> tuple[IncidentRow | None, tuple[float, float] | None]:
        s = self.settings
        since = t - timedelta(seconds=s.merge_window_s)
        candidates = session.execute(
            select(IncidentRow)
            .where(IncidentRow.state.in_(("open", "acknowledged")))
            .where(IncidentRow.last_alert_at >= since)
            .order_by(IncidentRow.opened_at.desc())
        ).scalars()
        for inc in candidates:
            if (inc.kind == "straw_burning") != (ev.kind == "straw_burning"):
                continue  # a field fire and a forest fire are different jobs
            alerts = session.execute(
                select(IncidentAlertRow).where(IncidentAlertRow.incident_id == inc.id)
            ).scalars()
            for a in alerts:
                if (a.site, a.edge_id, a.camera_id) == (ev.site, ev.edge_id, ev.camera_id):
                    return inc, None
                if None in (a.lat, a.lon, ev.lat, ev.lon):
                    continue
                here, there = (ev.lat, ev.lon), (a.lat, a.lon)
                if distance_m(here, there) > s.merge_distance_m:  # type: ignore[arg-type]
                    continue
                if bearing is None or a.bearing_deg is None:
                    return inc, None
                cross = bearings_cross(here, bearing, there, a.bearing_deg, s.max_range_m)  # type: ignore[arg-type]
                if cross is not None:
                    return inc, cross
        return None, None

    def route(self, incident: IncidentRow) -> Team | None:
        lat = incident.est_lat if incident.est_lat is not None else incident.lat
        lon = incident.est_lon if incident.est_lon is not None else incident.lon
        for team in self.cfg.teams:
            if incident.kind not in team.kinds:
                continue
            if team.area is None or (lat is not None and in_polygon(lon, lat, team.area)):  # type: ignore[arg-type]
                return team
        return None

    # -- notifications ----------------------------------------------------------------------

    def payload(self, session: Session, inc: IncidentRow, team: Team, reason: str) -> dict:
        alerts = session.execute(
            select(IncidentAlertRow)
            .where(IncidentAlertRow.incident_id == inc.id)
            .order_by(IncidentAlertRow.time)
        ).scalars()
        base = self.settings.public_url.rstrip("/")
        token = self.signer.token(inc.id, team.id)
        return {
            "type": "incident",
            "reason": reason,
            "incident_id": inc.id,
            "kind": inc.kind,
            "urgent": inc.urgent,
            "state": inc.state,
            "opened_at": as_utc(inc.opened_at).isoformat(),  # type: ignore[union-attr]
            "team": team.id,
            "escalation_level": inc.escalation_level,
            "location": None if inc.lat is None else {"lat": inc.lat, "lon": inc.lon},
            "estimated_location": None
            if inc.est_lat is None
            else {"lat": round(inc.est_lat, 6), "lon": round(inc.est_lon, 6)},  # type: ignore[arg-type]
            "alerts": [
                {
                    "camera_id": a.camera_id,
                    "time": as_utc(a.time).isoformat(),  # type: ignore[union-attr]
                    "label": a.label,
                    "score": a.score,
                    "zone": a.zone,
                    "bearing_deg": a.bearing_deg,
                    "snapshot_url": f"{base}/api/v1/events/{a.event_id}/snapshot.jpg",
                }
                for a in alerts
            ],
            "url": f"{base}/api/v1/incidents/{inc.id}",
            "ack_url": f"{base}/api/v1/incidents/{inc.id}/ack?token={token}",
        }

    def _notify(
        self, session: Session, inc: IncidentRow, team: Team, reason: str, now: datetime
    ) -> int:
        inc.last_notified_at = now
        inc.notified_team = team.id
        if inc.urgent or reason == "escalation":
            inc.escalate_at = now + timedelta(seconds=team.ack_timeout_s)
        if team.digest_s is not None and reason != "escalation":
            return 0  # goes out with the next digest
        doc = self.payload(session, inc, team, reason)
        n = self._queue(session, team, inc.id, reason, doc, now)
        self._audit(session, inc.id, "system", "notified", f"{team.id} ({reason}, {n} recipients)")
        return n

    def _queue(
        self,
        session: Session,
        team: Team,
        incident_id: str | None,
        reason: str,
        doc: dict,
        now: datetime,
    ) -> int:
        n = 0
        for ch in team.channels:
            targets: list[str]
            if ch.type == "webpush":
                subs = session.execute(
                    select(PushSubscriptionRow).where(PushSubscriptionRow.team_id == team.id)
                ).scalars()
                targets = [s.endpoint for s in subs]
            elif ch.type == "mqtt":
                targets = [ch.topic or TEAM_TOPIC.format(team=team.id)]
            else:
                targets = [ch.url or ""]
            for target in targets:
                session.add(
                    DeliveryRow(
                        incident_id=incident_id,
                        team_id=team.id,
                        channel=ch.type,
                        target=target[:512],
                        reason=reason,
                        payload=doc,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                n += 1
        self.queued = True  # the caller wakes the dispatcher once its transaction commits
        return n

    def committed(self) -> None:
        """Call after the transaction that may have queued deliveries has committed."""
        if self.queued:
            self.queued = False
            self.wake.set()

    # -- periodic: escalation and digests ---------------------------------------------------

    def tick(self, now: datetime | None = None) -> None:
        now = now or _now()
        with self.sessions.begin() as session:
            due = session.execute(
                select(IncidentRow)
                .where(IncidentRow.state == "open")
                .where(IncidentRow.escalate_at.is_not(None))
                .where(IncidentRow.escalate_at <= now)
            ).scalars()
            for inc in due:
                current = self.cfg.team(inc.notified_team or inc.team_id or "")
                nxt_id = (current.escalate_to if current else None) or self.settings.ops_team
                nxt = self.cfg.team(nxt_id) if nxt_id else None
                if nxt is None or nxt.id == inc.notified_team:
                    inc.escalate_at = None  # nowhere further to go
                    continue
                inc.escalation_level += 1
                self._audit(
                    session,
                    inc.id,
                    "system",
                    "escalated",
                    f"no acknowledgement from {inc.notified_team}; to {nxt.id}",
                )
                log.warning(
                    "incident escalated",
                    extra={"incident": inc.id, "to": nxt.id, "level": inc.escalation_level},
                )
                self._notify(session, inc, nxt, "escalation", now)
            for team in self.cfg.teams:
                if team.digest_s is not None:
                    self._digest(session, team, now)

    def _digest(self, session: Session, team: Team, now: datetime) -> None:
        last = session.execute(
            select(DeliveryRow.created_at)
            .where(DeliveryRow.team_id == team.id, DeliveryRow.reason == "digest")
            .order_by(DeliveryRow.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        last = as_utc(last)
        if last is not None and (now - last).total_seconds() < team.digest_s:  # type: ignore[operator]
            return
        pending = list(
            session.execute(
                select(IncidentRow)
                .where(IncidentRow.notified_team == team.id)
                .where(IncidentRow.digested_at.is_(None))
                .order_by(IncidentRow.opened_at)
            ).scalars()
        )
        if not pending:
            return
        doc = {
            "type": "digest",
            "team": team.id,
            "time": now.isoformat(),
            "incidents": [self.payload(session, inc, team, "digest") for inc in pending],
        }
        for inc in pending:
            inc.digested_at = now
        self._queue(session, team, None, "digest", doc, now)

    # -- lifecycle --------------------------------------------------------------------------

    def redeem_ack(self, session: Session, incident_id: str, token: str) -> str:
        """Spend an ack link on ``incident_id`` (in the caller's transaction): the team it
        was sent to, or :class:`AckLinkError`. A link works once; its nonce is stored until
        well after it would have expired anyway."""
        tok = self.signer.check(incident_id, token)
        if self.cfg.team(tok.team_id) is None:
            raise AckLinkError("invalid", "the ack link's team is no longer configured")
        used = AckLinkError(
            "used", "this ack link was already used; log in to act on the incident again"
        )
        if session.get(AckTokenUsedRow, tok.nonce) is not None:
            raise used
        now = _now()
        session.execute(
            delete(AckTokenUsedRow).where(AckTokenUsedRow.expires_at < now - timedelta(days=1))
        )
        session.add(
            AckTokenUsedRow(
                nonce=tok.nonce,
                incident_id=incident_id,
                team_id=tok.team_id,
                used_at=now,
                expires_at=datetime.fromtimestamp(tok.expires, UTC),
            )
        )
        try:
            session.flush()
        except IntegrityError:  # the same link, at the same moment, in another request
            session.rollback()
            raise used from None
        return tok.team_id

    def set_state(
        self, session: Session, inc: IncidentRow, state: str, actor: str, note: str | None
    ) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        now = _now()
        action = {
            "acknowledged": "acknowledged",
            "resolved": "resolved",
            "false_alarm": "false_alarm",
            "open": "reopened",
        }[state]
        inc.state = state
        inc.updated_at = now
        if state != "open":
            inc.escalate_at = None
        if state == "acknowledged":
            inc.acked_by, inc.acked_at = actor, now
        self._audit(session, inc.id, actor, action, note)
        log.info("incident state", extra={"incident": inc.id, "state": state, "actor": actor})

    @staticmethod
    def _audit(session: Session, incident_id: str, actor: str, action: str, note: str | None):  # type: ignore[no-untyped-def]
        session.add(
            IncidentAuditRow(
                incident_id=incident_id, time=_now(), actor=actor[:128], action=action, note=note
            )
        )


def is_fire_kind(kind: str) -> bool:
    return kind in FIRE_KINDS


# --------------------------------------------------------------------------- dispatcher


class Dispatcher:
    """Sends due deliveries, at least once: success marks them sent, failure retries later."""

    def __init__(
        self,
        cfg: HubConfig,
        sessions: sessionmaker[Session],
        manager: IncidentManager,
        mqtt_publish: Callable[[str, bytes], None] | None,
        vapid_key: Path | None,
        on_result: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.manager = manager
        self.mqtt_publish = mqtt_publish
        self.vapid_key = vapid_key
        self.on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._last_tick = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.manager.wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_tick >= 1.0:
                    self._last_tick = time.monotonic()
                    self.manager.tick()
                self.run_due()
            except Exception:  # never let the dispatcher die
                log.exception("dispatcher error")
            self.manager.wake.wait(0.25)
            self.manager.wake.clear()

    def run_due(self, now: datetime | None = None) -> int:
        now = now or _now()
        with self.sessions() as session:
            rows = list(
                session.execute(
                    select(DeliveryRow)
                    .where(DeliveryRow.state == "pending", DeliveryRow.next_attempt_at <= now)
                    .order_by(DeliveryRow.id)
                    .limit(50)
                ).scalars()
            )
        for row in rows:
            self._attempt(row)
        return len(rows)

    def _attempt(self, row: DeliveryRow) -> None:
        s = self.cfg.incidents
        error = None
        gone = False
        try:
            body = json.dumps(row.payload, separators=(",", ":")).encode()
            if row.channel == "webhook":
                self._webhook(row, body)
            elif row.channel == "mqtt":
                if self.mqtt_publish is None:
                    raise RuntimeError("no MQTT connection")
                self.mqtt_publish(row.target, body)
            elif row.channel == "webpush":
                gone = self._webpush(row, body)
            else:
                raise RuntimeError(f"unknown channel {row.channel}")
        except Exception as exc:  # every failure is retried
            error = f"{type(exc).__name__}: {exc}"[:500]
        with self.sessions.begin() as session:
            r = session.get(DeliveryRow, row.id)
            if r is None:
                return
            r.attempts += 1
            now = _now()
            if error is None and not gone:
                r.state, r.sent_at, r.last_error = "sent", now, None
            elif gone:
                r.state, r.last_error = "failed", "subscription gone (404/410)"
                session.execute(
                    PushSubscriptionRow.__table__.delete().where(
                        PushSubscriptionRow.endpoint == r.target
                    )
                )
            elif r.attempts >= s.max_attempts:
                r.state, r.last_error = "failed", error
            else:
                delay = min(s.retry_max_s, s.retry_initial_s * 2 ** (r.attempts - 1))
                r.next_attempt_at, r.last_error = now + timedelta(seconds=delay), error
            ok = r.state == "sent"
        log.log(
            logging.INFO if ok else logging.WARNING,
            "delivery",
            extra={
                "delivery": row.id,
                "channel": row.channel,
                "team": row.team_id,
                "incident": row.incident_id,
                "attempt": row.attempts + 1,
                "ok": ok,
                "error": error,
            },
        )
        if self.on_result:
            self.on_result(row.channel, ok)

    def _channel(self, row: DeliveryRow) -> Channel | None:
        team = self.cfg.team(row.team_id)
        if team is None:
            return None
        return next((c for c in team.channels if c.type == row.channel), None)

    def _webhook(self, row: DeliveryRow, body: bytes) -> None:
        ch = self._channel(row)
        if ch is None:
            raise RuntimeError("the team's webhook channel is no longer configured")
        ts = str(int(time.time()))
        mac = hmac.new(ch.hmac_key(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            row.target,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "edgewatch-hub",
                "X-Edgewatch-Delivery": str(row.id),
                "X-Edgewatch-Timestamp": ts,
                "X-Edgewatch-Signature": f"sha256={mac}",
            },
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"HTTP {resp.status}")

    def _webpush(self, row: DeliveryRow, body: bytes) -> bool:
        """True when the push service says the subscription is gone."""
        from pywebpush import WebPushException, webpush

        with self.sessions() as session:
            sub = session.execute(
                select(PushSubscriptionRow).where(PushSubscriptionRow.endpoint == row.target)
            ).scalar_one_or_none()
        if sub is None:
            return True
        if self.vapid_key is None:
            raise RuntimeError("no VAPID key")
        try:
            webpush(
                subscription_info={
                    "endpoint": sub.endpoint,
                    "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
                },
                data=body,
                vapid_private_key=str(self.vapid_key),
                vapid_claims={"sub": self.cfg.push.subject},
                ttl=self.cfg.push.ttl_s,
                timeout=5,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                return True
            raise RuntimeError(f"push service: {status} {exc}") from None
        return False


def load_vapid(path: Path) -> tuple[Path, str]:
    """The VAPID private key file (created when missing, mode 0600) and the public key for
    browsers (uncompressed point, base64url)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        log.info("VAPID key created", extra={"file": str(path)})
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    pub = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return path, base64.urlsafe_b64encode(pub).rstrip(b"=").decode()


def incident_query_open() -> Any:
    return or_(IncidentRow.state == "open", IncidentRow.state == "acknowledged")
