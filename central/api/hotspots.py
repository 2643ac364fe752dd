"""Public, read-only flood hotspot data for the citizens' app and the /hotspots page.

No login. Nothing internal is exposed: no camera, edge or site id, no URL. Responses
carry an ``ETag`` and ``Cache-Control``; a client sending ``If-None-Match`` with the
current tag gets ``304 Not Modified`` without the hub building the document again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from central.api.deps import InternalDep, SessionDep
from central.hotspots import Hotspot
from central.storage.db import as_utc
from central.storage.models import HotspotReadingRow

log = logging.getLogger(__name__)
router = APIRouter()
WEB = Path(__file__).resolve().parents[1] / "web"
STALE_PERIODS = 3
CACHE_CONTROL = "public, max-age=10, must-revalidate"
PUBLIC_FIELDS = (
    "level_cm",
    "trend_cm_per_h",
    "next_level",
    "eta_s",
    "cover",
    "depth_class",
    "reason",
)


class _Cache:
    """Latest reading per hotspot, rebuilt only when a new reading was stored."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: int | None = None
        self.latest: dict[str, HotspotReadingRow] = {}
        self.docs: dict[tuple, tuple[str, bytes]] = {}


def _cache(request: Request) -> _Cache:
    state = request.app.state
    if not hasattr(state, "hotspot_cache"):
        state.hotspot_cache = _Cache()
    return state.hotspot_cache


def _hotspots(request: Request) -> list[Hotspot]:
    return request.app.state.hotspots


def _trend(rate: float | None) -> str | None:
    if rate is None:
        return None
    return "rising" if rate > 2 else "falling" if rate < -2 else "steady"


def _severity(h: Hotspot, level_state: str | None, unknown: bool) -> int:
    names = [lv.name for lv in h.levels]
    if level_state in names:
        sev = 2 + names.index(level_state)
    else:  # "normal" is the only state that is not a level; anything else is not trusted
        sev = 0 if level_state == "normal" else 1
    return max(sev, 1) if unknown else sev


def _feature(h: Hotspot, row: HotspotReadingRow | None, now: datetime) -> dict[str, Any]:
    """One hotspot's feature; a stored reading that cannot be shown makes it ``unknown``
    (reason ``invalid_reading``) and never breaks the rest of the document."""
    try:
        feature = _reading_feature(h, row, now)
        json.dumps(feature, allow_nan=False)  # NaN or infinities would make invalid JSON
        return feature
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError) as exc:
        log.error(
            "hotspot reading cannot be shown",
            extra={"hotspot": h.id, "error": str(exc)[:200]},
        )
        feature = _reading_feature(h, None, now)
        feature["properties"]["reason"] = "invalid_reading"
        return feature


def _reading_feature(h: Hotspot, row: HotspotReadingRow | None, now: datetime) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": h.id,
        "name": h.name,
        **({"names": dict(h.names)} if h.names else {}),
        "example": h.example,
        "setup": h.setup,
        "levels": [lv.model_dump() for lv in h.levels],
        "unit": "cm" if h.setup != "road_cover" else "cm of water on the road (at least)",
    }
    if row is None:
        props.update(state="unknown", reason="no_reading", stale=True, updated_at=None)
        props.update(last_known_state=None, severity=1, trend=None)
        for k in PUBLIC_FIELDS:
            props.setdefault(k, None)
        return _geo(h, props)
    doc = row.doc
    updated = as_utc(row.time)
    assert updated is not None
    stale = _is_stale(h, row, now)
    state = doc.get("state", "unknown")
    reason = doc.get("reason")
    if stale:  # an old reading is no reading: never an old "normal"
        state, reason = "unknown", "stale"
    for k in PUBLIC_FIELDS:
        props[k] = doc.get(k)
    props.update(
        state=state,
        reason=reason,
        last_known_state=doc.get("level_state"),
        stale=stale,
        updated_at=updated.isoformat(),
        trend=_trend(doc.get("trend_cm_per_h")),
        severity=_severity(h, doc.get("level_state"), state == "unknown"),
    )
    if state == "unknown":
        props["level_cm"] = None if stale else props["level_cm"]
    return _geo(h, props)


MAX_PERIOD_S = 7 * 86400.0


def _is_stale(h: Hotspot, row: HotspotReadingRow | None, now: datetime) -> bool:
    """No reading, or none within STALE_PERIODS of its period (bounded: a stored period
    of 1e15 s must neither overflow nor keep a reading fresh for ever)."""
    if row is None:
        return True
    period = row.period_s if row.period_s and 0 < row.period_s <= MAX_PERIOD_S else h.period_s
    updated = as_utc(row.time)
    return updated is None or now - updated > timedelta(seconds=STALE_PERIODS * period)


def _geo(h: Hotspot, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": h.id,
        "geometry": {"type": "Point", "coordinates": [h.lon, h.lat]},
        "properties": props,
    }


