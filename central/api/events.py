"""Alerts (events): list, detail with timeline and audit, actions, evidence, live stream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.api import deps
from central.api.deps import MAX_OFFSET, ActorDep, ReviewerDep, SessionDep, UserDep
from central.api.schemas import EventDetail, EventOut, EventPage
from central.auth import RANGER_KINDS, User
from central.config import HubConfig
from central.storage.db import as_utc
from central.storage.models import (
    EventAuditRow,
    EventRow,
    EventUpdateRow,
    EvidenceFileRow,
    SnapshotRow,
)

router = APIRouter(tags=["events"])
log = logging.getLogger(__name__)

Status = Literal["new", "acknowledged", "resolved", "false_alarm"]
FINAL = ("resolved", "false_alarm")
# Attributes that are evidence (plates, clips): only for roles that may see evidence.
EVIDENCE_PREFIXES = ("plate", "clip", "evidence")
KEEPALIVE_S = 15.0


def to_out(
    row: EventRow,
    has_snapshot: bool,
    cfg: HubConfig,
    user: User | None,
    files: list[str] | None = None,
) -> EventOut:
    evidence = user is None or user.can("evidence")
    attrs = dict(row.attributes or {})
    if not evidence:
        attrs = {k: v for k, v in attrs.items() if not k.startswith(EVIDENCE_PREFIXES)}
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
        snapshot_url=(
            f"/api/v1/events/{row.id}/snapshot.jpg" if has_snapshot and evidence else None
        ),
        attributes=attrs,
        urgent=cfg.alerts.is_urgent(row.kind, row.label),
        status=(row.status or "new"),  # type: ignore[arg-type]
        status_by=row.status_by,
        status_at=as_utc(row.status_at),
        review=row.review,  # type: ignore[arg-type]
        reviewer=row.reviewer,
        review_reason=row.review_reason,
        reviewed_at=as_utc(row.reviewed_at),
        evidence=evidence,
        evidence_files=(
            {n: f"/api/v1/events/{row.id}/evidence/{n}" for n in sorted(files or [])}
            if evidence
            else {}
        ),
    )


def _own(model: Any) -> Any:
    """Join condition: rows of ``model`` that came from their event's own (site, edge)."""
    return (
        (model.event_id == EventRow.id)
        & (model.site == EventRow.site)
        & (model.edge_id == EventRow.edge_id)
    )


