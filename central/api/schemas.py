"""Response models: the API's contract as it appears in OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from edgewatch.contract import Pipeline


class EventOut(BaseModel):
    id: str
    kind: str
    analytic: str
    label: str | None
    state: Literal["active", "ended"]
    site: str
    edge_id: str
    camera_id: str
    start_time: datetime
    end_time: datetime | None
    updated_at: datetime
    received_at: datetime
    score: float
    box: list[float] | None
    zone: str | None
    lat: float | None
    lon: float | None
    messages: int
    snapshot_url: str | None
    attributes: dict[str, str | int | float | bool | None]
    urgent: bool = False
    status: Literal["new", "acknowledged", "resolved", "false_alarm"] = "new"
    status_by: str | None = None
    status_at: datetime | None = None
    review: Literal["pending", "confirmed", "rejected"] | None = None
    reviewer: str | None = None
    review_reason: str | None = None
    reviewed_at: datetime | None = None
    evidence: bool = Field(
        True, description="false when the caller's role may not see evidence (it is left out)"
    )
    evidence_files: dict[str, str] = Field(
        default_factory=dict, description="evidence package files by name: their URLs"
    )


class UpdateOut(BaseModel):
    seq: int
    type: Literal["new", "update", "end"]
    frame_time: datetime
    score: float
    received_at: datetime


class EventAuditOut(BaseModel):
    time: datetime
    actor: str
    action: str
    note: str | None


class EventDetail(EventOut):
    timeline: list[UpdateOut]
    audit: list[EventAuditOut]


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


class CameraOut(BaseModel):
    site: str
    edge_id: str
    camera_id: str
    state: Literal["online", "offline", "degraded"]
    reported_state: str
    fps: float
    last_frame_time: datetime | None
    reconnects: int
    error: str | None
    lat: float | None
    lon: float | None
    updated_at: datetime
    pipeline: Pipeline | None = None
    degraded_reason: str | None = None
    config_version: str | None = Field(None, description="the configuration its edge runs")
    config_error: str | None = Field(
        None, description="why its edge refused the hub's configuration (with the key path)"
    )
    config_version_wanted: str | None = Field(
        None, description="the hub's configuration for it on this edge (None: not set at the hub)"
    )


class EdgeOut(BaseModel):
    site: str
    edge_id: str
    state: Literal["online", "offline"]
    updated_at: datetime
    cameras: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool
    mqtt_flapping: bool = False
