"""Cameras (paged: a fleet can be large, and anyone publishing can make it so) and edges."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select

from central.api.deps import MAX_OFFSET, SessionDep, UserDep
from central.api.schemas import CameraOut, EdgeOut
from central.storage.camera_config_models import CameraConfigRow
from central.storage.db import as_utc
from central.storage.models import CameraRow, EdgeRow

router = APIRouter(prefix="/api/v1", tags=["cameras", "edges"])

State = Literal["online", "degraded", "offline"]
_SAME_EDGE = and_(EdgeRow.site == CameraRow.site, EdgeRow.edge_id == CameraRow.edge_id)
_EDGE_OFFLINE = EdgeRow.state == "offline"
# the hub's configuration of the camera, when it is for the edge the status came from
_WANTED = and_(
    CameraConfigRow.camera_id == CameraRow.camera_id,
    CameraConfigRow.site == CameraRow.site,
    CameraConfigRow.edge_id == CameraRow.edge_id,
)


class CameraPage(BaseModel):
    items: list[CameraOut]
    total: int
    limit: int
    offset: int
    states: dict[str, int]  # the whole fleet (not only this page) by state


def _out(c: CameraRow, edge_state: str | None, wanted: str | None = None) -> CameraOut:
    return CameraOut(
        site=c.site,
        edge_id=c.edge_id,
        camera_id=c.camera_id,
        state=c.state if edge_state != "offline" else "offline",  # type: ignore[arg-type]
        reported_state=c.state,
        fps=c.fps,
        last_frame_time=as_utc(c.last_frame_time),
        reconnects=c.reconnects,
        error=c.error,
        lat=c.lat,
        lon=c.lon,
        updated_at=as_utc(c.updated_at),  # type: ignore[arg-type]
        pipeline=c.pipeline,  # type: ignore[arg-type]
        degraded_reason=c.degraded_reason,
        config_version=c.config_version,
        config_error=c.config_error,
        config_version_wanted=wanted,
    )


@router.get(
    "/cameras",
    response_model=CameraPage,
    summary="Cameras with their latest status; offline when their edge is offline",
)
def list_cameras(
    session: SessionDep,
    _user: UserDep,
    state: State | None = Query(None, description="effective state (the edge's LWT counts)"),
    edge: str | None = Query(None, description="edge id"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> CameraPage:
    query = (
        select(CameraRow, EdgeRow.state, CameraConfigRow.config_version)
        .select_from(CameraRow)
        .outerjoin(EdgeRow, _SAME_EDGE)
        .outerjoin(CameraConfigRow, _WANTED)
    )
    if edge:
        query = query.where(CameraRow.edge_id == edge)
    if state == "offline":
        query = query.where(or_(CameraRow.state == "offline", _EDGE_OFFLINE))
    elif state:
        query = query.where(CameraRow.state == state, or_(EdgeRow.state.is_(None), ~_EDGE_OFFLINE))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    keys = (CameraRow.site, CameraRow.camera_id, CameraRow.edge_id)
    rows = session.execute(query.order_by(*keys).limit(limit).offset(offset)).all()
    states: dict[str, int] = {"online": 0, "degraded": 0, "offline": 0}
    by_state = (
        select(CameraRow.state, EdgeRow.state, func.count())
        .select_from(CameraRow)
        .outerjoin(EdgeRow, _SAME_EDGE)
        .group_by(CameraRow.state, EdgeRow.state)
    )
    if edge:
        by_state = by_state.where(CameraRow.edge_id == edge)
    for cam_state, edge_state, n in session.execute(by_state):
        effective = "offline" if edge_state == "offline" else cam_state
        states[effective] = states.get(effective, 0) + n
    return CameraPage(
        items=[_out(c, edge_state, wanted) for c, edge_state, wanted in rows],
        total=total,
        limit=limit,
        offset=offset,
        states=states,
    )


@router.get("/edges", response_model=list[EdgeOut])
def list_edges(session: SessionDep, _user: UserDep) -> list[EdgeOut]:
    counts = dict(
        session.execute(select(CameraRow.edge_id, func.count()).group_by(CameraRow.edge_id)).all()
    )
    return [
        EdgeOut(
            site=e.site,
            edge_id=e.edge_id,
            state=e.state,  # type: ignore[arg-type]
            updated_at=as_utc(e.updated_at),  # type: ignore[arg-type]
            cameras=counts.get(e.edge_id, 0),
        )
        for e in session.scalars(select(EdgeRow).order_by(EdgeRow.site, EdgeRow.edge_id))
    ]
