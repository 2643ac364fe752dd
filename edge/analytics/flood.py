"""The ``flood`` analytic: water level at a hotspot, stated honestly.

Three set-ups (``FloodAnalytic.setup``):

- ``gauge``: a staff gauge in view; the measuring line runs along it, two or more marked
  points on it calibrate position to level (piecewise linear, extrapolated at the ends).
- ``virtual_gauge``: no gauge, but surveyed points (a bridge pier, a wall) on a line.
- ``road_cover``: an uncalibrated street; the covered share of a road polygon and a depth
  class from references of known height (kerb top, painted marks).

Pieces, each usable alone and fed images or numbers and time (no video, no MQTT):

- :class:`SceneCheck` says why an image cannot be trusted (too dark, glare, lens
  obstructed or blurred, camera moved, frozen) by comparing it with a reference view;
- :class:`LineGauge` samples the strip along the line, finds the waterline in it
  (:mod:`edge.analytics.waterline`: a bright-above, darker-below step with marks and glints
  removed, read on parallel lines, checked against reflections, with a confidence) and
  turns it into centimetres;
- :class:`RoadCover` finds water on the road by its change from the dry reference;
- :class:`LevelStateMachine` turns readings into alarm states: a confidence floor, a
  per-sample physics limit with confirmation by the next reading, trend-following median
  smoothing, an all-clear only on evidence, rate of rise and ETA;
- :class:`FloodRule` puts them together and returns readings and event transitions.

An unusable image never yields a level: the reading is ``unknown`` with a reason, and the
alarm state it had is kept (``level_state``); it is never turned into ``normal``. Why the
rules are what they are (real GRIME2 frames, day and IR night): the worst output is a wrong
all-clear, so a reading that is not sure (``low_confidence``), not physically plausible
after the last one (``unconfirmed_jump``) or not backed by a run of confident readings does
not lower the alarm; raising needs one confident, plausible reading.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from edge.analytics.base import Transition
from edge.analytics.plugins.flood.config import FloodAnalytic, FloodLevel
from edge.analytics.waterline import Waterline, find_waterline

UNKNOWN_REASONS = (
    "too_dark",
    "glare",
    "lens_obstructed",
    "camera_moved",
    "frozen",
    "no_frames",
    "no_waterline",
    "no_reference",
    "low_confidence",
    "unconfirmed_jump",
    "unconfirmed_after_gap",
)
NORMAL = "normal"
UNKNOWN = "unknown"
CHECK_WIDTH = 320  # images are checked at this width
ORB_WIDTH = 640
GAP_INTERVALS = 3.0  # a wait this many of the smoothing window's intervals is a gap


def _gray_small(bgr: np.ndarray, width: int = CHECK_WIDTH) -> np.ndarray:
    h, w = bgr.shape[:2]
    size = (width, max(1, round(h * width / w)))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _tile_means(img: np.ndarray, tiles: tuple[int, int]) -> np.ndarray:
    return cv2.resize(img, tiles, interpolation=cv2.INTER_AREA)


# -- image checks --------------------------------------------------------------------------


class SceneCheck:
    """Why an image cannot be trusted, or None; compares each image with a reference view.

    ``region`` (a mask at check resolution, or None) is the part that is measured: glare
    and blur there matter more than elsewhere.
    """

    tiles = (8, 6)

    def __init__(self, cfg: FloodAnalytic, reference: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.region: np.ndarray | None = None
        self.region_fn = None  # set by the rule: (w, h) -> mask at check resolution
        self.box: tuple[float, float, float, float] | None = None  # measured area, fractions
        self._prev: np.ndarray | None = None
        self._same = 0
        self.reference: np.ndarray | None = None
        self._orb = cv2.ORB_create(nfeatures=600, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
        if reference is not None:
            self.set_reference(reference)

    # reference --------------------------------------------------------------------------

    def set_reference(self, bgr: np.ndarray) -> None:
        self.reference = bgr
        g = _gray_small(bgr)
        self._ref_small = g
        self._ref_sharp, self._ref_struct = self._sharpness(g)
        self._ref_glare = float((g >= 245).mean())
        self._ref_contrast = max(1.0, float(g.std()))
        self._ref_kp, self._ref_desc = self._features(bgr)
        self._ref_edges = self._edges(g)
        self._ref_mag = self._edge_mag(g)

    def _features(
        self, bgr: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[list, np.ndarray | None]:
        g = self._clahe.apply(_gray_small(bgr, ORB_WIDTH))
        if mask is not None and mask.shape != g.shape:
            mask = cv2.resize(mask, g.shape[::-1], interpolation=cv2.INTER_NEAREST)
        return self._orb.detectAndCompute(g, mask)

    @staticmethod
    def _edge_mag(g: np.ndarray) -> np.ndarray:
        f = cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.5)
        mag = cv2.magnitude(cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1))
        mag /= float(mag.mean()) + 1e-6
        return mag

    @classmethod
    def _edges(cls, g: np.ndarray) -> np.ndarray:
        win = cv2.createHanningWindow(g.shape[::-1], cv2.CV_32F)
        return cls._edge_mag(g) * win

    def _tiles_shift(self, g: np.ndarray, keep: int) -> float | None:
        """The shift most tiles of the dry view agree on, when it is small (None: no such
        majority). The sun coming out, shadows of reeds or a wet board change the edges
        of some tiles, so the whole view's phase peak weakens and its keypoints no longer
        match; a camera that really moved shifts every tile the same way, by a lot."""
        ref, cur = self._ref_mag, self._edge_mag(g)
        h, w = g.shape
        keep = min(h, max(16, keep))
        ny = 2 if keep >= 96 else 1
        ys = np.linspace(0, keep, ny + 1).round().astype(int)
        xs = np.linspace(0, w, 4).round().astype(int)
        limit = self.cfg.max_shift * w
        found: list[tuple[float, float, float]] = []
        against = 0
        for i in range(ny):
            for j in range(3):
                r = ref[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
                c = cur[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
                if min(r.shape) < 24 or float(r.std()) < 0.3:
                    continue  # too small, or flat (sky, calm water): it says nothing
                win = cv2.createHanningWindow(r.shape[::-1], cv2.CV_32F)
                (dx, dy), resp = cv2.phaseCorrelate(r, c, win)
                if resp >= 0.1 and math.hypot(dx, dy) <= limit:
                    found.append((dx, dy, resp))
                elif resp >= 0.2:
                    against += 1  # a clear peak somewhere else: this tile saw it move
        if against or not found:
            return None
        arr = np.asarray(found)
        med = np.median(arr[:, :2], axis=0)
        near = arr[np.hypot(*(arr[:, :2] - med).T) <= 1.5]  # the tiles that agree on one shift
        # three tiles that agree, or two that agree with clear peaks (and none against)
        if len(near) >= 3 or (len(near) == 2 and float(near[:, 2].min()) >= 0.3):
            return float(math.hypot(*np.median(near[:, :2], axis=0)))
        return None

    def _sharpness(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per tile: fine-detail energy over coarse-detail energy (contrast cancels), and std."""
        f = g.astype(np.float32)
        fine = np.abs(cv2.Laplacian(f, cv2.CV_32F, ksize=1))
        coarse = np.abs(cv2.Laplacian(cv2.GaussianBlur(f, (0, 0), 2.0), cv2.CV_32F, ksize=1))
        ratio = (_tile_means(fine, self.tiles) + 0.05) / (_tile_means(coarse, self.tiles) + 0.05)
        mean = _tile_means(f, self.tiles)
        std = np.sqrt(np.maximum(_tile_means(f * f, self.tiles) - mean * mean, 0))
        return ratio, std

    # checks -----------------------------------------------------------------------------

    def check(self, bgr: np.ndarray, water_from: float | None = None) -> str | None:
        """``water_from``: image row (fraction of height) below which water may be now;
        tiles there are left out of the blur test (water hides texture as drops do)."""
        cfg = self.cfg
        g = _gray_small(bgr)
        frozen = self._prev is not None and self._prev.shape == g.shape
        if frozen:
            frozen = float(np.abs(g.astype(np.int16) - self._prev).mean()) < 0.05  # type: ignore[operator]
        self._same = self._same + 1 if frozen else 0
        self._prev = g.astype(np.int16)
        if self._same >= 2:
            return "frozen"
        if float(g.mean()) < cfg.min_brightness:
            return "too_dark"
        region = self.region_fn(g.shape[1], g.shape[0]) if self.region_fn else None
        sat = g >= 245
        glare = float(sat[region].mean()) if region is not None and region.any() else 0.0
        if glare > cfg.max_glare or float(sat.mean()) - self._ref_glare_or0() > cfg.max_glare:
            return "glare"
        if self.reference is None:
            return None
        if g.shape != self._ref_small.shape:
            return "camera_moved"  # another resolution: the calibration no longer applies
        sharp, std = self._sharpness(g)
        dry = np.ones(self.tiles[::-1], bool)
        if water_from is not None:
            rows = self.tiles[1]
            tile_bottom = (np.arange(rows) + 1) / rows
            dry &= (tile_bottom <= water_from)[:, None]
        considered = dry & (self._ref_struct > 6.0)
        blurred = considered & (sharp < 0.6 * self._ref_sharp)
        # a tile that lost its structure (a drop, a smear) counts too
        contrast = float(g.std()) / self._ref_contrast  # day/night gain cancels
        washed = considered & (std < 0.35 * self._ref_struct * contrast)
        n = int(considered.sum())
        if n >= 4 and float((blurred | washed).sum()) / n > cfg.max_blurred:
            return "lens_obstructed"
        if self._moved(bgr, g, water_from):
            return "camera_moved"
        return None

    def _ref_glare_or0(self) -> float:
        return self._ref_glare if self.reference is not None else 0.0

    def shift(
        self, bgr: np.ndarray, g: np.ndarray, water_from: float | None = None
    ) -> tuple[float | None, str]:
        """Displacement of the view from the reference, pixels at check width (None: lost).

        Phase correlation of edge images first (robust to noise and gain, night included);
        when too little of the reference view is left for it (water over most of the
        frame), reference keypoints (ORB, RANSAC similarity) decide; when they cannot
        either (sun and hard shadows on a view that was lit by IR), a majority of tiles of
        the dry view agreeing on one small shift says the camera stayed.
        """
        ref, cur = self._ref_edges, self._edges(g)
        mask = None
        keep = g.shape[0]
        if water_from is not None:  # moving water is not the view: compare the dry part
            keep = min(g.shape[0], max(8, int(water_from * g.shape[0])))
            ref, cur = ref.copy(), cur.copy()
            ref[keep:] = 0
            cur[keep:] = 0
            mask = np.zeros((round(g.shape[0] * ORB_WIDTH / CHECK_WIDTH), ORB_WIDTH), np.uint8)
            mask[: round(keep * ORB_WIDTH / CHECK_WIDTH)] = 255
        (dx, dy), response = cv2.phaseCorrelate(ref, cur)
        limit = self.cfg.max_shift * g.shape[1]
        if response >= 0.03 and math.hypot(dx, dy) <= limit:
            return math.hypot(dx, dy), "phase"
        # a large or weak phase answer (repetitive windows, a flooded view): ask keypoints,
        # and if they cannot tell either, believe the phase correlation when it had a peak
        fallback = (math.hypot(dx, dy), "phase") if response >= 0.03 else (None, "lost")
        kp, desc = self._features(bgr, mask)
        scale = CHECK_WIDTH / ORB_WIDTH
        if desc is not None and self._ref_desc is not None and len(kp) >= 8:
            pairs = self._matcher.knnMatch(desc, self._ref_desc, k=2)
            good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
            if len(good) >= 12:
                src = np.float32([kp[m.queryIdx].pt for m in good])
                dst = np.float32([self._ref_kp[m.trainIdx].pt for m in good])
                m, inliers = cv2.estimateAffinePartial2D(
                    src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0
                )
                n_in = int(inliers.sum()) if inliers is not None else 0
                if m is not None and n_in >= 15 and n_in >= 0.3 * len(good):
                    h, w = g.shape[0] / scale, g.shape[1] / scale
                    if self.box is not None:  # what matters: where the measured area went
                        x1, y1, x2, y2 = self.box
                        corners = np.float32([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]) * (w, h)
                    else:
                        corners = np.float32([[0, 0], [w, 0], [0, h], [w, h]])
                    moved = corners @ m[:, :2].T + m[:, 2] - corners
                    return float(np.linalg.norm(moved, axis=1).max()) * scale, "keypoints"
        # neither could tell: does most of the view agree on staying where it was?
        tiles = self._tiles_shift(g, keep)
        if tiles is not None:
            return tiles, "tiles"
        return fallback

    def _moved(self, bgr: np.ndarray, g: np.ndarray, water_from: float | None) -> bool:
        d, _how = self.shift(bgr, g, water_from)
        if d is None:
            return True  # nothing of the reference view can be found
        return d > self.cfg.max_shift * g.shape[1]


