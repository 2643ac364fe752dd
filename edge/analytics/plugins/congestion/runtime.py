"""The ``congestion`` analytic at run time: occupancy and queue of a lane, over time.

Why these measures: a jam is a lane full of vehicles that stays full. Each sample
measures, from that sample's detections alone (no tracking: a standing queue is what
trackers handle worst, and nothing here needs identities):

- ``occupancy``: the share of the zone's area covered by vehicle boxes, clipped to the
  zone. It is counted on a coarse grid of cell centres inside the zone (``LaneGrid``,
  ``grid`` x ``grid`` over its bounding box), every box against every cell in one
  numpy comparison, so overlapping boxes are not counted twice. A box is the vehicle's
  image, not its footprint: under perspective it also covers some road behind it, so
  occupancy reads higher than a plan view would; thresholds are set for boxes.
- ``vehicles``: boxes whose anchor (bottom-centre) lies in the zone.
- ``queue_length``: the zone cut into ``grid`` slices across its axis; a slice is occupied
  when a third of its cells are. With ``direction`` (the queue's traffic moves that way,
  to the head: the stop line), the axis is the direction and the queue runs from the
  head end back over occupied slices, gaps shorter than ``queue_gap`` bridged. Without
  it, the axis is the zone's longest (principal) one and the value is the share of
  slices occupied, wherever they are (there is no head to count from).

The state follows the mean of each measure over ``window_s`` (``CongestionState``): a
truck that briefly fills the view moves it little. A state is entered when the smoothed
occupancy reaches its threshold (slow, jammed) and left only when it has stayed below
the threshold minus ``hysteresis`` for ``hold_s``, so occupancy flickering around a
threshold opens one episode, not many. No state is decided before the window has been
filled with samples (after a start, or a gap in the frames): a truck in the first seconds
is not a jam. A ``congestion`` event is ``new`` when the lane becomes jammed, ``update``d
at most every ``update_interval_s`` while it stays so, and ``end``s when it leaves
jammed (or the worker stops). A reading goes out every ``interval_s`` (aligned to
multiples of it, so cameras line up); without frames its values are None, never a
false "free".
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge.analytics.base import (
    Analytic,
    CameraContext,
    Outputs,
    Reading,
    Sample,
    Schedule,
    Transition,
)
from edge.analytics.geometry import PolygonZone, RuleConfigError, inside
from edge.analytics.plugins.congestion.config import CongestionAnalytic
from edge.inference.detections import Detections

log = logging.getLogger(__name__)

STATES = ("free", "slow", "jammed")
SLICE_OCCUPIED = 1 / 3  # a slice across the lane is occupied when this share is covered
GRACE_S = 2.0  # without frames, a tick publishes a due reading this late


class LaneGrid:
    """A zone (fractions) as cell centres, and its slices along the lane's axis."""

    def __init__(
        self,
        zone: Sequence[tuple[float, float]],
        grid: int = 48,
        direction: tuple[float, float] | None = None,
        queue_gap: float = 0.15,
    ) -> None:
        poly = np.asarray(zone, np.float64)
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        steps = (np.arange(grid) + 0.5) / grid
        gx, gy = np.meshgrid(lo[0] + steps * (hi[0] - lo[0]), lo[1] + steps * (hi[1] - lo[1]))
        cells = np.stack([gx.ravel(), gy.ravel()], axis=1)
        self.cells = cells[inside(poly, cells)]
        if len(self.cells) < 4:
            raise RuleConfigError("zone: too small or degenerate for the occupancy grid")
        self.headed = direction is not None
        if direction is not None:
            axis = np.asarray(direction, np.float64)
        else:  # the principal axis of the zone's cells: along the lane
            centred = self.cells - self.cells.mean(axis=0)
            axis = np.linalg.eigh(centred.T @ centred)[1][:, -1]
        axis = axis / np.hypot(*axis)
        s = self.cells @ axis  # position along the lane; the head at the largest
        self.n_slices = grid
        span = max(float(s.max() - s.min()), 1e-9)
        # slice 0 at the head end
        self.slice_of = np.clip(((s.max() - s) / span * grid).astype(np.int64), 0, grid - 1)
        self.slice_cells = np.bincount(self.slice_of, minlength=grid).astype(np.float64)
        self.has_cells = self.slice_cells > 0
        self.gap_slices = int(math.floor(queue_gap * grid))

    def covered(self, boxes: np.ndarray) -> np.ndarray:
        """(M,) bool: the cells under any of the (N, 4) boxes (fractions)."""
        if len(boxes) == 0:
            return np.zeros(len(self.cells), bool)
        cx, cy = self.cells[None, :, 0], self.cells[None, :, 1]
        b = boxes[:, :, None]
        return np.any((cx >= b[:, 0]) & (cx <= b[:, 2]) & (cy >= b[:, 1]) & (cy <= b[:, 3]), axis=0)

    def measure(self, boxes: np.ndarray) -> tuple[float, float]:
        """(occupancy, queue_length) of one sample's boxes, each 0..1."""
        cov = self.covered(boxes)
        occupancy = float(cov.mean())
        share = np.bincount(self.slice_of, weights=cov, minlength=self.n_slices)
        occupied = (share / np.maximum(self.slice_cells, 1.0) >= SLICE_OCCUPIED) & self.has_cells
        if not self.headed:
            return occupancy, float(occupied.sum() / self.has_cells.sum())
        idx = np.nonzero(occupied)[0]
        if len(idx) == 0:
            return occupancy, 0.0
        seq = np.concatenate([[-1], idx])  # the head itself, then the occupied slices
        gaps = np.diff(seq) - 1
        broken = np.nonzero(gaps > self.gap_slices)[0]
        last = int(seq[broken[0]]) if len(broken) else int(seq[-1])
        return occupancy, (last + 1) / self.n_slices


