"""Geodesy for the hub: distances, crossing bearings, points in team areas.

Kept apart from the incidents that use it (merging needs distances and crossing bearings,
routing needs point-in-polygon) because it is plain arithmetic on (lat, lon) pairs: no
database, no configuration, testable on its own. Positions are WGS84 degrees; areas are
``(lon, lat)`` rings as in the team config.
"""

from __future__ import annotations

import math


def _xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    """Metres east and north of (lat0, lon0): flat-earth, fine over tens of kilometres."""
    return (
        (lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)),
        (lat - lat0) * 110_540.0,
    )


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


def bearings_cross(
    a: tuple[float, float],
    bearing_a: float,
    b: tuple[float, float],
    bearing_b: float,
    max_range_m: float,
) -> tuple[float, float] | None:
    """Where the ray from camera ``a`` crosses the ray from ``b`` (lat, lon), if it does
    in front of both and within ``max_range_m`` of each."""
    ax, ay = 0.0, 0.0
    bx, by = _xy(b[0], b[1], a[0], a[1])
    da = (math.sin(math.radians(bearing_a)), math.cos(math.radians(bearing_a)))
    db = (math.sin(math.radians(bearing_b)), math.cos(math.radians(bearing_b)))
    det = da[0] * (-db[1]) - da[1] * (-db[0])
    if abs(det) < 1e-6:  # parallel rays
        return None
    rx, ry = bx - ax, by - ay
    s = (rx * (-db[1]) - ry * (-db[0])) / det
    t = (da[0] * ry - da[1] * rx) / det
    if not (0 < s <= max_range_m and 0 < t <= max_range_m):
        return None
    x, y = ax + s * da[0], ay + s * da[1]
    lat = a[0] + y / 110_540.0
    lon = a[1] + x / (111_320.0 * math.cos(math.radians(a[0])))
    return lat, lon


def in_polygon(lon: float, lat: float, poly: list[tuple[float, float]]) -> bool:
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