# -- measuring -----------------------------------------------------------------------------


class LineGauge:
    """Level along a measuring line: the waterline position, calibrated to centimetres.

    The strip is sampled one pixel per row along the line and ``line_width`` across it;
    ``px_per_cm`` (from the calibration points) sets the scale of the marks the waterline
    search ignores (``mark_cm``), so one config works at any distance and resolution."""

    def __init__(self, cfg: FloodAnalytic, frame_wh: tuple[int, int]) -> None:
        assert cfg.line is not None
        self.cfg = cfg
        w, h = frame_wh
        self.wh = frame_wh
        p0 = np.array(cfg.line[0], np.float64) * (w, h)
        p1 = np.array(cfg.line[1], np.float64) * (w, h)
        self.p0, self.p1 = p0, p1
        self.length = float(np.linalg.norm(p1 - p0))
        if self.length < 10:
            raise ValueError("line: shorter than 10 pixels")
        self.rows = int(round(self.length))
        self.half = max(2, int(round(cfg.line_width * w / 2)))
        axis = (p1 - p0) / self.length
        normal = np.array([-axis[1], axis[0]])
        s = np.arange(self.rows, dtype=np.float64)[:, None, None]
        c = np.arange(-self.half, self.half + 1, dtype=np.float64)[None, :, None]
        pts = p0 + s * axis + c * normal  # (rows, cols, 2)
        self.map_x = pts[..., 0].astype(np.float32)
        self.map_y = pts[..., 1].astype(np.float32)
        # calibration: position of each point along the line (rows) -> level
        ts = [float(np.dot(np.array(p.at) * (w, h) - p0, axis)) for p in cfg.points]
        order = np.argsort(ts)
        self.cal_t = np.asarray(ts, np.float64)[order]
        self.cal_v = np.asarray([cfg.points[i].level_cm for i in order], np.float64)
        if np.any(np.diff(self.cal_t) <= 0.5):
            raise ValueError("points: two calibration points project to the same place")
        # pixels per cm along the line, from the calibration: the scale of marks and steps
        self.px_per_cm = float(np.median(np.abs(np.diff(self.cal_t) / np.diff(self.cal_v))))
        self._strips: deque[np.ndarray] = deque(maxlen=cfg.temporal_median)
        self.last: Waterline | None = None
        corners = np.array([pts[0, 0], pts[0, -1], pts[-1, 0], pts[-1, -1]])
        x1, y1 = corners.min(axis=0)
        x2, y2 = corners.max(axis=0)
        self.box_px = (int(x1), int(y1), int(math.ceil(x2)), int(math.ceil(y2)))
        self.polygon = np.array([pts[0, 0], pts[0, -1], pts[-1, -1], pts[-1, 0]], np.float64) / (
            w,
            h,
        )

    def level_at(self, t: float | np.ndarray) -> float | np.ndarray:
        """Level at position ``t`` rows along the line (linear between points, extrapolated)."""
        t_arr = np.asarray(t, np.float64)
        out = np.interp(t_arr, self.cal_t, self.cal_v)
        lo = (self.cal_v[1] - self.cal_v[0]) / (self.cal_t[1] - self.cal_t[0])
        hi = (self.cal_v[-1] - self.cal_v[-2]) / (self.cal_t[-1] - self.cal_t[-2])
        out = np.where(t_arr < self.cal_t[0], self.cal_v[0] + (t_arr - self.cal_t[0]) * lo, out)
        out = np.where(t_arr > self.cal_t[-1], self.cal_v[-1] + (t_arr - self.cal_t[-1]) * hi, out)
        return float(out) if np.ndim(out) == 0 else out

    def position_of(self, level_cm: float) -> float:
        """Inverse of :meth:`level_at` (rows along the line)."""
        grid = np.arange(-self.rows, 2 * self.rows, 0.25)
        values = self.level_at(grid)
        return float(grid[int(np.argmin(np.abs(values - level_cm)))])

    def strip(self, bgr: np.ndarray) -> np.ndarray:
        return cv2.remap(bgr, self.map_x, self.map_y, cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)

    def reset(self) -> None:
        self._strips.clear()

    def measure(self, bgr: np.ndarray) -> tuple[float | None, float, float]:
        """(level cm or None, confidence 0..1, waterline position in rows).

        None: the strip has no step of the expected sign (``last`` is then None too);
        a reading below the confidence floor is the state machine's to refuse."""
        self._strips.append(self.strip(bgr))
        strip = (
            np.median(np.stack(self._strips), axis=0).astype(np.uint8)
            if len(self._strips) > 1
            else self._strips[-1]
        )
        cfg = self.cfg
        wl = find_waterline(
            strip, self.px_per_cm, water=cfg.water, mark_cm=cfg.mark_cm, lines=cfg.search_lines
        )
        self.last = wl
        if wl is None:
            return None, 0.0, self.rows / 2.0
        return float(self.level_at(wl.row)), wl.confidence, wl.row


