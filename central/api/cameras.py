from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from central.api.deps import SessionDep, UserDep
from central.api.schemas import CameraOut, EdgeOut
from central.storage.db import as_utc
from central.storage.models import CameraRow, EdgeRow

router = APIRouter(prefix="/api/v1", tags=["cameras", "edges"])


@router.get(
    "/cameras",
    response_model=list[CameraOut],
    summary="Cameras with their latest status; offline when their edge is offline",
)
def list_cameras(session: SessionDep, _user: UserDep) -> list[CameraOut]:
    edges = {(e.site, e.edge_id): e.state for e in session.scalars(select(EdgeRow))}
    out = []
    for c in session.scalars(select(CameraRow).order_by(CameraRow.site, CameraRow.camera_id)):
        state = c.state if edges.get((c.site, c.edge_id), "online") == "online" else "offline"
        out.append(
            CameraOut(
                site=c.site,
                edge_id=c.edge_id,
                camera_id=c.camera_id,
                state=state,  # type: ignore[arg-type]
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
            )
        )
    return out


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
