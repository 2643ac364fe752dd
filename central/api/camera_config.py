"""Cameras' configurations at the hub: read, change, history, templates, CSV import, and
the latest frame and preview the set-up page draws on (``central.services.camera_config``
does the work and the delivery to the edges).

Who: the ``setup`` permission (admins and operators) reads and changes configurations:
they name the cameras' addresses and which edge runs each. The frame and the preview are
pictures of the scene, for roles that may see video (``evidence``). Writes go through the
same session checks as every other mutating route (a browser session echoes its CSRF
token; ``central.api.deps``). A URL's password is never sent back: it reads ``***``, and
a URL sent with ``***`` keeps the stored one.

Invalid configurations are answered 422 with ``detail`` a list of ``{loc, msg}``, ``loc``
the key path inside the camera's configuration (``analytics.0.zone``); CSV rows add
``row`` (the line in the file) and ``camera_id``, templates ``camera_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from central.api.deps import EvidenceDep, SessionDep, require
from central.auth import User
from central.services.camera_config import (
    MAX_CSV_BYTES,
    CameraConfigError,
    CameraConfigService,
    Saved,
)
from central.storage.camera_config_models import (
    CameraConfigHistoryRow,
    CameraConfigRow,
    CameraFrameRow,
)
from central.storage.db import as_utc
from central.storage.models import CameraRow
from edgewatch.contract import ID_PATTERN

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

SetupDep = Annotated[User, Depends(require("setup"))]
CameraId = Annotated[str, Path(pattern=ID_PATTERN, description="the camera's id")]
Comment = Annotated[str | None, Field(max_length=500, pattern=r"^[^\x00]*$")]
CSV_TYPES = ("text/csv", "text/plain", "application/csv")


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(pattern=ID_PATTERN)
    edge_id: str = Field(pattern=ID_PATTERN, description="the edge that runs it")
    config: dict[str, Any] = Field(
        description="edge.config.CameraConfig; a URL password of *** keeps the stored one"
    )
    comment: Comment = None


class SavedOut(BaseModel):
    camera_id: str
    version: int = Field(description="the camera's version number (1, 2, ...)")
    config_version: str = Field(description="config_hash of what its edge is sent")
    changed: bool = Field(description="false when the configuration was already this one")


class ConfigOut(BaseModel):
    camera_id: str
    site: str
    edge_id: str
    version: int
    config_version: str = Field(description="the hub's (wanted) configuration")
    config: dict[str, Any] = Field(description="the URL's password shown as ***")
    updated_at: datetime
    updated_by: str
    running: str | None = Field(description="the config_version its edge reports it runs")
    config_error: str | None = Field(description="why its edge refused the wanted one")
    applied: bool = Field(description="running == config_version")
    edge_version: int | None = Field(description="the version of its edge's message")
    published: bool = Field(description="this hub has published that version to the broker")


class ConfigSummary(BaseModel):
    camera_id: str
    site: str
    edge_id: str
    version: int
    config_version: str
    running: str | None
    config_error: str | None
    updated_at: datetime
    updated_by: str


class HistoryOut(BaseModel):
    version: int
    config_version: str
    site: str
    edge_id: str
    config: dict[str, Any] | None = Field(description="None: the camera was deleted")
    author: str
    created_at: datetime
    comment: str | None
    changes: list[str] = Field(description="what changed, a few words per item")


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        min_length=1, max_length=1000, description="cameras to give this camera's analytics"
    )
    comment: Comment = None


class SavedList(BaseModel):
    cameras: list[SavedOut]


class ImportOut(BaseModel):
    cameras: list[SavedOut]
    created: list[str]
    updated: list[str]
    unchanged: list[str]


def _service(request: Request) -> CameraConfigService:
    service = getattr(request.app.state, "camera_configs", None)
    if service is None:
        raise HTTPException(503, "camera configurations are not enabled on this hub")
    return service  # type: ignore[no-any-return]


def _refused(exc: CameraConfigError) -> HTTPException:
    if exc.status == 422:
        return HTTPException(422, exc.errors)
    return HTTPException(exc.status, str(exc))


def _saved(s: Saved) -> SavedOut:
    return SavedOut(
        camera_id=s.camera_id, version=s.version, config_version=s.config_version, changed=s.changed
    )


def _running(session: Any, row: CameraConfigRow) -> CameraRow | None:
    return session.get(CameraRow, (row.site, row.edge_id, row.camera_id))  # type: ignore[no-any-return]


@router.get(
    "/configs",
    response_model=list[ConfigSummary],
    summary="Every camera configured at the hub, with what its edge runs",
)
def list_configs(request: Request, session: SessionDep, _user: SetupDep) -> list[ConfigSummary]:
    service = _service(request)
    status = {
        (c.site, c.edge_id, c.camera_id): c
        for c in session.scalars(select(CameraRow).where(CameraRow.config_version.is_not(None)))
    }
    out = []
    for row in service.configs(session):
        cam = status.get((row.site, row.edge_id, row.camera_id))
        out.append(
            ConfigSummary(
                camera_id=row.camera_id,
                site=row.site,
                edge_id=row.edge_id,
                version=row.version,
                config_version=row.config_version,
                running=cam.config_version if cam else None,
                config_error=cam.config_error if cam else None,
                updated_at=as_utc(row.updated_at),  # type: ignore[arg-type]
                updated_by=row.updated_by,
            )
        )
    return out


@router.get(
    "/{camera_id}/config",
    response_model=ConfigOut,
    summary="A camera's configuration (its URL's password as ***) and what its edge runs",
)
def get_config(
    request: Request, camera_id: CameraId, session: SessionDep, _user: SetupDep
) -> ConfigOut:
    service = _service(request)
    row = service.get(session, camera_id)
    if row is None:
        raise HTTPException(404, f"no configuration for camera {camera_id!r} at the hub")
    cam = _running(session, row)
    edge_version = service.edge_version(session, row.site, row.edge_id)
    running = cam.config_version if cam else None
    return ConfigOut(
        camera_id=row.camera_id,
        site=row.site,
        edge_id=row.edge_id,
        version=row.version,
        config_version=row.config_version,
        config=row.config,
        updated_at=as_utc(row.updated_at),  # type: ignore[arg-type]
        updated_by=row.updated_by,
        running=running,
        config_error=cam.config_error if cam else None,
        applied=running == row.config_version,
        edge_version=edge_version,
        published=edge_version is not None
        and service.sent().get((row.site, row.edge_id)) == edge_version,
    )


@router.put(
    "/{camera_id}/config",
    response_model=SavedOut,
    summary="Set a camera's configuration; a new site/edge_id moves it to that edge",
    responses={422: {"description": "detail: [{loc, msg}], loc a key path in config"}},
)
def put_config(request: Request, camera_id: CameraId, body: ConfigIn, user: SetupDep) -> SavedOut:
    try:
        saved = _service(request).put(
            camera_id, body.site, body.edge_id, body.config, user.username, body.comment
        )
    except CameraConfigError as exc:
        raise _refused(exc) from None
    return _saved(saved)


@router.delete(
    "/{camera_id}/config",
    status_code=204,
    summary="Take a camera off its edge (its history stays)",
)
def delete_config(request: Request, camera_id: CameraId, user: SetupDep) -> Response:
    try:
        _service(request).delete(camera_id, user.username)
    except CameraConfigError as exc:
        raise _refused(exc) from None
    return Response(status_code=204)


@router.get(
    "/{camera_id}/config/history",
    response_model=list[HistoryOut],
    summary="Every version of a camera's configuration, newest first",
)
def config_history(
    request: Request,
    camera_id: CameraId,
    session: SessionDep,
    _user: SetupDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[HistoryOut]:
    rows: list[CameraConfigHistoryRow] = _service(request).history(
        session, camera_id, limit, offset
    )
    if not rows and offset == 0:
        raise HTTPException(404, f"no configuration history for camera {camera_id!r}")
    return [
        HistoryOut(
            version=h.version,
            config_version=h.config_version,
            site=h.site,
            edge_id=h.edge_id,
            config=h.config,
            author=h.author,
            created_at=as_utc(h.created_at),  # type: ignore[arg-type]
            comment=h.comment,
            changes=list(h.changes or []),
        )
        for h in rows
    ]


@router.post(
    "/{camera_id}/config/apply",
    response_model=SavedList,
    summary="Give other cameras this camera's analytics (all of them or none)",
)
def apply_template(
    request: Request, camera_id: CameraId, body: ApplyIn, user: SetupDep
) -> SavedList:
    try:
        saved = _service(request).apply_template(
            camera_id, body.cameras, user.username, body.comment
        )
    except CameraConfigError as exc:
        raise _refused(exc) from None
    return SavedList(cameras=[_saved(s) for s in saved])


@router.post(
    "/import",
    response_model=ImportOut,
    summary="Create or change cameras from CSV: id,url,site,edge,lat,lon,bearing,fov,template",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={422: {"description": "detail: [{row, camera_id, loc, msg}]; nothing imported"}},
)
async def import_cameras(request: Request, user: SetupDep) -> ImportOut:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        raise HTTPException(415, "send the file as text/csv")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES} bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, [{"row": None, "loc": "", "msg": "not UTF-8"}]) from None
    service = _service(request)
    try:
        saved: list[Saved] = await run_in_threadpool(service.import_csv, text, user.username)
    except CameraConfigError as exc:
        raise _refused(exc) from None
    return ImportOut(
        cameras=[_saved(s) for s in saved],
        created=[s.camera_id for s in saved if s.created],
        updated=[s.camera_id for s in saved if s.changed and not s.created],
        unchanged=[s.camera_id for s in saved if not s.changed],
    )


def _latest(session: Any, camera_id: str, what: str) -> CameraFrameRow | None:
    """The frame row of the edge the hub configured the camera on when it has ``what``,
    else the newest of any edge that reported it (a camera that just moved)."""
    cfg = session.get(CameraConfigRow, camera_id)
    if cfg is not None:
        row = session.get(CameraFrameRow, (cfg.site, cfg.edge_id, camera_id))
        if row is not None and getattr(row, what) is not None:
            return row  # type: ignore[no-any-return]
    at = CameraFrameRow.received_at if what == "jpeg" else CameraFrameRow.preview_at
    q = (
        select(CameraFrameRow)
        .where(CameraFrameRow.camera_id == camera_id, at.is_not(None))
        .order_by(at.desc())
        .limit(1)
    )
    return session.scalars(q).first()  # type: ignore[no-any-return]


@router.get(
    "/{camera_id}/frame.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 304: {"description": "not modified"}},
    summary="The camera's latest frame, as its edge sent it",
)
def frame(
    request: Request, camera_id: CameraId, session: SessionDep, _user: EvidenceDep
) -> Response:
    row = _latest(session, camera_id, "jpeg")
    if row is None or row.jpeg is None:
        raise HTTPException(404, f"no frame of camera {camera_id!r} yet")
    etag = f'"{row.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    received = as_utc(row.received_at)
    if received is not None:
        headers["X-Received-At"] = received.isoformat()
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(row.jpeg, media_type="image/jpeg", headers=headers)


@router.get(
    "/{camera_id}/preview",
    summary="What the camera's analytics see now (contract.CameraPreview), beside its frame",
    responses={200: {"description": "the CameraPreview JSON as the edge sent it"}},
)
def preview(camera_id: CameraId, session: SessionDep, _user: EvidenceDep) -> JSONResponse:
    row = _latest(session, camera_id, "preview")
    if row is None or row.preview is None:
        raise HTTPException(404, f"no preview of camera {camera_id!r} yet")
    return JSONResponse(row.preview, headers={"Cache-Control": "private, no-cache"})
