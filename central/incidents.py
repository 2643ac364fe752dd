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
  each attempt. Targets (a webhook URL, a push endpoint, an MQTT topic) are served
  concurrently, one attempt in flight per target, and a :class:`CircuitBreaker` per target
  defers the deliveries of one that keeps failing: a hung gateway holds up only its own
  queue. Webhooks never follow redirects (a 3xx is a failure, retried). A cooldown per
  incident keeps merged alerts from re-notifying. Teams with a ``digest_s`` get one digest
  per period instead of a message per incident.
- **Web Push endpoints** must be https URLs on a push service of ``push.allowed_hosts``
  (never an IP address), at most ``push.max_subscriptions_per_team`` per team: a browser
  subscription is a URL the hub will POST to, and an enrolment token is no proof of good
  intent.
- **Escalation.** An urgent incident nobody acknowledged within the team's ``ack_timeout_s``
  is sent to the team's ``escalate_to`` (else the ops team), again and again up the chain.
  ``acknowledge`` stops it; every state change is in the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Column, MetaData, String, Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.config import FIRE_KINDS, Channel, HubConfig, PushSettings, Team
from central.storage.db import UTCDateTime, as_utc
from central.storage.models import (
    AckTokenUsedRow,
    DeliveryRow,
    EventRow,
    IncidentAlertRow,
    IncidentAuditRow,
    IncidentRow,
    PushSubscriptionRow,
)
from edge.analytics import registry

log = logging.getLogger(__name__)

URGENT_KINDS = registry.kinds_where(incident="fire", urgent=True)  # forest_fire
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


