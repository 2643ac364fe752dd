"""Tables of the hub."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from central.storage.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    analytic: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)  # active / ended
    start_time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    frame_time: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[float] | None] = mapped_column(JSON)
    zone: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seq: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer, default=1)
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the operators did with it (the edge's active/ended is ``state``).
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    status_by: Mapped[str | None] = mapped_column(String(64))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Traffic violations only: the review queue.
    review: Mapped[str | None] = mapped_column(String(16), index=True)  # pending/confirmed/...
    reviewer: Mapped[str | None] = mapped_column(String(64))
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EventUpdateRow(Base):
    """Every message of an event as it arrived: the alert's timeline."""

    __tablename__ = "event_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(8))
    frame_time: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventAuditRow(Base):
    """Who did what to an alert, when, and why: never updated, never deleted."""

    __tablename__ = "event_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuthSessionRow(Base):
    """A browser session or a bearer token; only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # cookie / bearer
    csrf: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvidenceFileRow(Base):
    """One file of a violation's evidence package, as the edge sent it.

    Keyed by the publisher too: another edge's file under the same event id and name is
    another row, never served for this event (the API reads the event's own edge).
    """

    __tablename__ = "event_evidence"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SnapshotRow(Base):
    """An event's JPEG, by content: served only when it is the one the event announced
    (``EventRow.snapshot_sha256``) and came from the event's own (site, edge)."""

    __tablename__ = "event_snapshots"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class CameraRow(Base):
    __tablename__ = "cameras"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    fps: Mapped[float] = mapped_column(Float)
    last_frame_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reconnects: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pipeline: Mapped[dict | None] = mapped_column(JSON)
    degraded_reason: Mapped[str | None] = mapped_column(Text)
    # what the edge reports it runs (config_hash), or why it refused the hub's (migration 0011)
    config_version: Mapped[str | None] = mapped_column(String(16))
    config_error: Mapped[str | None] = mapped_column(Text)


class EdgeRow(Base):
    __tablename__ = "edges"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # online / offline
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # edge clock minus hub clock, measured on its latest camera status (seconds)
    clock_skew_s: Mapped[float | None] = mapped_column(Float)
    clock_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HotspotReadingRow(Base):
    """Every flood reading received: the series behind the hotspot charts."""

    __tablename__ = "hotspot_readings"
    __table_args__ = (UniqueConstraint("hotspot_id", "time", name="uq_hotspot_reading_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hotspot_id: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    level_state: Mapped[str] = mapped_column(String(64))
    level_cm: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(64))
    period_s: Mapped[float] = mapped_column(Float)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReadingRow(Base):
    """Every reading of any analytic (a count over an interval, an occupancy, a level).

    Bound to the (site, edge) of the topic it came on; one row per (site, edge, camera,
    analytic, time), so a replayed message is absorbed. ``values`` maps value names to
    numbers (or null: not measured), ``units`` names to units.
    """

    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint(
            "site", "edge_id", "camera_id", "analytic", "time", name="uq_reading_series_time"
        ),
        Index("ix_readings_camera_analytic_time", "camera_id", "analytic", "time"),
        Index("ix_readings_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    analytic: Mapped[str] = mapped_column(String(64))
    analytic_type: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    period_s: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str | None] = mapped_column(String(32))
    values: Mapped[dict[str, float | None]] = mapped_column(JSON)
    units: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class IncidentRow(Base):
    """One fire or plume, however many cameras and alerts report it."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open/acknowledged/resolved/...
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_alert_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lat: Mapped[float | None] = mapped_column(Float)  # first camera's position
    lon: Mapped[float | None] = mapped_column(Float)
    est_lat: Mapped[float | None] = mapped_column(Float)  # where bearings cross, when known
    est_lon: Mapped[float | None] = mapped_column(Float)
    team_id: Mapped[str | None] = mapped_column(String(64), index=True)
    notified_team: Mapped[str | None] = mapped_column(String(64))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    digested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(String(128))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alerts: Mapped[int] = mapped_column(Integer, default=1)


class IncidentAlertRow(Base):
    __tablename__ = "incident_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(36), index=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    bearing_deg: Mapped[float | None] = mapped_column(Float)
    zone: Mapped[str | None] = mapped_column(String(64))


class IncidentAuditRow(Base):
    __tablename__ = "incident_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(36), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class DeliveryRow(Base):
    """One notification to one recipient: at least once, retried with backoff, logged."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str | None] = mapped_column(String(36), index=True)
    team_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(16))  # new / update / escalation / digest
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PushSubscriptionRow(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[str] = mapped_column(String(1024), unique=True)
    p256dh: Mapped[str] = mapped_column(String(256))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AckTokenUsedRow(Base):
    """An incident ack link already spent: its nonce is the key, so a link works once."""

    __tablename__ = "ack_tokens_used"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(36), index=True)
    team_id: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
