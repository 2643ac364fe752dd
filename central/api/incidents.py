"""Incidents (fire, smoke, straw burning), their lifecycle, and ranger push subscriptions."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from central.api.deps import IncidentsDep, OptionalUserDep, SessionDep
from central.auth import User
from central.delivery.channels import PushRefused, admit_push_subscription
from central.incidents import AckLinkError, IncidentManager
from central.storage.db import as_utc
from central.storage.models import (
    DeliveryRow,
    IncidentAlertRow,
    IncidentAuditRow,
    IncidentRow,
    PushSubscriptionRow,
)

router = APIRouter(tags=["incidents"])
WEB = Path(__file__).resolve().parents[1] / "web"


class IncidentOut(BaseModel):
    id: str
    kind: str
    state: str
    urgent: bool
    opened_at: datetime
    updated_at: datetime
    last_alert_at: datetime
    lat: float | None
    lon: float | None
    est_lat: float | None
    est_lon: float | None
    team_id: str | None
    notified_team: str | None
    escalation_level: int
    escalate_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    alerts: int


class AlertOut(BaseModel):
    event_id: str
    camera_id: str
    edge_id: str
    time: datetime
    kind: str
    label: str | None
    score: float
    bearing_deg: float | None
    zone: str | None
    snapshot_url: str


class AuditOut(BaseModel):
    time: datetime
    actor: str
    action: str
    note: str | None


class DeliveryOut(BaseModel):
    id: int
    team_id: str
    channel: str
    target: str
    reason: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class IncidentDetail(IncidentOut):
    alert_list: list[AlertOut]
    audit: list[AuditOut]
    deliveries: list[DeliveryOut]


class Action(BaseModel):
    """The audit trail names who acted from the credentials (the account, or ``team:ID`` for
    an ack link), never from the body; a call sign or message goes in ``note``."""

    note: str | None = Field(None, max_length=2000, description="free text for the audit trail")


class PushKeys(BaseModel):
    p256dh: str = Field(max_length=256)
    auth: str = Field(max_length=64)


class Subscription(BaseModel):
    endpoint: str = Field(max_length=1024, pattern=r"^https?://")
    keys: PushKeys
    token: str = Field(max_length=256, description="the team's enrolment token")


def _out(row: IncidentRow) -> dict[str, Any]:
    d = {c: getattr(row, c) for c in IncidentOut.model_fields}
    for k in ("opened_at", "updated_at", "last_alert_at", "escalate_at", "acked_at"):
        d[k] = as_utc(d[k])
    return d


def _manager(request: Request) -> IncidentManager:
    return request.app.state.incidents  # type: ignore[no-any-return]


@router.get(
    "/api/v1/incidents", response_model=list[IncidentOut], summary="Incidents, newest first"
)
def list_incidents(
    session: SessionDep,
    _user: IncidentsDep,
    state: Literal["open", "acknowledged", "resolved", "false_alarm"] | None = None,
    kind: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    q = select(IncidentRow).order_by(IncidentRow.opened_at.desc()).limit(limit)
    if state:
        q = q.where(IncidentRow.state == state)
    if kind:
        q = q.where(IncidentRow.kind == kind)
    return [_out(r) for r in session.execute(q).scalars()]


@router.get(
    "/api/v1/incidents/{incident_id}",
    response_model=IncidentDetail,
    summary="One incident with its alerts, audit trail and delivery log",
)
def get_incident(incident_id: str, session: SessionDep, user: IncidentsDep) -> dict[str, Any]:
    full = user.can("users")  # delivery targets carry secrets: in full for admins only
    row = session.get(IncidentRow, incident_id)
    if row is None:
        raise HTTPException(404, "no such incident")
    alerts = session.execute(
        select(IncidentAlertRow)
        .where(IncidentAlertRow.incident_id == incident_id)
        .order_by(IncidentAlertRow.time)
    ).scalars()
    audit = session.execute(
        select(IncidentAuditRow)
        .where(IncidentAuditRow.incident_id == incident_id)
        .order_by(IncidentAuditRow.id)
    ).scalars()
    deliveries = session.execute(
        select(DeliveryRow).where(DeliveryRow.incident_id == incident_id).order_by(DeliveryRow.id)
    ).scalars()
    return {
        **_out(row),
        "alert_list": [
            {
                "event_id": a.event_id,
                "camera_id": a.camera_id,
                "edge_id": a.edge_id,
                "time": as_utc(a.time),
                "kind": a.kind,
                "label": a.label,
                "score": a.score,
                "bearing_deg": a.bearing_deg,
                "zone": a.zone,
                "snapshot_url": f"/api/v1/events/{a.event_id}/snapshot.jpg",
            }
            for a in alerts
        ],
        "audit": [
            {"time": as_utc(a.time), "actor": a.actor, "action": a.action, "note": a.note}
            for a in audit
        ],
        "deliveries": [
            {
                "id": d.id,
                "team_id": d.team_id,
                "channel": d.channel,
                "target": _target(d.channel, d.target, full),
                "reason": d.reason,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": _error(d.last_error, full),
                "created_at": as_utc(d.created_at),
                "sent_at": as_utc(d.sent_at),
            }
            for d in deliveries
        ],
    }


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _origin(url: str) -> str:
    """Scheme and host of a URL, nothing after: a webhook's path or query and a push
    endpoint's path are credentials (a token in the query, a Slack-style secret path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:  # IPv6
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "(redacted)"
    return f"{parts.scheme}://{host}/..." if parts.scheme else "(redacted)"


