"""Alerts (events) as the API serves them: the serializer, who sees what, the queries, and
the operators' status changes and review decisions.

Several resources share these: the alert list and detail, the evidence routes (which look
an alert up with the same visibility rules), the review queue and the live stream (which
serializes alerts the same way, and strips evidence for the same roles). A status change
(acknowledge, resolve, false alarm) is one transition with one set of rules, whichever
route asks for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.api.schemas import EventDetail, EventOut, EventPage
from central.auth import RANGER_KINDS, User
from central.config import HubConfig
from central.live import LiveBus
from central.storage.db import as_utc
from central.storage.models import (
    EventAuditRow,
    EventRow,
    EventUpdateRow,
    EvidenceFileRow,
    SnapshotRow,
)

Status = Literal["new", "acknowledged", "resolved", "false_alarm"]
FINAL = ("resolved", "false_alarm")
# Attributes that are evidence (plates, clips): only for roles that may see evidence.
EVIDENCE_PREFIXES = ("plate", "clip", "evidence")


class AlertError(Exception):
    """A request about an alert the hub refuses; ``status`` is the HTTP answer (403, 404,
    409, 422) and the message its ``detail``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def without_evidence(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes a role that may not see evidence gets (no plates, no clips)."""
    return {k: v for k, v in attrs.items() if not k.startswith(EVIDENCE_PREFIXES)}


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
        attrs = without_evidence(attrs)
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


# -- queries ------------------------------------------------------------------------------


def _own(model: Any) -> Any:
    """Join condition: rows of ``model`` that came from their event's own (site, edge)."""
    return (
        (model.event_id == EventRow.id)
        & (model.site == EventRow.site)
        & (model.edge_id == EventRow.edge_id)
    )


def evidence_files(session: Session, ids: list[str]) -> dict[str, list[str]]:
    """The names of the evidence files of each event, from its own edge."""
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


def visible(query: Any, user: User) -> Any:
    """``query`` (of events) narrowed to the kinds the user's role may see."""
    if user.role == "ranger":
        return query.where(EventRow.kind.in_(sorted(RANGER_KINDS)))
    return query


def get_visible(session: Session, event_id: str, user: User, lock: bool = False) -> EventRow:
    """The event, if it exists and the user may see its kind (else 404, the same answer)."""
    row = session.get(EventRow, event_id, with_for_update=lock)
    if row is None or not user.may_see_kind(row.kind):
        raise AlertError(404, "no such event")
    return row


def has_snapshots(session: Session, ids: list[str]) -> set[str]:
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


def page(
    session: Session,
    query: Any,
    keys: tuple[Any, ...],
    cfg: HubConfig,
    user: User,
    limit: int,
    offset: int,
) -> EventPage:
    """One page of the events ``query`` selects, in the order of ``keys``, with the total."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*keys).limit(limit).offset(offset)).all()
    snaps = has_snapshots(session, [r.id for r in rows])
    files = evidence_files(session, [r.id for r in rows])
    return EventPage(
        items=[to_out(r, r.id in snaps, cfg, user, files.get(r.id)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def detail(session: Session, row: EventRow, cfg: HubConfig, user: User) -> EventDetail:
    """The alert with its timeline of updates and its audit trail."""
    base = to_out(
        row,
        snapshot_of(session, row) is not None,
        cfg,
        user,
        evidence_files(session, [row.id]).get(row.id),
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


# -- changes ------------------------------------------------------------------------------


def set_status(
    session: Session,
    live: LiveBus,
    cfg: HubConfig,
    event_id: str,
    user: User,
    status: Status,
    note: str | None,
) -> EventDetail:
    """Acknowledge, resolve or mark a false alarm: once each, never after a final status
    (409), audited, committed and announced to the live streams."""
    row = get_visible(session, event_id, user, lock=True)
    current = row.status or "new"
    if current in FINAL:
        raise AlertError(409, f"already {current} by {row.status_by}")
    if current == status:
        raise AlertError(409, f"already {current} by {row.status_by}")
    now = datetime.now(UTC)
    row.status, row.status_by, row.status_at = status, user.username, now
    session.add(
        EventAuditRow(event_id=row.id, time=now, actor=user.username, action=status, note=note)
    )
    session.commit()
    live.event_changed(row.id)
    return detail(session, row, cfg, user)


def decide_review(
    session: Session,
    live: LiveBus,
    cfg: HubConfig,
    event_id: str,
    user: User,
    decision: Literal["confirmed", "rejected"],
    reason: str | None,
) -> EventDetail:
    """Confirm or reject a pending traffic violation (a rejection needs a reason)."""
    row = get_visible(session, event_id, user, lock=True)
    if row.review is None:
        raise AlertError(404, "this event is not a traffic violation")
    if row.review != "pending":
        raise AlertError(409, f"already {row.review} by {row.reviewer}")
    reason = (reason or "").strip() or None
    if decision == "rejected" and reason is None:
        raise AlertError(422, "a rejection needs a reason")
    now = datetime.now(UTC)
    row.review, row.reviewer, row.review_reason, row.reviewed_at = (
        decision,
        user.username,
        reason,
        now,
    )
    session.add(
        EventAuditRow(event_id=row.id, time=now, actor=user.username, action=decision, note=reason)
    )
    session.commit()
    live.event_changed(row.id)
    return detail(session, row, cfg, user)