# the hub's own generated secrets (migration 0008); a Core table: nothing but this module
# reads or writes it
hub_secrets = Table(
    "hub_secrets",
    MetaData(),
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
ACK_SECRET_NAME = "incidents.ack_link"


def stored_secret(sessions: sessionmaker[Session], name: str) -> str:
    """The secret ``name`` from the database, generated (32 random bytes) on first use. Hubs
    sharing a database race to create it; the first insert wins and all read that one."""
    query = select(hub_secrets.c.value).where(hub_secrets.c.name == name)
    with sessions() as session:
        value = session.execute(query).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with sessions.begin() as session:
            session.execute(
                insert(hub_secrets).values(
                    name=name, value=secrets.token_urlsafe(32), created_at=_now()
                )
            )
        log.info("secret generated and stored in the database", extra={"secret_name": name})
    except IntegrityError:
        pass  # another hub on this database made it first
    with sessions() as session:
        return session.execute(query).scalar_one()


# --------------------------------------------------------------------------- push endpoints

MAX_PUSH_ENDPOINT = 512  # deliveries.target holds this much
_HOST_CHARS = re.compile(r"[a-z0-9.-]+")


class PushRefused(Exception):
    """A subscription the hub will not take; ``status`` is the HTTP answer (422 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _host_allowed(host: str, port: int, allowed: list[str]) -> bool:
    for entry in allowed:
        pattern, _, want = entry.partition(":")
        if port != (int(want) if want else 443):
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def push_endpoint_problem(endpoint: str, push: PushSettings) -> str | None:
    """Why the hub may not POST to this Web Push endpoint, or None when it may: https only,
    no user info, never an IP address, a host (and port) of ``push.allowed_hosts``."""
    if len(endpoint) > MAX_PUSH_ENDPOINT:
        return f"the endpoint is longer than {MAX_PUSH_ENDPOINT} characters"
    try:
        url = urlsplit(endpoint)
        port = url.port or 443
    except ValueError:
        return "the endpoint is not a valid URL"
    if url.scheme != "https":
        return "a push endpoint must be an https URL"
    if "@" in url.netloc:
        return "a push endpoint may not carry a user name or password"
    host = (url.hostname or "").rstrip(".")
    if not host:
        return "the endpoint has no host"
    if not _HOST_CHARS.fullmatch(host):
        return "the endpoint's host is not a DNS name"
    try:
        ipaddress.ip_address(host)
        return "a push endpoint must name a push service, not an IP address"
    except ValueError:
        pass
    if not _host_allowed(host, port, push.allowed_hosts):
        shown = host if port == 443 else f"{host}:{port}"
        return f"{shown} is not a push service this hub sends to (push.allowed_hosts)"
    return None


def admit_push_subscription(
    session: Session, push: PushSettings, team_id: str, endpoint: str
) -> None:
    """Raise :class:`PushRefused` unless ``endpoint`` may join ``team_id``: the endpoint
    policy (422), and the team's cap (409; the (N+1)th is refused, nothing is evicted, so
    whoever holds the enrolment token cannot push rangers' phones out). An endpoint already
    subscribed to the team may always renew its keys."""
    problem = push_endpoint_problem(endpoint, push)
    if problem is not None:
        log.warning(
            "push subscription refused",
            extra={"team": team_id, "reason": problem, "target": redact_url(endpoint)},
        )
        raise PushRefused(422, f"push endpoint refused: {problem}")
    mine = session.execute(
        select(PushSubscriptionRow.id).where(
            PushSubscriptionRow.endpoint == endpoint, PushSubscriptionRow.team_id == team_id
        )
    ).scalar_one_or_none()
    if mine is not None:
        return
    have = session.execute(
        select(func.count())
        .select_from(PushSubscriptionRow)
        .where(PushSubscriptionRow.team_id == team_id)
    ).scalar_one()
    cap = push.max_subscriptions_per_team
    if have >= cap:
        log.warning("push subscription refused: team is full", extra={"team": team_id, "cap": cap})
        raise PushRefused(
            409,
            f"team {team_id} already has the maximum of {cap} push subscriptions "
            "(push.max_subscriptions_per_team); ones whose push service reports them gone are "
            "dropped, or ask an operator to remove stale ones",
        )


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` and a marker: webhook and push URLs carry secrets in their
    path or query (a Slack hook, a push endpoint's token), so logs get no more than this."""
    try:
        u = urlsplit(url)
        host = u.hostname or "?"
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return "<unparsable url>"
    rest = "/..." if (u.path not in ("", "/") or u.query or u.fragment) else ""
    return f"{u.scheme}://{host}{port}{rest}"


# --------------------------------------------------------------------------- manager


class IncidentManager:
    def __init__(self, cfg: HubConfig, sessions: sessionmaker[Session]) -> None:
        self.cfg = cfg
        self.settings = cfg.incidents
        self.sessions = sessions
        secret = cfg.incidents.secret
        if not secret:
            # generated once and kept in the database: links survive a restart
            secret = stored_secret(sessions, ACK_SECRET_NAME)
            if cfg.teams:
                log.info("incidents.secret is not set: ack links use the key in the database")
        self.signer = AckSigner(secret, cfg.incidents.ack_link_ttl_s)
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
                targets = self._push_targets(session, team.id)
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

    def _push_targets(self, session: Session, team_id: str) -> list[str]:
        """The team's newest subscriptions, up to the cap, that the endpoint policy allows
        (rows stored before the policy, or before a narrower allow-list, are never sent)."""
        push = self.cfg.push
        subs = session.execute(
            select(PushSubscriptionRow.endpoint)
            .where(PushSubscriptionRow.team_id == team_id)
            .order_by(PushSubscriptionRow.created_at.desc(), PushSubscriptionRow.id.desc())
        ).scalars()
        targets: list[str] = []
        refused = 0
        for endpoint in subs:
            if push_endpoint_problem(endpoint, push) is not None:
                refused += 1
            elif len(targets) < push.max_subscriptions_per_team:
                targets.append(endpoint)
        if refused:
            log.warning(
                "push subscriptions skipped: refused by the endpoint policy",
                extra={"team": team_id, "count": refused},
            )
        return targets

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


@dataclass
class _Circuit:
    failures: int = 0  # consecutive
    open_until: float = 0.0
    cooldown: float = 0.0


@dataclass
class CircuitBreaker:
    """One circuit per delivery target. ``failures`` consecutive failures open it: for
    ``open_s`` its deliveries are deferred without an attempt; then one attempt (the probe)
    goes through. A probe that fails reopens it for twice as long (up to ``max_open_s``), a
    success closes it. The dispatcher keeps at most one attempt per target in flight, so
    there is one probe at a time."""

    failures: int = 3
    open_s: float = 30.0
    max_open_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked_for(self, key: str) -> float:
        """Seconds until ``key`` may be tried again; 0 when it may be now."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None or c.failures < self.failures:
                return 0.0
            return max(0.0, c.open_until - self.clock())

    def consecutive_failures(self, key: str) -> int:
        with self._lock:
            c = self._circuits.get(key)
            return 0 if c is None else c.failures

    def record(self, key: str, ok: bool) -> str | None:
        """Count an attempt's outcome: ``"opened"`` when this failure opened (or reopened)
        the circuit, ``"closed"`` when this success closed an open one, else None."""
        with self._lock:
            c = self._circuits.get(key)
            if ok:
                if c is None:
                    return None
                del self._circuits[key]  # closed circuits are not kept
                return "closed" if c.failures >= self.failures else None
            if c is None:
                c = self._circuits[key] = _Circuit(cooldown=self.open_s)
            c.failures += 1
            if c.failures < self.failures:
                return None
            if c.failures > self.failures:  # a failed probe
                c.cooldown = min(self.max_open_s, c.cooldown * 2)
            c.open_until = self.clock() + c.cooldown
            return "opened"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answer of 3xx is an error: urllib raises HTTPError instead of following it
    (it would re-send a POST as a GET, signature headers and all, without the body)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Refused(Exception):
    """A delivery that policy forbids: failed at once, never retried, no circuit count."""


def _push_session(push: PushSettings) -> Any:
    """A requests session for one push attempt: no redirects (a 3xx is an error, since
    pywebpush raises on any status above 202), and ``push.ca_file`` when set (passed with
    each request: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE in the environment)."""
    import requests

    ca = str(push.ca_file) if push.ca_file is not None else None

    class NoRedirectSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs["allow_redirects"] = False
            if ca is not None:
                kwargs["verify"] = ca
            return super().request(*args, **kwargs)

    return NoRedirectSession()


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>)]+")
_URL_PATH_IN_TEXT = re.compile(r"(url: )(/[^\s'\"<>)]*)")


def scrub(error: str) -> str:
    """An error message with any URL cut to its origin and any request path dropped:
    requests and urllib3 name them in their errors, and they carry secrets."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), error)
    return _URL_PATH_IN_TEXT.sub(lambda m: m.group(1) + "/...", text)


class Dispatcher:
    """Sends due deliveries, at least once: success marks them sent, failure retries later.

    The loop thread only picks rows: each attempt runs in a thread of its own, at most one
    per target and ``incidents.max_parallel_deliveries`` in all, so a slow or hung target
    delays nobody else's notifications; rows of a target whose circuit is open are deferred
    without an attempt (see :class:`CircuitBreaker`)."""

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
        s = cfg.incidents
        self.breaker = CircuitBreaker(s.breaker_failures, s.breaker_open_s, s.breaker_max_open_s)
        self._busy: set[str] = set()  # targets with an attempt in flight
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._last_tick = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops picking rows; attempts in flight are daemon threads, cut short at exit (an
        interrupted attempt's row stays pending and is sent again: at least once)."""
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

    def in_flight(self) -> int:
        with self._busy_lock:
            return len(self._busy)

    def run_due(self, now: datetime | None = None) -> int:
        """Start an attempt for each due target that has none in flight: the number started."""
        now = now or _now()
        with self._busy_lock:
            busy = set(self._busy)
        free = self.cfg.incidents.max_parallel_deliveries - len(busy)
        if free <= 0:
            return 0
        query = select(DeliveryRow).where(
            DeliveryRow.state == "pending", DeliveryRow.next_attempt_at <= now
        )
        if busy:  # their rows wait for the attempt in flight; they must not fill the batch
            query = query.where(DeliveryRow.target.not_in(busy))
        with self.sessions() as session:
            rows = list(session.execute(query.order_by(DeliveryRow.id).limit(200)).scalars())
        started = 0
        deferred: dict[str, float] = {}
        for row in rows:
            key = row.target
            if key in busy or key in deferred:
                continue  # one attempt per target at a time, oldest row first
            wait = self.breaker.blocked_for(key)
            if wait > 0:
                deferred[key] = wait
                continue
            busy.add(key)
            with self._busy_lock:
                self._busy.add(key)
            threading.Thread(
                target=self._run, args=(row,), name=f"delivery-{row.id}", daemon=True
            ).start()
            started += 1
            if started >= free:
                break
        if deferred:
            self._defer(deferred, now)
        return started

    def _defer(self, deferred: dict[str, float], now: datetime) -> None:
        with self.sessions.begin() as session:
            for key, wait in deferred.items():
                n = self.breaker.consecutive_failures(key)
                session.execute(
                    update(DeliveryRow)
                    .where(
                        DeliveryRow.state == "pending",
                        DeliveryRow.target == key,
                        DeliveryRow.next_attempt_at <= now,
                    )
                    .values(
                        next_attempt_at=now + timedelta(seconds=wait),
                        last_error=f"circuit open after {n} consecutive failures of this "
                        f"target; next try in {wait:.0f} s",
                    )
                )

    def _run(self, row: DeliveryRow) -> None:
        try:
            self._attempt(row)
        except Exception:
            log.exception("delivery error", extra={"delivery": row.id})
        finally:
            with self._busy_lock:
                self._busy.discard(row.target)
            self.manager.wake.set()  # the target's next row may go now

    def _attempt(self, row: DeliveryRow) -> None:
        s = self.cfg.incidents
        error = None
        gone = False
        refused = False
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
        except _Refused as exc:
            error, refused = str(exc), True
        except Exception as exc:  # every failure is retried
            error = scrub(f"{type(exc).__name__}: {exc}")[:500]
        transition = None if refused else self.breaker.record(row.target, error is None)
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
            elif refused or r.attempts >= s.max_attempts:
                r.state, r.last_error = "failed", error
            else:
                delay = min(s.retry_max_s, s.retry_initial_s * 2 ** (r.attempts - 1))
                r.next_attempt_at, r.last_error = now + timedelta(seconds=delay), error
            ok = r.state == "sent"
            attempt = r.attempts
        target = row.target if row.channel == "mqtt" else redact_url(row.target)
        log.log(
            logging.INFO if ok else logging.WARNING,
            "delivery",
            extra={
                "delivery": row.id,
                "channel": row.channel,
                "team": row.team_id,
                "incident": row.incident_id,
                "target": target,
                "attempt": attempt,
                "ok": ok,
                "error": error,
            },
        )
        if transition == "opened":
            log.warning(
                "delivery circuit open",
                extra={
                    "channel": row.channel,
                    "target": target,
                    "failures": self.breaker.consecutive_failures(row.target),
                    "retry_in_s": round(self.breaker.blocked_for(row.target), 1),
                },
            )
        elif transition == "closed":
            log.info("delivery circuit closed", extra={"channel": row.channel, "target": target})
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
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(req, timeout=self.cfg.incidents.delivery_timeout_s) as resp:
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"HTTP {resp.status}")
        except urllib.error.HTTPError as exc:
            exc.close()
            if 300 <= exc.code < 400:
                raise RuntimeError(f"HTTP {exc.code}: webhooks do not follow redirects") from None
            raise RuntimeError(f"HTTP {exc.code}") from None

    def _webpush(self, row: DeliveryRow, body: bytes) -> bool:
        """True when the push service says the subscription is gone."""
        from pywebpush import WebPushException, webpush

        with self.sessions() as session:
            sub = session.execute(
                select(PushSubscriptionRow).where(PushSubscriptionRow.endpoint == row.target)
            ).scalar_one_or_none()
        if sub is None:
            return True
        problem = push_endpoint_problem(sub.endpoint, self.cfg.push)
        if problem is not None:  # queued before the allow-list changed
            raise _Refused(f"push endpoint refused: {problem}")
        if self.vapid_key is None:
            raise RuntimeError("no VAPID key")
        http = _push_session(self.cfg.push)
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
                timeout=self.cfg.incidents.delivery_timeout_s,
                requests_session=http,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                return True
            raise RuntimeError(f"push service: HTTP {status}") from None
        finally:
            http.close()
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