def _refresh(session, cache: _Cache) -> int:  # type: ignore[no-untyped-def]
    version = session.scalar(select(func.max(HotspotReadingRow.id))) or 0
    if version != cache.version:
        # The latest reading is the last one the hub *received* (ids grow with arrival),
        # never the one with the newest edge time: an edge's clock cannot pin the feed.
        newest = (
            select(HotspotReadingRow.hotspot_id, func.max(HotspotReadingRow.id).label("n"))
            .group_by(HotspotReadingRow.hotspot_id)
            .subquery()
        )
        rows = session.scalars(
            select(HotspotReadingRow).join(newest, HotspotReadingRow.id == newest.c.n)
        ).all()
        for r in rows:
            session.expunge(r)
        cache.latest = {r.hotspot_id: r for r in rows}
        cache.version = version
        cache.docs.clear()
    return version


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    return any(t.strip() in (etag, "W/" + etag, "*") for t in given.split(",") if t.strip())


PUBLIC = {"x-edgewatch-auth": "public"}


@router.get(
    "/api/v1/hotspots/internal",
    summary="The hotspots with internal fields (camera, edge, raw reading) for the IOC "
    "(the `internal` permission: admins and operators)",
    tags=["hotspots (internal)"],
)
def internal_hotspots(
    request: Request, session: SessionDep, _user: InternalDep
) -> list[dict[str, Any]]:
    cache = _cache(request)
    now = datetime.now(UTC)
    skew_limit = request.app.state.cfg.limits.max_clock_skew_s
    with cache.lock:
        _refresh(session, cache)
        latest = dict(cache.latest)
    out = []
    for h in _hotspots(request):
        row = latest.get(h.id)
        props = _feature(h, row, now)["properties"]
        props.update(
            lat=h.lat,
            lon=h.lon,
            site=row.site if row else None,
            edge_id=row.edge_id if row else None,
            camera_id=row.camera_id if row else None,
            period_s=row.period_s if row else h.period_s,
            received_at=as_utc(row.received_at).isoformat() if row else None,  # type: ignore[union-attr]
            reading=row.doc if row else None,
            # capture-to-receipt delay: large or negative means the edge's clock is off
            clock_skew_s=_skew(row),
            clock_suspect=_skew(row) is not None and abs(_skew(row) or 0) > skew_limit,
        )
        out.append(props)
    out.sort(key=lambda p: -p["severity"])
    return out


@router.get(
    "/api/v1/hotspots",
    summary="Flood hotspots with their latest level and state (GeoJSON, public)",
    openapi_extra=PUBLIC,
    tags=["hotspots (public)"],
    responses={
        200: {"content": {"application/geo+json": {}}},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    },
)
def list_hotspots(request: Request, session: SessionDep) -> Response:
    cache = _cache(request)
    hotspots = _hotspots(request)
    now = datetime.now(UTC)
    with cache.lock:
        version = _refresh(session, cache)
        latest = cache.latest
        stale_bits = tuple(_is_stale(h, latest.get(h.id), now) for h in hotspots)
        key = (version, stale_bits)
        hit = cache.docs.get(key)
        if hit is None:
            doc = {
                "type": "FeatureCollection",
                "features": sorted(
                    (_feature(h, latest.get(h.id), now) for h in hotspots),
                    key=lambda f: -f["properties"]["severity"],
                ),
            }
            body = json.dumps(doc, separators=(",", ":")).encode()
            hit = ('"' + hashlib.sha256(body).hexdigest()[:32] + '"', body)
            cache.docs = {key: hit}
    etag, body = hit
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


@router.get(
    "/api/v1/hotspots/{hotspot_id}/history",
    summary="A hotspot's readings since a time (for charts; public)",
    openapi_extra=PUBLIC,
    tags=["hotspots (public)"],
    responses={304: {"description": "Not modified"}, 404: {"description": "No such hotspot"}},
)
def hotspot_history(
    request: Request,
    session: SessionDep,
    hotspot_id: str,
    since: Annotated[datetime | None, Query(description="ISO 8601; default: 24 hours ago")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 2000,
) -> Response:
    if hotspot_id not in {h.id for h in _hotspots(request)}:
        raise HTTPException(404, f"no hotspot {hotspot_id!r}")
    if since is None:
        since = datetime.now(UTC) - timedelta(hours=24)
    elif since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = session.execute(
        select(
            HotspotReadingRow.time,
            HotspotReadingRow.level_cm,
            HotspotReadingRow.state,
            HotspotReadingRow.level_state,
        )
        .where(HotspotReadingRow.hotspot_id == hotspot_id, HotspotReadingRow.time >= since)
        .order_by(HotspotReadingRow.time.desc())
        .limit(limit)
    ).all()
    points = [
        {
            "time": as_utc(t).isoformat(),  # type: ignore[union-attr]
            "level_cm": lv,
            "state": st,
            "level_state": ls,
        }
        for t, lv, st, ls in reversed(rows)
    ]
    body = json.dumps(
        {"id": hotspot_id, "since": since.isoformat(), "points": points}, separators=(",", ":")
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/hotspots", include_in_schema=False)
def hotspots_page() -> FileResponse:
    return FileResponse(WEB / "hotspots.html", headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    allowed = {"hotspots.js": "text/javascript", "hotspots.css": "text/css"}
    if name not in allowed:
        raise HTTPException(404)
    return FileResponse(WEB / name, media_type=allowed[name], headers={"Cache-Control": "no-cache"})


def _skew(row: HotspotReadingRow | None) -> float | None:
    if row is None:
        return None
    t, r = as_utc(row.time), as_utc(row.received_at)
    return None if t is None or r is None else round((t - r).total_seconds(), 1)
