from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import func, select

from central.api.deps import SessionDep
from central.api.schemas import EventOut, EventPage
from central.storage.db import as_utc
from central.storage.models import EventRow, SnapshotRow

router = APIRouter(prefix="/api/v1/events", tags=["events"])


def to_out(row: EventRow, has_snapshot: bool) -> EventOut:
    return EventOut(
        id=row.id,
        kind=row.kind,
        analytic=row.analytic,
        label=row.label,
        state=row.state,  # type: ignore[arg-type]
        site=row.site,
        edge_id=row.edge_id,
        camera_id=row.camera_id,
        start_time=as_utc(row.start_time),  # type: ignore[arg-type]
        end_time=as_utc(row.end_time),
        updated_at=as_utc(row.updated_at),  # type: ignore[arg-type]
        received_at=as_utc(row.first_received_at),  # type: ignore[arg-type]
        score=row.score,
        box=row.box,
        zone=row.zone,
        lat=row.lat,
        lon=row.lon,
        messages=row.messages,
        snapshot_url=f"/api/v1/events/{row.id}/snapshot.jpg" if has_snapshot else None,
        attributes=row.attributes or {},
    )


@router.get("", response_model=EventPage, summary="List events, newest first")
def list_events(
    session: SessionDep,
    kind: str | None = None,
    camera: str | None = Query(None, description="camera id"),
    label: str | None = None,
    state: Literal["active", "ended"] | None = None,
    since: datetime | None = Query(None, description="events that started at or after this"),
    order: Literal["desc", "asc"] = "desc",
    sort: Literal["start_time", "received_at"] = "start_time",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> EventPage:
    query = select(EventRow)
    if kind:
        query = query.where(EventRow.kind == kind)
    if camera:
        query = query.where(EventRow.camera_id == camera)
    if label:
        query = query.where(EventRow.label == label)
    if state:
        query = query.where(EventRow.state == state)
    if since:
        query = query.where(EventRow.start_time >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    col = EventRow.start_time if sort == "start_time" else EventRow.first_received_at
    keys = (col.asc(), EventRow.id.asc()) if order == "asc" else (col.desc(), EventRow.id.desc())
    rows = session.scalars(query.order_by(*keys).limit(limit).offset(offset)).all()
    ids = [r.id for r in rows]
    with_snap = (
        set(session.scalars(select(SnapshotRow.event_id).where(SnapshotRow.event_id.in_(ids))))
        if ids
        else set()
    )
    return EventPage(
        items=[to_out(r, r.id in with_snap) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{event_id}", response_model=EventOut)
def get_event(event_id: str, session: SessionDep) -> EventOut:
    row = session.get(EventRow, event_id)
    if row is None:
        raise HTTPException(404, "no such event")
    has = session.get(SnapshotRow, event_id) is not None
    return to_out(row, has)


@router.get(
    "/{event_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no snapshot"}},
)
def get_snapshot(event_id: str, session: SessionDep) -> Response:
    snap = session.get(SnapshotRow, event_id)
    if snap is None:
        raise HTTPException(404, "no snapshot for this event")
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={"ETag": f'"{snap.sha256}"', "Cache-Control": "private, max-age=60"},
    )