def _target(channel: str, target: str, full: bool) -> str:
    if channel == "mqtt":
        return target  # a topic: no secret in it
    if not full:
        return _origin(target)
    return target if channel != "webpush" else target[:60] + "..."


def _error(error: str | None, full: bool) -> str | None:
    """A delivery error with any URL in it cut to its origin (for all but admins)."""
    if error is None or full:
        return error
    return _URL.sub(lambda m: _origin(m.group()), error)


ACK_ERRORS = {"invalid": 403, "expired": 403, "used": 409}
INVALID_LINK = "the ack link is not valid for this incident"


def ack_auth(
    user: OptionalUserDep,
    token: str | None = Query(
        None,
        max_length=256,
        description="the ack token from the notification's ack_url: works once, for a "
        "limited time, and only to acknowledge (or log in)",
    ),
) -> tuple[User | None, str | None]:
    """A signed link from a notification, or an account that may act on incidents."""
    if token:
        if not token.isascii():  # links are ASCII; others would reach the signer's int()
            raise HTTPException(403, INVALID_LINK)
        return None, token
    return _incident_user(user, None), None


def _incident_user(user: User | None, token: str | None) -> User:
    if user is None:
        detail = "not authenticated"
        if token:
            detail = "an ack link only acknowledges; log in to resolve or mark a false alarm"
        raise HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="edgewatch"'})
    if not user.can("incidents"):
        raise HTTPException(403, f"the {user.role} role may not act on incidents")
    return user


def act_auth(
    user: OptionalUserDep,
    token: str | None = Query(
        None, include_in_schema=False, description="ignored: ack links only acknowledge"
    ),
) -> User:
    """Resolving and false alarms: an account with incident rights; an ack link's token
    counts for nothing here (401 without an account, and a clear reason)."""
    return _incident_user(user, token)


AckAuth = Annotated[tuple[User | None, str | None], Depends(ack_auth)]
ActAuth = Annotated[User, Depends(act_auth)]


def _act(
    request: Request,
    session: SessionDep,
    incident_id: str,
    who: tuple[User | None, str | None],
    body: Action,
    state: str,
) -> dict[str, Any]:
    user, token = who
    manager = _manager(request)
    row = session.get(IncidentRow, incident_id, with_for_update=True)
    if row is None:
        raise HTTPException(404, "no such incident")
    if user is not None:
        actor = user.username
    else:
        assert state == "acknowledged", "ack links only acknowledge"
        if row.state in ("resolved", "false_alarm"):
            raise HTTPException(409, f"the incident is already {row.state.replace('_', ' ')}")
        try:
            team = manager.redeem_ack(session, incident_id, token or "")
        except AckLinkError as exc:
            raise HTTPException(ACK_ERRORS[exc.reason], str(exc)) from None
        actor = f"team:{team}"
    if row.state == state:
        session.commit()  # an ack link spent on an incident someone already acknowledged
        return _out(row)
    manager.set_state(session, row, state, actor, body.note)
    session.commit()
    return _out(row)


