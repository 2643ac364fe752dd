"""Merging: which open incident a new fire or smoke alert belongs to.

A new alert joins an open incident of a compatible kind when it comes within
``merge_window_s`` of the incident's last alert and from the same camera, or from a camera
within ``merge_distance_m`` of one of the incident's cameras whose bearing to the plume
crosses the new alert's bearing within ``max_range_m`` (both cameras looking at the same
place). Cameras without bearings merge on distance and time alone. Where two bearings
cross, the incident gets an estimated position. A merged alert re-notifies only once the
team's cooldown has passed.

These are the rules and the rows they build; :class:`~central.incidents.manager.
IncidentManager` runs them in the ingest transaction and notifies.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.config import FIRE_KINDS, IncidentSettings, Team
from central.geo import bearings_cross, distance_m
from central.storage.db import as_utc
from central.storage.models import EventRow, IncidentAlertRow, IncidentRow
from edge.analytics import registry

URGENT_KINDS = registry.kinds_where(incident="fire", urgent=True)  # forest_fire


def is_fire_kind(kind: str) -> bool:
    return kind in FIRE_KINDS


def merged_into(session: Session, event_id: str) -> IncidentRow | None:
    """The incident an alert already joined (a redelivered event), else None."""
    exists = session.execute(
        select(IncidentAlertRow).where(IncidentAlertRow.event_id == event_id)
    ).scalar_one_or_none()
    if exists is None:
        return None
    found = session.get(IncidentRow, exists.incident_id)
    assert found is not None
    return found


def match(
    session: Session,
    s: IncidentSettings,
    ev: EventRow,
    bearing: float | None,
    t: datetime,
) -> tuple[IncidentRow | None, tuple[float, float] | None]:
    """The open incident the alert joins (else None) and, where two bearings cross, the
    incident's estimated position."""
    since = t - timedelta(seconds=s.merge_window_s)
    candidates = session.execute(
        select(IncidentRow)
        .where(IncidentRow.state.in_(("open", "acknowledged")))
        .where(IncidentRow.last_alert_at >= since)
        .order_by(IncidentRow.opened_at.desc())
    ).scalars()
    for inc in candidates:
        if (inc.kind == "straw_burning") != (ev.kind == "straw_burning"):
            continue  # a field fire and a forest fire are different jobs
        alerts = session.execute(
            select(IncidentAlertRow).where(IncidentAlertRow.incident_id == inc.id)
        ).scalars()
        for a in alerts:
            if (a.site, a.edge_id, a.camera_id) == (ev.site, ev.edge_id, ev.camera_id):
                return inc, None
            if None in (a.lat, a.lon, ev.lat, ev.lon):
                continue
            here, there = (ev.lat, ev.lon), (a.lat, a.lon)
            if distance_m(here, there) > s.merge_distance_m:  # type: ignore[arg-type]
                continue
            if bearing is None or a.bearing_deg is None:
                return inc, None
            cross = bearings_cross(here, bearing, there, a.bearing_deg, s.max_range_m)  # type: ignore[arg-type]
            if cross is not None:
                return inc, cross
    return None, None


def alert_row(ev: EventRow, bearing: float | None, t: datetime) -> IncidentAlertRow:
    """The alert's row in ``incident_alerts``; its ``incident_id`` is set once known."""
    return IncidentAlertRow(
        incident_id="",
        event_id=ev.id,
        site=ev.site,
        edge_id=ev.edge_id,
        camera_id=ev.camera_id,
        time=t,
        kind=ev.kind,
        label=ev.label,
        score=ev.score,
        lat=ev.lat,
        lon=ev.lon,
        bearing_deg=bearing,
        zone=ev.zone,
    )


def new_incident(ev: EventRow, t: datetime, now: datetime) -> IncidentRow:
    """An incident opened by an alert that joined none."""
    return IncidentRow(
        id=str(uuid.uuid4()),
        kind=ev.kind,
        state="open",
        urgent=ev.kind in URGENT_KINDS,
        opened_at=now,
        updated_at=now,
        last_alert_at=t,
        lat=ev.lat,
        lon=ev.lon,
        escalation_level=0,
        alerts=1,
    )


def absorb(
    incident: IncidentRow,
    ev: EventRow,
    t: datetime,
    now: datetime,
    where: tuple[float, float] | None,
) -> None:
    """Count a merged alert into its incident: its time, the estimated position, and the
    kind (a plume seen over forest makes the incident urgent)."""
    incident.alerts += 1
    incident.last_alert_at = max(as_utc(incident.last_alert_at) or t, t)
    incident.updated_at = now
    if where is not None:
        incident.est_lat, incident.est_lon = where
    if ev.kind in URGENT_KINDS and incident.kind not in URGENT_KINDS:
        incident.kind, incident.urgent = ev.kind, True  # a plume seen over forest


def renotify(incident: IncidentRow, team: Team, now: datetime) -> bool:
    """Whether a merged alert is news for ``team``: the incident is open (not yet
    acknowledged) and the team's cooldown since its last notification has passed."""
    last = as_utc(incident.last_notified_at)
    return incident.state == "open" and (
        last is None or (now - last).total_seconds() >= team.cooldown_s
    )
