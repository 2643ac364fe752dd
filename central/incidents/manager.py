"""The incident manager: the one stateful object that runs merging, routing, escalation
and the lifecycle of incidents against the database.

It holds what those share: the configuration, the session factory, the ack-link signer,
and the event that wakes the dispatcher once queued deliveries are committed. The rules
themselves are in :mod:`.merge`, :mod:`.routing` and :mod:`.escalation`; the ack links
in :mod:`.acklinks`; sending the queued rows is :mod:`central.delivery`'s. What stays
here is the sequence (an alert in: merge, else open and route; notify; audit), the
notification document, the queueing of one ``deliveries`` row per recipient, and the
state changes with their audit trail.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.config import HubConfig, Team
from central.incidents import escalation, merge, routing
from central.incidents.acklinks import ACK_SECRET_NAME, AckLinkError, AckSigner, stored_secret
from central.storage.db import as_utc
from central.storage.models import (
    AckTokenUsedRow,
    DeliveryRow,
    EventRow,
    IncidentAlertRow,
    IncidentAuditRow,
    IncidentRow,
)

log = logging.getLogger(__name__)

STATES = ("open", "acknowledged", "resolved", "false_alarm")


def _now() -> datetime:
    return datetime.now(UTC)


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
        found = merge.merged_into(session, ev.id)
        if found is not None:
            return found
        incident, where = merge.match(session, self.settings, ev, bearing, t)
        alert = merge.alert_row(ev, bearing, t)
        if incident is None:
            incident = merge.new_incident(ev, t, now)
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
        merge.absorb(incident, ev, t, now, where)
        self._audit(session, incident.id, "system", "merged", f"alert from {ev.camera_id}")
        team = self.cfg.team(incident.notified_team or incident.team_id or "")
        if team is not None and merge.renotify(incident, team, now):
            self._notify(session, incident, team, "update", now)
        return incident

    def route(self, incident: IncidentRow) -> Team | None:
        return routing.route(self.cfg.teams, incident)

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
            for target in routing.targets(session, self.cfg.push, team, ch):
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
            for inc in escalation.due(session, now):
                nxt = escalation.next_team(self.cfg, inc)
                if nxt is None:
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
        pending = escalation.digest_due(session, team, now)
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


def incident_query_open() -> Any:
    return or_(IncidentRow.state == "open", IncidentRow.state == "acknowledged")