@router.post(
    "/api/v1/incidents/{incident_id}/ack",
    response_model=IncidentOut,
    summary="Acknowledge (stops escalation); the token comes with each notification",
)
def ack(
    incident_id: str,
    request: Request,
    session: SessionDep,
    who: AckAuth,
    body: Action | None = None,
) -> dict[str, Any]:
    return _act(request, session, incident_id, who, body or Action(), "acknowledged")


@router.post("/api/v1/incidents/{incident_id}/resolve", response_model=IncidentOut)
def resolve(
    incident_id: str,
    request: Request,
    session: SessionDep,
    user: ActAuth,
    body: Action | None = None,
) -> dict[str, Any]:
    return _act(request, session, incident_id, (user, None), body or Action(), "resolved")


@router.post("/api/v1/incidents/{incident_id}/false_alarm", response_model=IncidentOut)
def false_alarm(
    incident_id: str,
    request: Request,
    session: SessionDep,
    user: ActAuth,
    body: Action | None = None,
) -> dict[str, Any]:
    return _act(request, session, incident_id, (user, None), body or Action(), "false_alarm")


@router.get(
    "/api/v1/push/vapid_public_key",
    summary="The VAPID key browsers subscribe with",
    openapi_extra={"x-edgewatch-auth": "public"},
)
def vapid_public_key(request: Request) -> dict[str, str]:
    key = request.app.state.vapid_public
    if not key:
        raise HTTPException(404, "no team uses Web Push")
    return {"key": key}


@router.post(
    "/api/v1/teams/{team_id}/subscriptions",
    status_code=201,
    summary="A ranger's browser subscribes to the team's Web Push notifications",
    openapi_extra={"x-edgewatch-auth": "enrol token"},
)
def subscribe(team_id: str, sub: Subscription, request: Request, session: SessionDep) -> dict:
    cfg = request.app.state.cfg
    team = cfg.team(team_id)
    if team is None or not any(c.type == "webpush" for c in team.channels):
        raise HTTPException(404, "no such team with Web Push")
    if not team.enrol_token or not hmac.compare_digest(
        sub.token.encode(), team.enrol_token.encode()
    ):
        raise HTTPException(403, "wrong enrolment token")
    # https on an allow-listed push service only (422), at most N per team (409)
    try:
        admit_push_subscription(session, cfg.push, team_id, sub.endpoint)
    except PushRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    row = session.execute(
        select(PushSubscriptionRow).where(PushSubscriptionRow.endpoint == sub.endpoint)
    ).scalar_one_or_none()
    if row is None:
        session.add(
            PushSubscriptionRow(
                team_id=team_id,
                endpoint=sub.endpoint,
                p256dh=sub.keys.p256dh,
                auth=sub.keys.auth,
                created_at=datetime.now(UTC),
            )
        )
    else:
        row.team_id, row.p256dh, row.auth = team_id, sub.keys.p256dh, sub.keys.auth
    session.commit()
    return {"team": team_id, "subscribed": True}


@router.get("/rangers", include_in_schema=False)
def rangers_page() -> FileResponse:
    return FileResponse(WEB / "rangers.html", headers={"Cache-Control": "no-cache"})


@router.get("/rangers/sw.js", include_in_schema=False)
def rangers_sw() -> FileResponse:
    return FileResponse(
        WEB / "rangers-sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/rangers"},
    )


@router.get("/rangers/manifest.webmanifest", include_in_schema=False)
def rangers_manifest() -> FileResponse:
    return FileResponse(WEB / "rangers.webmanifest", media_type="application/manifest+json")


# after sw.js and the manifest: this pattern would shadow them
RANGER_ASSETS = {"rangers.js": "text/javascript", "rangers.css": "text/css"}


@router.get("/rangers/{name}", include_in_schema=False)
def rangers_asset(name: str) -> FileResponse:
    if name not in RANGER_ASSETS:
        raise HTTPException(404)
    return FileResponse(
        WEB / name, media_type=RANGER_ASSETS[name], headers={"Cache-Control": "no-cache"}
    )
