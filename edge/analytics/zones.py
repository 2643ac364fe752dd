"""Zones in image coordinates, numpy in, numpy out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PolygonZone:
    """A polygon given as fractions of width and height; ``None`` means the whole frame."""

    def __init__(self, points: Sequence[tuple[float, float]] | None) -> None:
        self.points = None if points is None else np.asarray(points, np.float32)

    def contains(self, xy: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
        """Which of the (N, 2) pixel points lie inside (even-odd rule, edges vectorised)."""
        n = xy.shape[0]
        if self.points is None:
            return np.ones(n, dtype=bool)
        if n == 0:
            return np.zeros(0, dtype=bool)
        poly = self.points * np.asarray(frame_wh, np.float32)
        x, y = xy[:, 0:1], xy[:, 1:2]  # (N, 1)
        x1, y1 = poly[:, 0], poly[:, 1]  # (M,)
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        crosses = (y1 > y) != (y2 > y)  # (N, M)
        dy = np.where(y2 == y1, 1e-12, y2 - y1)
        x_at = x1 + (y - y1) * (x2 - x1) / dy
        return np.logical_and(crosses, x < x_at).sum(axis=1) % 2 == 1