@dataclass
class Smoothed:
    occupancy: float
    queue_length: float
    vehicles: float
    full: bool  # the window is filled with samples: a state may be decided


class Window:
    """Mean of the measures over the last ``window_s``; restarts after a gap."""

    def __init__(self, window_s: float, max_gap_s: float) -> None:
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.samples: deque[tuple[float, float, float, int]] = deque()
        self.run_start: float | None = None

    def add(self, t: float, occupancy: float, queue: float, vehicles: int) -> Smoothed:
        if self.samples and not 0 <= t - self.samples[-1][0] <= self.max_gap_s:
            self.samples.clear()  # a gap (or time going back): the window starts again
        if not self.samples:
            self.run_start = t
        self.samples.append((t, occupancy, queue, vehicles))
        while self.samples[0][0] <= t - self.window_s:
            self.samples.popleft()
        arr = np.asarray(self.samples, np.float64)
        assert self.run_start is not None
        return Smoothed(
            float(arr[:, 1].mean()),
            float(arr[:, 2].mean()),
            float(arr[:, 3].mean()),
            full=t - self.run_start >= self.window_s,
        )


class CongestionState:
    """free / slow / jammed from the smoothed occupancy, with hysteresis and hold."""

    def __init__(self, slow: float, jammed: float, hysteresis: float, hold_s: float) -> None:
        self.thresholds = np.array([-np.inf, slow, jammed])
        self.hysteresis = hysteresis
        self.hold_s = hold_s
        self.level: int | None = None  # None: not decided yet
        self.below_since: float | None = None

    @property
    def name(self) -> str:
        return "unknown" if self.level is None else STATES[self.level]

    def update(self, t: float, occupancy: float) -> int | None:
        """Feed a smoothed occupancy; the level afterwards."""
        up = int(np.nonzero(occupancy >= self.thresholds)[0][-1])
        if self.level is None or up > self.level:
            self.level, self.below_since = up, None
            return self.level
        keep = int(np.nonzero(occupancy >= self.thresholds - self.hysteresis)[0][-1])
        if keep >= self.level:
            self.below_since = None
        elif self.below_since is None:
            self.below_since = t
        if self.below_since is not None and t - self.below_since >= self.hold_s:
            self.level, self.below_since = keep, None
        return self.level


@dataclass
class _Episode:
    event_id: uuid.UUID
    start: datetime
    seq: int = 0
    last_sent: float = 0.0
    peak: float = 0.0