def _files(session: Session, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if ids:
        q = (
            select(EvidenceFileRow.event_id, EvidenceFileRow.name)
            .join(EventRow, _own(EvidenceFileRow))
            .where(EvidenceFileRow.event_id.in_(ids))
        )
        for eid, name in session.execute(q):
            out.setdefault(eid, []).append(name)
    return out


def _visible(query: Any, user: User) -> Any:
    if user.role == "ranger":
        return query.where(EventRow.kind.in_(sorted(RANGER_KINDS)))
    return query


def _get(session: Session, event_id: str, user: User, lock: bool = False) -> EventRow:
    row = session.get(EventRow, event_id, with_for_update=lock)
    if row is None or not user.may_see_kind(row.kind):
        raise HTTPException(404, "no such event")
    return row


def _has_snapshots(session: Session, ids: list[str]) -> set[str]:
    """Events whose announced snapshot arrived, from their own edge."""
    if not ids:
        return set()
    q = (
        select(SnapshotRow.event_id)
        .join(EventRow, _own(SnapshotRow) & (SnapshotRow.sha256 == EventRow.snapshot_sha256))
        .where(SnapshotRow.event_id.in_(ids))
    )
    return set(session.scalars(q))


def snapshot_of(session: Session, row: EventRow) -> SnapshotRow | None:
    """The JPEG the event announced (its SHA-256), from the event's own edge; else None."""
    if not row.snapshot_sha256:
        return None
    snap = session.get(SnapshotRow, (row.id, row.snapshot_sha256))
    if snap is None or (snap.site, snap.edge_id) != (row.site, row.edge_id):
        return None
    return snap


@router.get("/api/v1/events", response_model=EventPage, summary="List alerts, newest first")
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
    query = _visible(select(EventRow), user)
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
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    col = EventRow.start_time if sort == "start_time" else EventRow.first_received_at
    keys = (col.asc(), EventRow.id.asc()) if order == "asc" else (col.desc(), EventRow.id.desc())
    rows = session.scalars(query.order_by(*keys).limit(limit).offset(offset)).all()
    snaps = _has_snapshots(session, [r.id for r in rows])
    files = _files(session, [r.id for r in rows])
    cfg = request.app.state.cfg
    return EventPage(
        items=[to_out(r, r.id in snaps, cfg, user, files.get(r.id)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _detail(session: Session, row: EventRow, cfg: HubConfig, user: User) -> EventDetail:
    base = to_out(
        row,
        snapshot_of(session, row) is not None,
        cfg,
        user,
        _files(session, [row.id]).get(row.id),
    )
    updates = session.scalars(
        select(EventUpdateRow).where(EventUpdateRow.event_id == row.id).order_by(EventUpdateRow.seq)
    )
    audit = session.scalars(
        select(EventAuditRow).where(EventAuditRow.event_id == row.id).order_by(EventAuditRow.id)
    )
    return EventDetail(
        **base.model_dump(),
        timeline=[
            {
                "seq": u.seq,
                "type": u.type,
                "frame_time": as_utc(u.frame_time),
                "score": u.score,
                "received_at": as_utc(u.received_at),
            }
            for u in updates
        ],
        audit=[
            {"time": as_utc(a.time), "actor": a.actor, "action": a.action, "note": a.note}
            for a in audit
        ],
    )


@router.get(
    "/api/v1/events/{event_id}",
    response_model=EventDetail,
    summary="One alert with its timeline of updates and its audit trail",
)
def get_event(event_id: str, request: Request, session: SessionDep, user: UserDep) -> EventDetail:
    return _detail(session, _get(session, event_id, user), request.app.state.cfg, user)


@router.get(
    "/api/v1/events/{event_id}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        403: {"description": "the role may not see evidence"},
        404: {"description": "no snapshot"},
    },
)
def get_snapshot(event_id: str, session: SessionDep, user: UserDep) -> Response:
    if not user.can("evidence"):
        raise HTTPException(403, f"the {user.role} role may not see evidence")
    snap = snapshot_of(session, _get(session, event_id, user))
    if snap is None:
        raise HTTPException(404, "no snapshot for this event")
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={"ETag": f'"{snap.sha256}"', "Cache-Control": "private, max-age=60"},
    )


class EvidenceFileOut(BaseModel):
    name: str
    content_type: str
    bytes: int
    sha256: str
    url: str


class EvidenceOut(BaseModel):
    event_id: str
    manifest_sha256: str | None = Field(description="as published with the event")
    verified: bool = Field(description="every file matches the manifest, and it the event")
    problems: list[str]
    files: list[EvidenceFileOut]


def _verify(files: dict[str, EvidenceFileRow], published: str | None) -> list[str]:
    manifest = files.get("manifest.json")
    if manifest is None:
        return ["no manifest.json (yet)"]
    problems = []
    if published is None:
        problems.append("the event carries no manifest hash to check against")
    elif manifest.sha256 != published:
        problems.append("manifest.json differs from the one published with the event")
    try:
        listed = json.loads(manifest.data)["files"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return [*problems, "manifest.json is not a manifest"]
    # An edge wrote it: ``files`` must be an object of objects, or nothing is verified.
    if not isinstance(listed, dict) or not all(isinstance(m, dict) for m in listed.values()):
        return [*problems, "manifest.json is not a manifest"]
    for name, meta in listed.items():
        f = files.get(name)
        if f is None:
            problems.append(f"{name}: not received")
        elif f.sha256 != meta.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems


@router.get(
    "/api/v1/events/{event_id}/evidence",
    response_model=EvidenceOut,
    summary="A violation's evidence package, checked against its manifest",
)
def evidence(event_id: str, session: SessionDep, user: UserDep) -> EvidenceOut:
    if not user.can("evidence"):
        raise HTTPException(403, f"the {user.role} role may not see evidence")
    row = _get(session, event_id, user)
    rows = {
        f.name: f
        for f in session.scalars(
            select(EvidenceFileRow).where(
                EvidenceFileRow.event_id == row.id,
                EvidenceFileRow.site == row.site,
                EvidenceFileRow.edge_id == row.edge_id,
            )
        )
    }
    published = (row.attributes or {}).get("manifest_sha256")
    problems = _verify(rows, published if isinstance(published, str) else None)
    return EvidenceOut(
        event_id=row.id,
        manifest_sha256=published if isinstance(published, str) else None,
        verified=not problems,
        problems=problems,
        files=[
            EvidenceFileOut(
                name=f.name,
                content_type=f.content_type,
                bytes=len(f.data),
                sha256=f.sha256,
                url=f"/api/v1/events/{row.id}/evidence/{f.name}",
            )
            for f in sorted(rows.values(), key=lambda f: f.name)
        ],
    )


@router.get(
    "/api/v1/events/{event_id}/evidence/{name}",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}, "application/json": {}}}},
    summary="One evidence file, byte for byte as the edge sent it",
)
def evidence_file(event_id: str, name: str, session: SessionDep, user: UserDep) -> Response:
    if not user.can("evidence"):
        raise HTTPException(403, f"the {user.role} role may not see evidence")
    row = _get(session, event_id, user)
    f = session.get(EvidenceFileRow, (row.id, row.site, row.edge_id, name))
    if f is None:
        raise HTTPException(404, "no such evidence file")
    return Response(
        f.data,
        media_type=f.content_type,
        headers={
            "ETag": f'"{f.sha256}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-SHA256": f.sha256,
        },
    )


class ActionIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


def _act(
    request: Request, session: Session, event_id: str, user: User, status: Status, note: str | None
) -> EventDetail:
    row = _get(session, event_id, user, lock=True)
    current = row.status or "new"
    if current in FINAL:
        raise HTTPException(409, f"already {current} by {row.status_by}")
    if current == status:
        raise HTTPException(409, f"already {current} by {row.status_by}")
    now = datetime.now(UTC)
    row.status, row.status_by, row.status_at = status, user.username, now
    session.add(
        EventAuditRow(event_id=row.id, time=now, actor=user.username, action=status, note=note)
    )
    session.commit()
    request.app.state.live.event_changed(row.id)
    return _detail(session, row, request.app.state.cfg, user)


@router.post(
    "/api/v1/events/{event_id}/ack",
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
    return _act(request, session, event_id, user, "acknowledged", (body or ActionIn()).note)


@router.post("/api/v1/events/{event_id}/resolve", response_model=EventDetail)
def resolve(
    event_id: str,
    request: Request,
    session: SessionDep,
    user: ActorDep,
    body: ActionIn | None = None,
) -> EventDetail:
    return _act(request, session, event_id, user, "resolved", (body or ActionIn()).note)


@router.post("/api/v1/events/{event_id}/false_alarm", response_model=EventDetail)
def false_alarm(
    event_id: str,
    request: Request,
    session: SessionDep,
    user: ActorDep,
    body: ActionIn | None = None,
) -> EventDetail:
    return _act(request, session, event_id, user, "false_alarm", (body or ActionIn()).note)


# -- traffic review queue -----------------------------------------------------------------


class ReviewIn(BaseModel):
    decision: Literal["confirmed", "rejected"]
    reason: str | None = Field(None, max_length=2000, description="required to reject")


@router.get(
    "/api/v1/reviews",
    response_model=EventPage,
    tags=["reviews"],
    summary="Traffic violations by review state, oldest first (the queue)",
)
def list_reviews(
    request: Request,
    session: SessionDep,
    user: ReviewerDep,
    state: Literal["pending", "confirmed", "rejected"] = "pending",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> EventPage:
    query = select(EventRow).where(EventRow.review == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(EventRow.start_time.asc(), EventRow.id).limit(limit).offset(offset)
    ).all()
    snaps = _has_snapshots(session, [r.id for r in rows])
    files = _files(session, [r.id for r in rows])
    cfg = request.app.state.cfg
    return EventPage(
        items=[to_out(r, r.id in snaps, cfg, user, files.get(r.id)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/api/v1/reviews/{event_id}",
    response_model=EventDetail,
    tags=["reviews"],
    summary="Confirm or reject a pending violation",
)
def decide(
    event_id: str, body: ReviewIn, request: Request, session: SessionDep, user: ReviewerDep
) -> EventDetail:
    row = _get(session, event_id, user, lock=True)
    if row.review is None:
        raise HTTPException(404, "this event is not a traffic violation")
    if row.review != "pending":
        raise HTTPException(409, f"already {row.review} by {row.reviewer}")
    reason = (body.reason or "").strip() or None
    if body.decision == "rejected" and reason is None:
        raise HTTPException(422, "a rejection needs a reason")
    now = datetime.now(UTC)
    row.review, row.reviewer, row.review_reason, row.reviewed_at = (
        body.decision,
        user.username,
        reason,
        now,
    )
    session.add(
        EventAuditRow(
            event_id=row.id, time=now, actor=user.username, action=body.decision, note=reason
        )
    )
    session.commit()
    request.app.state.live.event_changed(row.id)
    return _detail(session, row, request.app.state.cfg, user)


# -- live stream --------------------------------------------------------------------------


def _sse(event: str, data: dict[str, Any], ident: int | None = None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def load_doc(sessions: Any, cfg: HubConfig, event_id: str) -> dict[str, Any] | None:
    """The full document of an alert (all evidence), for the live bus to fan out."""
    with sessions() as session:
        row = session.get(EventRow, event_id)
        if row is None:
            return None
        has = snapshot_of(session, row) is not None
        files = _files(session, [event_id]).get(event_id)
        return to_out(row, has, cfg, None, files).model_dump(mode="json")


def redact(doc: dict[str, Any], user: User) -> dict[str, Any] | None:
    """What of a full alert document this user may see (None: not even that it exists)."""
    if not user.may_see_kind(doc["kind"]):
        return None
    if user.can("evidence"):
        return doc
    attrs = {k: v for k, v in doc["attributes"].items() if not k.startswith(EVIDENCE_PREFIXES)}
    return {
        **doc,
        "snapshot_url": None,
        "attributes": attrs,
        "evidence": False,
        "evidence_files": {},
    }


@router.get(
    "/api/v1/alerts/stream",
    summary="Server-Sent Events: every new or changed alert the caller may see",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(request: Request, user: UserDep) -> StreamingResponse:
    app = request.app
    cred = deps.credential(request)
    assert cred is not None  # UserDep resolved one
    recheck_s = app.state.cfg.auth.stream_recheck_s
    sub = app.state.live.subscribe()

    async def still_valid() -> str | None:
        """None while the stream may go on; else why it ends. A stream outlives no logout,
        disabled account, new password or expiry, and shows no other role's view."""
        try:
            now = await run_in_threadpool(deps.recheck, app, cred)
        except Exception as exc:  # the database is away: fail closed, the client reconnects
            log.warning("live stream re-check failed", extra={"error": type(exc).__name__})
            return "recheck_failed"
        if now is None:
            return "signed_out"
        if now.id != user.id or now.role != user.role:
            return "role_changed"
        return None

    async def gen() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        n = 0
        next_check = loop.time() + recheck_s
        last_out = loop.time()
        try:
            yield b"retry: 2000\n\n" + _sse("hello", {"user": user.username})
            while True:
                wait = max(0.0, min(next_check, last_out + KEEPALIVE_S) - loop.time())
                try:
                    item: dict[str, Any] | None = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    item = None
                now = loop.time()
                if now >= next_check or (item is not None and item.get("type") == "sessions"):
                    reason = await still_valid()
                    if reason is not None:
                        log.info(
                            "live stream ended",
                            extra={"user": user.username, "reason": reason},
                        )
                        yield _sse("ended", {"reason": reason})
                        return
                    next_check = loop.time() + recheck_s
                if item is None or item.get("type") == "sessions":
                    if now - last_out >= KEEPALIVE_S:
                        if await request.is_disconnected():
                            return
                        yield b": keepalive\n\n"
                        last_out = now
                    continue
                if item.get("type") == "resync":
                    yield _sse("resync", {})
                    last_out = loop.time()
                    continue
                doc = item.get("doc")
                if doc is None:
                    doc = await run_in_threadpool(
                        load_doc, app.state.sessions, app.state.cfg, item["id"]
                    )
                doc = redact(doc, user) if doc is not None else None
                if doc is not None:
                    n += 1
                    yield _sse("alert", doc, n)
                    last_out = loop.time()
        finally:
            app.state.live.unsubscribe(sub)

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
