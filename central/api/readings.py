"""Readings of every analytic: the latest per camera and analytic, a page of them, a series.

One API for any measurement an analytic publishes (a line count per interval, a lane's
occupancy, a water level): the dashboard's readings page and its chart read these, and a
new analytic that publishes readings needs nothing here. Queries are bounded (limits,
time windows clamped to the contract's years), and malformed parameters answer 422.
A camera id is unique per (site, edge) only: a series asked for by camera id alone that
two edges report answers 409 rather than a mixed line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import Select, and_, func, select

from central.api.deps import SessionDep, require
from central.auth import User
from central.storage.db import as_utc
from central.storage.models import ReadingRow
from edgewatch.contract import ID_PATTERN, MAX_PERIOD_S, MAX_YEAR, MIN_YEAR

router = APIRouter(prefix="/api/v1/readings", tags=["readings"])
ReaderDep = Annotated[User, Depends(require("read"))]

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$"  # a value's name (contract.ReadingName)
EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)
STALE_PERIODS = 3

Id = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
Since = Annotated[datetime | None, Query(description="ISO 8601; naive times are UTC")]


def _bound(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC within the contract's years (a far date is clamped, not a 500)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00, year 9999 at -12:00
        return EARLIEST if value.year < MIN_YEAR else LATEST
    return min(max(value, EARLIEST), LATEST)


def _where(
    query: Select[Any],
    *,
    site: str | None = None,
    edge_id: str | None = None,
    camera_id: str | None = None,
    analytic: str | None = None,
    analytic_type: str | None = None,
) -> Select[Any]:
    for column, value in (
        (ReadingRow.site, site),
        (ReadingRow.edge_id, edge_id),
        (ReadingRow.camera_id, camera_id),
        (ReadingRow.analytic, analytic),
        (ReadingRow.analytic_type, analytic_type),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _out(row: ReadingRow, now: datetime | None = None) -> dict[str, Any]:
    values = row.values if isinstance(row.values, dict) else {}
    units = row.units if isinstance(row.units, dict) else {}
    t = as_utc(row.time)
    out: dict[str, Any] = {
        "site": row.site,
        "edge_id": row.edge_id,
        "camera_id": row.camera_id,
        "analytic": row.analytic,
        "analytic_type": row.analytic_type,
        "time": t.isoformat() if t else None,
        "received_at": (r.isoformat() if (r := as_utc(row.received_at)) else None),
        "period_s": row.period_s,
        "state": row.state,
        "values": {str(k): _number(v) for k, v in values.items()},
        "units": {str(k): str(v) for k, v in units.items()},
    }
    if now is not None:
        period = row.period_s if row.period_s and 0 < row.period_s <= MAX_PERIOD_S else None
        late = None if period is None or t is None else now - t
        out["stale"] = None if late is None else late > timedelta(seconds=STALE_PERIODS * period)
    return out


@router.get("", summary="Readings, newest first (any analytic: counts, occupancy, levels)")
def list_readings(
    session: SessionDep,
    _user: ReaderDep,
    site: Id = None,
    edge_id: Id = None,
    camera_id: Id = None,
    analytic: Id = None,
    analytic_type: Id = None,
    since: Since = None,
    until: Since = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    query = _where(
        select(ReadingRow),
        site=site,
        edge_id=edge_id,
        camera_id=camera_id,
        analytic=analytic,
        analytic_type=analytic_type,
    )
    if (lo := _bound(since)) is not None:
        query = query.where(ReadingRow.time >= lo)
    if (hi := _bound(until)) is not None:
        query = query.where(ReadingRow.time <= hi)
    rows = session.scalars(
        query.order_by(ReadingRow.time.desc(), ReadingRow.id.desc()).limit(limit)
    ).all()
    return {"items": [_out(r) for r in rows], "limit": limit}


@router.get("/latest", summary="The latest reading of each camera's analytics")
def latest_readings(
    session: SessionDep,
    _user: ReaderDep,
    site: Id = None,
    edge_id: Id = None,
    camera_id: Id = None,
    analytic_type: Id = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[dict[str, Any]]:
    keys = (ReadingRow.site, ReadingRow.edge_id, ReadingRow.camera_id, ReadingRow.analytic)
    newest = (
        _where(
            select(*keys, func.max(ReadingRow.time).label("t")),
            site=site,
            edge_id=edge_id,
            camera_id=camera_id,
            analytic_type=analytic_type,
        )
        .group_by(*keys)
        .subquery()
    )
    # (site, edge, camera, analytic, time) is unique: one row per series
    join = and_(
        ReadingRow.site == newest.c.site,
        ReadingRow.edge_id == newest.c.edge_id,
        ReadingRow.camera_id == newest.c.camera_id,
        ReadingRow.analytic == newest.c.analytic,
        ReadingRow.time == newest.c.t,
    )
    rows = session.scalars(
        select(ReadingRow)
        .join(newest, join)
        .order_by(ReadingRow.camera_id, ReadingRow.analytic, ReadingRow.site, ReadingRow.edge_id)
        .limit(limit)
    ).all()
    now = datetime.now(UTC)
    return [_out(r, now) for r in rows]


@router.get(
    "/series",
    summary="One value of one camera's analytic over time, oldest first (for charts)",
    responses={409: {"description": "the camera id is reported by more than one edge"}},
)
def reading_series(
    session: SessionDep,
    _user: ReaderDep,
    camera_id: Annotated[str, Query(pattern=ID_PATTERN, max_length=64)],
    analytic: Annotated[str, Query(pattern=ID_PATTERN, max_length=64)],
    name: Annotated[str, Query(pattern=NAME_PATTERN, max_length=64, description="value name")],
    site: Id = None,
    edge_id: Id = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; default: 24 hours ago")] = None,
    until: Since = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 5000,
) -> dict[str, Any]:
    lo = _bound(since) or datetime.now(UTC) - timedelta(hours=24)
    query = _where(
        select(
            ReadingRow.site,
            ReadingRow.edge_id,
            ReadingRow.time,
            ReadingRow.values,
            ReadingRow.units,
        ),
        site=site,
        edge_id=edge_id,
        camera_id=camera_id,
        analytic=analytic,
    ).where(ReadingRow.time >= lo)
    if (hi := _bound(until)) is not None:
        query = query.where(ReadingRow.time <= hi)
    # the newest ``limit`` points of the window, handed out oldest first
    rows = session.execute(query.order_by(ReadingRow.time.desc()).limit(limit)).all()
    sources = {(r.site, r.edge_id) for r in rows}
    if len(sources) > 1:
        raise HTTPException(
            409,
            f"camera {camera_id!r} is reported by {len(sources)} edges; give site and edge_id",
        )
    unit = None
    points = []
    for r in reversed(rows):
        values = r.values if isinstance(r.values, dict) else {}
        units = r.units if isinstance(r.units, dict) else {}
        if name in units:
            unit = str(units[name])
        t = as_utc(r.time)
        points.append({"time": t.isoformat() if t else None, "value": _number(values.get(name))})
    src = next(iter(sources), (site, edge_id))
    return {
        "site": src[0],
        "edge_id": src[1],
        "camera_id": camera_id,
        "analytic": analytic,
        "name": name,
        "unit": unit,
        "since": lo.isoformat(),
        "points": points,
    }
