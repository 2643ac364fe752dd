"""Alerts (events): the list, one alert with its timeline and audit trail, its snapshot,
and the operators' actions on it (acknowledge, resolve, false alarm).

Routes only: the serializer, the visibility rules and the status transition are in
:mod:`central.services.alerts`, shared with the evidence, review and live routes
(:mod:`.evidence`, :mod:`.reviews`, :mod:`.live`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.api.deps import MAX_OFFSET, ActorDep, EvidenceDep, SessionDep, UserDep
from central.api.schemas import EventDetail, EventPage
from central.auth import User
from central.services import alerts
from central.services.alerts import Status, snapshot_of
from central.storage.models import EventRow

__all__ = ["router", "snapshot_of"]

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("", response_model=EventPage, summary="List alerts, newest first")
def list_events(
    request: Request,
    session: SessionDep,
    user: UserDep,
    kind: str | None = None,
    camera: str | None = Query(None, description="camera id"),
    label: str | None = None,
    state: Literal["active", "ended"] | None = None,
    status: Status | None = Query(None, description="what the operators did with it"),
    since: datetime | None = Query(None, description="events that started at or after this"),
    order: Literal["desc", "asc"] = "desc",
    sort: Literal["start_time", "received_at"] = "start_time",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> EventPage:
    query = alerts.visible(select(EventRow), user)
    if kind:
        query = query.where(EventRow.kind == kind)
    if camera:
        query = query.where(EventRow.camera_id == camera)
    if label:
        query = query.where(EventRow.label == label)
    if state:
        query = query.where(EventRow.state == state)
    if status:
        query = query.where(EventRow.status == status)
    if since:
        query = query.where(EventRow.start_time >= since)
    col = EventRow.start_time if sort == "start_time" else EventRow.first_received_at
    keys = (col.asc(), EventRow.id.asc()) if order == "asc" else (col.desc(), EventRow.id.desc())
    return alerts.page(session, query, keys, request.app.state.cfg, user, limit, offset)


@router.get(
    "/{event_id}",
    response_model=EventDetail,
    summary="One alert with its timeline of updates and its audit trail",
)
def get_event(event_id: str, request: Request, session: SessionDep, user: UserDep) -> EventDetail:
    row = alerts.get_visible(session, event_id, user)
    return alerts.detail(session, row, request.app.state.cfg, user)


@router.get(
    "/{event_id}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        403: {"description": "the role may not see evidence"},
        404: {"description": "no snapshot"},
    },
)
def get_snapshot(event_id: str, session: SessionDep, user: EvidenceDep) -> Response:
    snap = snapshot_of(session, alerts.get_visible(session, event_id, user))
    if snap is None:
        raise HTTPException(404, "no snapshot for this event")
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={"ETag": f'"{snap.sha256}"', "Cache-Control": "private, max-age=60"},
    )


# -- actions: one transition (alerts.set_status), three routes ------------------------------


class ActionIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


@router.post(
    "/{event_id}/ack",
    response_model=EventDetail,
    summary="Acknowledge an alert (operators; rangers for fire)",
)
def ack(
    event_id: str,
    request: Request,
    session: SessionDep,
    user: ActorDep,
    body: ActionIn | None = None,
) -> EventDetail:
    return _act(request, session, event_id, user, "acknowledged", body)


@router.post("/{event_id}/resolve", response_model=EventDetail)
def resolve(
    event_id: str,
    request: Request,
    session: SessionDep,
    user: ActorDep,
    body: ActionIn | None = None,
) -> EventDetail:
    return _act(request, session, event_id, user, "resolved", body)


@router.post("/{event_id}/false_alarm", response_model=EventDetail)
def false_alarm(
    event_id: str,
    request: Request,
    session: SessionDep,
    user: ActorDep,
    body: ActionIn | None = None,
) -> EventDetail:
    return _act(request, session, event_id, user, "false_alarm", body)


def _act(
    request: Request,
    session: Session,
    event_id: str,
    user: User,
    status: Status,
    body: ActionIn | None,
) -> EventDetail:
    state = request.app.state
    note = (body or ActionIn()).note
    return alerts.set_status(session, state.live, state.cfg, event_id, user, status, note)
