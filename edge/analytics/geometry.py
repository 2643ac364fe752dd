"""Geometry shared by every analytic: polygons, directed lines, point-in-polygon (once).

Numpy in, numpy out, as supervision's ``PolygonZone`` and ``LineZone``. Configs give
points as fractions of the frame's width and height, so a rule survives a resolution
change; callers choose the space (fractions, or pixels with ``frame_wh``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


class RuleConfigError(ValueError):
    """A rule that cannot run as configured (says why, and what to do)."""


def inside(polygon: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon for many points at once: (N,) bool.

    ``polygon`` (M, 2) and ``pts`` (N, 2) in the same space; every edge is tested against
    every point in one vectorised pass."""
    if len(pts) == 0:
        return np.zeros((0,), bool)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    x2, y2 = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (np.sum(crosses & (x < xi), axis=1) % 2) == 1


class PolygonZone:
    """A polygon given as fractions of width and height; ``None`` means the whole frame."""

    def __init__(self, points: Sequence[tuple[float, float]] | None) -> None:
        self.points = None if points is None else np.asarray(points, np.float32)

    def contains(self, xy: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
        """Which of the (N, 2) pixel points lie inside."""
        if self.points is None:
            return np.ones(xy.shape[0], dtype=bool)
        return inside(self.points * np.asarray(frame_wh, np.float32), xy)

    def contains_fractions(self, xy: np.ndarray) -> np.ndarray:
        """Which of the (N, 2) points, as fractions of the frame, lie inside."""
        if self.points is None:
            return np.ones(xy.shape[0], dtype=bool)
        return inside(self.points, xy)


class Line:
    """A directed segment; ``side`` is the signed distance of points from it, positive on
    the side a vehicle reaches after crossing in the ``forward`` direction."""

    def __init__(self, a: Point, b: Point, forward: Point | None = None) -> None:
        self.a = np.asarray(a, np.float64)
        self.b = np.asarray(b, np.float64)
        d = self.b - self.a
        self.length = float(np.hypot(*d))
        if self.length == 0:
            raise RuleConfigError("a line needs two different points")
        self.normal = np.array([-d[1], d[0]]) / self.length
        if forward is not None and float(np.dot(self.normal, forward)) < 0:
            self.normal = -self.normal

    def side(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.a) @ self.normal

    def along(self, pts: np.ndarray) -> np.ndarray:
        """Position along the segment, 0 at ``a`` and 1 at ``b``."""
        d = (self.b - self.a) / self.length
        return ((pts - self.a) @ d) / self.length

    def crossings(self, before: np.ndarray, after: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Per pair of positions (N, 2) each: +1 crossed forward, -1 backward, 0 not.

        A crossing is counted only within the segment (``along`` in [0, 1] where the
        path meets the line) and when both ends are at least ``margin`` from it, so a
        track jittering on the line does not count twice."""
        s0, s1 = self.side(before), self.side(after)
        fwd = (s0 < -margin) & (s1 > margin)
        back = (s0 > margin) & (s1 < -margin)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(s1 != s0, s0 / (s0 - s1), 0.0)
        at = before + (after - before) * f[:, None]
        within = (self.along(at) >= 0) & (self.along(at) <= 1)
        return np.where(within & fwd, 1, np.where(within & back, -1, 0)).astype(np.int8)