class RoadCover:
    """Share of a road polygon covered by water, and the deepest reference submerged."""

    def __init__(self, cfg: FloodAnalytic, frame_wh: tuple[int, int]) -> None:
        assert cfg.road is not None
        self.cfg = cfg
        w, h = frame_wh
        self.size = (CHECK_WIDTH, max(1, round(h * CHECK_WIDTH / w)))
        sw, sh = self.size
        mask = np.zeros((sh, sw), np.uint8)
        pts = (np.asarray(cfg.road) * (sw - 1, sh - 1)).round().astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
        self.road = mask.astype(bool)
        # brightness is normalised on what water cannot reach: the view above the road
        top = int(np.nonzero(mask.any(axis=1))[0].min())
        self.outside = np.zeros_like(self.road)
        self.outside[: max(4, top)] = True
        self.marks = [
            (
                int(round(m.at[0] * (sw - 1))),
                int(round(m.at[1] * (sh - 1))),
                m.depth_cm,
            )
            for m in cfg.marks
        ]
        self.reference: np.ndarray | None = None
        self._frames: deque[np.ndarray] = deque(maxlen=cfg.temporal_median)
        self.last_mask: np.ndarray | None = None
        xs, ys = np.nonzero(self.road.T)
        self.box_px = (
            int(xs.min() * w / sw),
            int(ys.min() * h / sh),
            int((xs.max() + 1) * w / sw),
            int((ys.max() + 1) * h / sh),
        )

    def _lab(self, bgr: np.ndarray) -> np.ndarray:
        small = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA).astype(np.float32)
        small = cv2.blur(small, (5, 5))  # sensor noise of dark frames
        # gain, black level and colour cast (night, lamps, dusk, haze) normalised per channel
        # on what water cannot reach, in linear values, before going to Lab
        stable = small[self.outside]
        lo = np.percentile(stable, 2, axis=0)  # haze and flare lift the blacks
        mid = np.median(stable, axis=0)
        small = (small - lo) * (0.4 / np.maximum(mid - lo, 2.0)) + 0.05
        return cv2.cvtColor(np.clip(small, 0, 1), cv2.COLOR_BGR2LAB)

    def set_reference(self, bgr: np.ndarray) -> None:
        self.reference = self._lab(bgr)

    def reset(self) -> None:
        self._frames.clear()

    def measure(self, bgr: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(covered share of the road, depth lower bound in cm, water mask)."""
        assert self.reference is not None
        self._frames.append(self._lab(bgr))
        lab = (
            np.median(np.stack(self._frames), axis=0) if len(self._frames) > 1 else self._frames[-1]
        )
        d_ab = np.linalg.norm(lab[..., 1:] - self.reference[..., 1:], axis=2)
        d_l = np.abs(lab[..., 0] - self.reference[..., 0])
        water = ((d_ab > 7.0) | (d_l > 25.0)).astype(np.uint8)
        water = cv2.medianBlur(water * 255, 5) > 0
        self.last_mask = water
        road_n = int(self.road.sum())
        cover = float((water & self.road).sum()) / road_n if road_n else 0.0
        depth = 0.0
        if cover >= self.cfg.wet_cover:
            for x, y, d in self.marks:
                win = water[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
                if win.size and float(win.mean()) >= 0.5:
                    depth = max(depth, d)
        return cover, depth, water


# -- states --------------------------------------------------------------------------------


@dataclass
class LevelChange:
    kind: str  # "reached" or "cleared"
    index: int  # 0-based index into the levels
    level: FloodLevel


@dataclass
class Reading:
    time: datetime
    state: str  # unknown, normal or a level name
    level_state: str  # the alarm state, kept through unknown readings
    level_cm: float | None  # smoothed
    raw_cm: float | None
    reason: str | None = None
    trend_cm_per_h: float | None = None
    next_level: str | None = None
    eta_s: float | None = None
    confidence: float | None = None
    cover: float | None = None
    depth_class: str | None = None
    rejected: bool = False


class LevelStateMachine:
    """Readings in, alarm states out. ``update`` takes a level (or None: unusable), the time
    and the reading's confidence.

    Three rules keep a wrong all-clear out, whatever the image did:

    - **Confidence floor.** A reading less sure than ``min_confidence`` is ``unknown``
      (``low_confidence``): it neither raises nor clears, and breaks a run of evidence.
    - **Physics per sample.** Two readings may differ by ``max_rate_cm_per_min`` times the
      minutes between them plus ``jump_tolerance_cm``. A larger jump is ``unknown``
      (``unconfirmed_jump``) until the next reading says the same (then both count: a real
      surge, a gate opened) or goes back (the jump was an outlier and is dropped).
    - **An all-clear needs evidence.** A raised level clears only after ``clear_readings``
      confident readings in a row, each ``margin_cm`` below it, spanning ``hold_s``; an
      unknown reading starts the count again. A level is raised on one confident reading.
    """

    def __init__(
        self,
        levels: list[FloodLevel],
        *,
        margin_cm: float = 5.0,
        hold_s: float = 600.0,
        smoothing: int = 3,
        max_rate_cm_per_min: float | None = 2.0,
        jump_tolerance_cm: float = 5.0,
        trend_window_s: float = 1200.0,
        min_confidence: float = 0.0,
        clear_readings: int = 2,
    ) -> None:
        self.levels = levels
        self.thresholds = np.asarray([lv.level_cm for lv in levels], np.float64)
        self.margin = margin_cm
        self.hold_s = hold_s
        self.max_rate = max_rate_cm_per_min
        self.jump_tol = jump_tolerance_cm
        self.trend_window_s = trend_window_s
        self.min_confidence = min_confidence
        self.clear_readings = max(2, clear_readings)  # never on one reading
        self._raw: deque[tuple[float, float]] = deque(maxlen=smoothing)
        self._pending: tuple[float, float] | None = None  # an unconfirmed jump: (t, value)
        self._last: tuple[float, float] | None = None  # the last accepted reading
        self._history: deque[tuple[float, float]] = deque()
        self._below: list[tuple[float, float]] = []  # the current run of clearing evidence
        self.index = 0  # number of levels reached
        self.smoothed: float | None = None
        self.rejected = 0

    @property
    def level_state(self) -> str:
        return NORMAL if self.index == 0 else self.levels[self.index - 1].name

    def allowed_change(self, dt_s: float) -> float:
        """The largest plausible change between two readings ``dt_s`` apart (cm)."""
        if self.max_rate is None:
            return math.inf
        return self.max_rate * max(0.0, dt_s) / 60.0 + self.jump_tol

    def _plausible(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        return abs(b[1] - a[1]) <= self.allowed_change(b[0] - a[0])

    def update(
        self,
        now: datetime,
        value: float | None,
        reason: str | None = None,
        confidence: float | None = None,
    ) -> tuple[Reading, list[LevelChange]]:
        t = now.timestamp()
        if value is None:
            self._below.clear()
            return self._reading(now, UNKNOWN, None, reason=reason or "unknown"), []
        if confidence is not None and confidence < self.min_confidence:
            self._below.clear()
            reading = self._reading(now, UNKNOWN, value, reason="low_confidence")
            reading.confidence = confidence
            return reading, []
        new = (t, float(value))
        accepted = [new]
        gap = self._gap_s()
        # After a gap (an outage, a run of unknowns) the physics check allows a change as
        # large as the gap is long, so one bad frame could raise a level on its own: a
        # first reading after a gap that moved more than one interval allows waits for the
        # next to say the same, as a jump does (the same level as before goes through).
        after_gap = (
            self._last is not None
            and gap is not None
            and t - self._last[0] > gap
            and abs(new[1] - self._last[1]) > self.allowed_change(gap / GAP_INTERVALS)
        )
        if self._last is not None and (after_gap or not self._plausible(self._last, new)):
            recent = self._pending is not None and (gap is None or t - self._pending[0] <= gap)
            if recent and self._pending is not None and self._plausible(self._pending, new):
                # the next reading confirms the jump: a real step, both readings count
                accepted = [self._pending, new]
                self._raw.clear()
                self._below.clear()
                self._pending = None
            else:
                self._pending = new
                self._below.clear()
                self.rejected += 1
                why = "unconfirmed_after_gap" if after_gap else "unconfirmed_jump"
                reading = self._reading(now, UNKNOWN, value, reason=why, rejected=True)
                reading.confidence = confidence
                return reading, []
        self._pending = None  # back on track: an unconfirmed jump was an outlier
        changes: list[LevelChange] = []
        for tv in accepted:
            changes += self._accept(*tv)
        reading = self._reading(now, self.level_state, value)
        reading.confidence = confidence
        return reading, changes

    def _gap_s(self) -> float | None:
        """A wait longer than this since the last reading is a gap: GAP_INTERVALS of the
        smoothing window's intervals (None while the window is too short to tell)."""
        if len(self._raw) < 2:
            return None
        spacing = float(np.median(np.diff([p[0] for p in self._raw])))
        return GAP_INTERVALS * spacing if spacing > 0 else None

    def _accept(self, t: float, value: float) -> list[LevelChange]:
        gap = self._gap_s()
        if gap is not None and t - self._raw[-1][0] > gap:
            # after a gap the window's readings, carried along their slope to now, would
            # invent a level: the window starts again
            self._raw.clear()
        self._raw.append((t, value))
        self._last = (t, value)
        self.smoothed = s = self._smooth(t)
        self._history.append((t, s))
        while self._history and t - self._history[0][0] > self.trend_window_s:
            self._history.popleft()
        changes: list[LevelChange] = []
        while self.index < len(self.levels) and s >= self.thresholds[self.index]:
            self.index += 1
            changes.append(LevelChange("reached", self.index - 1, self.levels[self.index - 1]))
            self._below.clear()
        if self.index == 0:
            self._below.clear()
            return changes
        # clearing evidence: each reading (raw and smoothed) below the level by the margin
        limit = self.thresholds[self.index - 1] - self.margin
        if value < limit and s < limit:
            self._below.append((t, min(value, s)))
        else:
            self._below.clear()
        while (
            self.index > 0
            and len(self._below) >= self.clear_readings
            and self._below[-1][0] - self._below[0][0] >= self.hold_s
        ):
            limit = self.thresholds[self.index - 1] - self.margin
            if max(v for _t, v in self._below) >= limit:
                break
            self.index -= 1
            changes.append(LevelChange("cleared", self.index, self.levels[self.index]))
        if changes and changes[-1].kind == "cleared":
            self._below.clear()  # the next level down needs its own evidence
        return changes

    def _smooth(self, t: float) -> float:
        """Median smoothing that does not lag a steady rise: the median of the window's
        readings carried to now along their Theil-Sen slope (the median pairwise slope)."""
        ts = np.fromiter((p[0] for p in self._raw), np.float64)
        vs = np.fromiter((p[1] for p in self._raw), np.float64)
        if len(vs) < 3:
            return float(np.median(vs))
        i, j = np.triu_indices(len(vs), 1)
        dt = ts[j] - ts[i]
        ok = dt > 0
        slope = float(np.median((vs[j] - vs[i])[ok] / dt[ok])) if ok.any() else 0.0
        return float(np.median(vs + slope * (t - ts)))

    def trend(self) -> float | None:
        """Rate of change over the trend window, cm per hour (None: too little data)."""
        if len(self._history) < 3:
            return None
        ts = np.asarray([h[0] for h in self._history])
        vs = np.asarray([h[1] for h in self._history])
        if ts[-1] - ts[0] < self.trend_window_s / 4:
            return None
        slope = np.polyfit(ts - ts[0], vs, 1)[0]
        return float(slope * 3600.0)

    def _reading(
        self,
        now: datetime,
        state: str,
        raw: float | None,
        *,
        reason: str | None = None,
        rejected: bool = False,
    ) -> Reading:
        trend = self.trend()
        nxt = self.levels[self.index] if self.index < len(self.levels) else None
        eta = None
        if nxt is not None and trend is not None and trend > 0.5 and self.smoothed is not None:
            eta = max(0.0, (nxt.level_cm - self.smoothed) / trend * 3600.0)
        return Reading(
            time=now,
            state=state,
            level_state=self.level_state,
            level_cm=None if state == UNKNOWN else self.smoothed,
            raw_cm=raw,
            reason=reason,
            trend_cm_per_h=None if trend is None else round(trend, 2),
            next_level=nxt.name if nxt else None,
            eta_s=None if eta is None else round(eta),
            rejected=rejected,
        )


# -- the rule ------------------------------------------------------------------------------


@dataclass
class FloodOutput:
    reading: Reading
    transitions: list[Transition] = field(default_factory=list)
    waterline_px: tuple[tuple[int, int], tuple[int, int]] | None = None


@dataclass
class _Open:
    event_id: uuid.UUID
    start: datetime
    seq: int = 0


def load_reference(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"reference_image {path}: missing or not an image")
    return img


class FloodRule:
    """Frames and time in, readings and event transitions out, for one hotspot."""

    kind = "flood_level"

    def __init__(self, cfg: FloodAnalytic) -> None:
        self.cfg = cfg
        assert cfg.levels is not None
        self.levels = cfg.levels
        ref = load_reference(cfg.reference_image) if cfg.reference_image else None
        self.check = SceneCheck(cfg)
        self.machine = LevelStateMachine(
            cfg.levels,
            margin_cm=cfg.margin_cm,
            hold_s=cfg.hold_s,
            smoothing=cfg.smoothing,
            # road cover moves in steps of the references' heights: no rate bound
            max_rate_cm_per_min=cfg.max_rate_cm_per_min if cfg.setup != "road_cover" else None,
            jump_tolerance_cm=cfg.jump_tolerance_cm,
            trend_window_s=cfg.trend_window_s,
            min_confidence=cfg.min_confidence,
            clear_readings=cfg.clear_readings,
        )
        self.gauge: LineGauge | None = None
        self.road: RoadCover | None = None
        self._wh: tuple[int, int] | None = None
        self._pending_ref = ref
        self._open: dict[str, _Open] = {}
        self._unknown_run = 0
        self.zone = f"hotspot:{cfg.hotspot}"

    # geometry is built on the first frame (its size) ----------------------------------------

    def _setup(self, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        if self._wh == (w, h):
            return
        self._wh = (w, h)
        if self.cfg.setup == "road_cover":
            self.road = RoadCover(self.cfg, (w, h))
            poly = np.asarray(self.cfg.road)
        else:
            self.gauge = LineGauge(self.cfg, (w, h))
            poly = self.gauge.polygon

        def region(sw: int, sh: int, poly: np.ndarray = poly) -> np.ndarray:
            mask = np.zeros((sh, sw), np.uint8)
            pts = (poly * (sw - 1, sh - 1)).round().astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
            return mask.astype(bool)

        self.check.region_fn = region
        self.check.box = (
            float(poly[:, 0].min()),
            float(poly[:, 1].min()),
            float(poly[:, 0].max()),
            float(poly[:, 1].max()),
        )
        if self._pending_ref is not None:
            ref = self._pending_ref
            if ref.shape[:2] != (h, w):
                ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
            self._set_reference(ref)

    def _set_reference(self, bgr: np.ndarray) -> None:
        self.check.set_reference(bgr)
        if self.road is not None:
            self.road.set_reference(bgr)

    @property
    def box_px(self) -> tuple[int, int, int, int]:
        src = self.road or self.gauge
        return src.box_px if src is not None else (0, 0, 0, 0)

    # per sample ------------------------------------------------------------------------

    def update(self, bgr: np.ndarray, now: datetime) -> FloodOutput:
        self._setup(bgr)
        h = bgr.shape[0]
        if self.gauge is not None:
            value, conf, row = self.gauge.measure(bgr)
            g = self.gauge
            water_from = float(g.p0[1] + (g.p1[1] - g.p0[1]) * row / g.length) / h
        else:
            assert self.road is not None
            water_from = float(self.road.box_px[1]) / h
        reason = self.check.check(bgr, water_from)
        if reason is None and self.check.reference is None:
            self._set_reference(bgr)  # the first usable view becomes the reference
        if reason is not None:
            # the temporal median must not mix unusable frames into the next readings
            if self.gauge:
                self.gauge.reset()
            if self.road:
                self.road.reset()
            return self._finish(now, None, reason)
        if self.gauge is not None:
            out = self._finish(
                now, value, None if value is not None else "no_waterline", round(conf, 3)
            )
            out.reading.confidence = round(conf, 3)
            p = self.gauge.p0 + (self.gauge.p1 - self.gauge.p0) * row / self.gauge.length
            n = np.array([-(self.gauge.p1 - self.gauge.p0)[1], (self.gauge.p1 - self.gauge.p0)[0]])
            n = n / np.linalg.norm(n) * (self.gauge.half + 6)
            a, b = p - n, p + n
            out.waterline_px = ((int(a[0]), int(a[1])), (int(b[0]), int(b[1])))
            return out
        assert self.road is not None
        cover, depth, _mask = self.road.measure(bgr)
        out = self._finish(now, depth, None)
        out.reading.cover = round(cover, 3)
        first = self.levels[0].level_cm
        if cover < self.cfg.wet_cover:
            out.reading.depth_class = "dry"
        elif depth < first:
            out.reading.depth_class = "wet"
        else:
            names = [lv.name for lv in self.levels if depth >= lv.level_cm]
            out.reading.depth_class = names[-1]
        return out

    def missing(self, now: datetime) -> FloodOutput:
        """No frame for several periods (dead or frozen stream)."""
        return self._finish(now, None, "no_frames")

    def _finish(
        self,
        now: datetime,
        value: float | None,
        reason: str | None,
        confidence: float | None = None,
    ) -> FloodOutput:
        reading, changes = self.machine.update(now, value, reason, confidence)
        out = FloodOutput(reading)
        for ch in changes:
            key = ch.level.name
            if ch.kind == "reached":
                ev = self._open[key] = _Open(uuid.uuid4(), now)
                out.transitions.append(self._transition("new", ev, key, now, reading, ch.level))
            else:
                ev = self._open.pop(key)  # type: ignore[assignment]
                ev.seq += 1
                tr = self._transition("end", ev, key, now, reading, ch.level)
                tr.end_time = now
                out.transitions.append(tr)
        if reading.state == UNKNOWN:
            self._unknown_run += 1
            if self._unknown_run == self.cfg.unknown_after and "__unknown" not in self._open:
                ev = self._open["__unknown"] = _Open(uuid.uuid4(), now)
                out.transitions.append(self._transition("new", ev, "__unknown", now, reading))
        else:
            self._unknown_run = 0
            ev = self._open.pop("__unknown", None)  # type: ignore[assignment]
            if ev is not None:
                ev.seq += 1
                tr = self._transition("end", ev, "__unknown", now, reading)
                tr.end_time = now
                out.transitions.append(tr)
        return out

    def _transition(
        self,
        kind: str,
        ev: _Open,
        key: str,
        now: datetime,
        reading: Reading,
        level: FloodLevel | None = None,
    ) -> Transition:
        w, h = self._wh or (1, 1)
        x1, y1, x2, y2 = self.box_px
        attrs: dict[str, str | int | float | bool | None] = {
            "hotspot": self.cfg.hotspot,
            "setup": self.cfg.setup,
            "level_cm": None if reading.level_cm is None else round(reading.level_cm, 1),
        }
        if level is not None:
            attrs["threshold_cm"] = level.level_cm
        else:
            attrs["reason"] = reading.reason
        return Transition(
            type=kind,  # type: ignore[arg-type]
            event_id=ev.event_id,
            seq=ev.seq,
            label=key if level is not None else "unknown",
            start_time=ev.start,
            frame_time=now,
            score=1.0 if reading.confidence is None else min(1.0, max(0.0, reading.confidence)),
            box=(x1 / w, y1 / h, min(1.0, x2 / w), min(1.0, y2 / h)),
            box_px=(x1, y1, x2, y2),
            snapshot=kind == "new",
            kind="flood_level" if level is not None else "flood_unknown",
            attributes=attrs,
        )

    def close(self, now: datetime) -> list[Transition]:
        out = []
        for key, ev in list(self._open.items()):
            ev.seq += 1
            reading = Reading(now, UNKNOWN, self.machine.level_state, None, None, "stopped")
            lv = next((lv for lv in self.levels if lv.name == key), None)
            tr = self._transition("end", ev, key, now, reading, lv)
            tr.end_time = now
            out.append(tr)
        self._open.clear()
        return out