class CongestionRuntime(Analytic):
    kind = "congestion"

    def __init__(self, cfg: CongestionAnalytic, ctx: CameraContext) -> None:
        names = ctx.class_names(cfg.model)
        unknown = [c for c in cfg.classes if c not in names]
        if unknown:
            raise ValueError(
                f"analytic {cfg.name!r}: classes {unknown} are not in model {cfg.model!r}"
            )
        self.cfg = cfg
        self.class_ids = np.asarray([names.index(c) for c in cfg.classes], np.int32)
        self.n_classes = len(names)
        self.grid = LaneGrid(cfg.zone, cfg.grid, cfg.direction, cfg.queue_gap)
        self.zone_poly = PolygonZone(cfg.zone)
        self.window = Window(cfg.window_s, max_gap_s=max(10.0, 5.0 / cfg.fps))
        self.state = CongestionState(cfg.slow, cfg.jammed, cfg.hysteresis, cfg.hold_s)
        self.zone = cfg.zone_name
        pts = np.asarray(cfg.zone)
        self.box = (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        )
        self.episode: _Episode | None = None
        self.last: Smoothed | None = None
        self.last_t: float | None = None
        self.due: float | None = None  # the next reading
        self.wh = ctx.frame_wh
        self.schedule = Schedule(
            period_s=1.0 / cfg.fps,
            model=cfg.model,
            min_score=cfg.min_score,
            priority=cfg.priority,
        )

    # -- per sample ----------------------------------------------------------------------

    def _vehicles(self, dets: Detections, wh: tuple[int, int]) -> np.ndarray:
        """The boxes (fractions) of the analytic's classes above ``min_score``."""
        if dets.class_scores is not None and dets.class_scores.shape[1] == self.n_classes:
            score = dets.class_scores[:, self.class_ids].max(axis=1)
        else:
            score = np.where(np.isin(dets.class_id, self.class_ids), dets.confidence, 0.0)
        w, h = wh
        return dets.xyxy[score >= self.cfg.min_score].astype(np.float64) / np.array([w, h, w, h])

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        t = sample.time.timestamp()
        self.wh = sample.wh
        boxes = self._vehicles(sample.detections, sample.wh)
        occupancy, queue = self.grid.measure(boxes)
        anchors = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
        vehicles = int(self.zone_poly.contains_fractions(anchors).sum())
        sm = self.window.add(t, occupancy, queue, vehicles)
        self.last, self.last_t = sm, t
        transitions = self._judge(t, sample.time, sm) if sm.full else []
        readings = []
        if self.due is None:
            self.due = self._boundary_after(t)
        elif t >= self.due:
            readings.append(self._reading(sample.time, sm))
            self.due = self._boundary_after(t)
        return self.out(transitions, readings=readings)

    def _judge(self, t: float, now: datetime, sm: Smoothed) -> list[Transition]:
        was = self.state.level
        level = self.state.update(t, sm.occupancy)
        jammed = level == 2
        out = []
        if jammed and self.episode is None:
            self.episode = _Episode(uuid.uuid4(), now, last_sent=t, peak=sm.occupancy)
            out.append(self._transition("new", now, sm, snapshot=True))
            log.info(
                "lane jammed",
                extra={"analytic": self.cfg.name, "occupancy": round(sm.occupancy, 3)},
            )
        elif jammed and self.episode is not None:
            self.episode.peak = max(self.episode.peak, sm.occupancy)
            if t - self.episode.last_sent >= self.cfg.update_interval_s:
                self.episode.seq += 1
                self.episode.last_sent = t
                out.append(self._transition("update", now, sm, snapshot=True))
        elif self.episode is not None:
            out.append(self._end(now, sm))
            log.info(
                "lane no longer jammed",
                extra={"analytic": self.cfg.name, "state": self.state.name, "was": was},
            )
        return out

    def _end(self, now: datetime, sm: Smoothed | None) -> Transition:
        assert self.episode is not None
        self.episode.seq += 1
        done = self._transition("end", now, sm)
        done.end_time = now
        self.episode = None
        return done

    def _transition(
        self, step: str, now: datetime, sm: Smoothed | None, snapshot: bool = False
    ) -> Transition:
        ep = self.episode
        assert ep is not None
        w, h = self.wh
        x1, y1, x2, y2 = self.box
        attrs: dict[str, str | int | float | bool | None] = {"state": self.state.name}
        if sm is not None:
            attrs |= {
                "occupancy": round(sm.occupancy, 3),
                "queue_length": round(sm.queue_length, 3),
                "vehicles": round(sm.vehicles, 1),
            }
        attrs["peak_occupancy"] = round(ep.peak, 3)
        return Transition(
            type=step,  # type: ignore[arg-type]
            event_id=ep.event_id,
            seq=ep.seq,
            label="jammed",
            start_time=ep.start,
            frame_time=now,
            score=round(min(1.0, ep.peak), 4),
            box=self.box,
            box_px=(int(x1 * w), int(y1 * h), int(x2 * w), int(y2 * h)),
            snapshot=snapshot,
            attributes=attrs,
        )

    # -- readings --------------------------------------------------------------------------

    def _boundary_after(self, t: float) -> float:
        return (math.floor(t / self.cfg.interval_s) + 1) * self.cfg.interval_s

    def _reading(self, at: datetime, sm: Smoothed | None) -> Reading:
        values: dict[str, float | None]
        if sm is None:
            values = {"occupancy": None, "queue_length": None, "vehicles": None}
            state = "no_frames"
        else:
            values = {
                "occupancy": round(sm.occupancy, 3),
                "queue_length": round(sm.queue_length, 3),
                "vehicles": round(sm.vehicles, 1),
            }
            state = self.state.name if sm.full else "unknown"
        return Reading(
            time=at,
            values=values,
            units={"occupancy": "ratio", "queue_length": "ratio", "vehicles": "count"},
            period_s=self.cfg.interval_s,
            state=state,
        )

    def tick(self, now: datetime) -> Outputs:
        """Without frames a due reading still goes out, saying it saw nothing."""
        t = now.timestamp()
        if self.due is None or self.last_t is None or t < self.due + GRACE_S:
            return Outputs()
        if t - self.last_t < GRACE_S:
            return Outputs()  # frames are flowing: update publishes it
        self.due = self._boundary_after(t)
        return Outputs(readings=[self._reading(now, None)])

    def close(self, now: datetime) -> Outputs:
        """The worker stops: an open jam ends (the state is not known past this), and
        the last state goes out as a reading."""
        transitions = [self._end(now, self.last)] if self.episode is not None else []
        readings = [self._reading(now, self.last)] if self.last_t is not None else []
        return self.out(transitions, readings=readings)


def build(cfg: CongestionAnalytic, ctx: CameraContext) -> CongestionRuntime:
    return CongestionRuntime(cfg, ctx)
