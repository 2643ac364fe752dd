"""The ``line_count`` analytic at run time: detections -> ByteTrack -> line crossings ->
a reading of counts every interval.

Why a crossing is more than a sign change of the side: a box jitters by a few pixels
from frame to frame, and the Kalman filter overshoots a vehicle that brakes. A vehicle
stopped on the line would otherwise count every time its anchor flips sides, and one
that stops just short would count once the filter carried it a pixel past. So, per track
and line (``LineCounter``):

- a track's side is *settled* only outside a band of ``margin`` around the line; inside
  the band nothing changes;
- leaving the band on the other side starts a *pending* crossing, if the path from the
  last settled point meets the segment itself (``Line.crossings``); passing around an
  end (over the line's extension) settles the new side with no count;
- the pending crossing counts once the track has stayed past the band ``confirm_s`` (or
  was lost there); coming back into the band cancels it;
- a track counts at most once per line and direction; a U-turn counts once each way.

Tracks are stitched across ID switches as the traffic rules stitch them (``_Rule``), so a
new id for the same vehicle neither loses nor repeats its crossing.

Counts go out as a ``Reading`` at each interval boundary (multiples of ``interval_s``
since the epoch, so cameras line up), with ``coverage``, the share of the interval that
was analysed: a dead stream gives counts of None, never a false zero, and a partial one
says so. ``close`` publishes the partial interval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from edge.analytics.base import Analytic, CameraContext, Outputs, Reading, Sample, Schedule
from edge.analytics.geometry import Line
from edge.analytics.plugins.line_count.config import (
    DIRECTIONS,
    TOTAL,
    LineCountAnalytic,
    key_class,
)
from edge.analytics.tracking import ByteTrack, Tracks
from edge.analytics.traffic import _Rule
from edge.inference.detections import keep_classes

log = logging.getLogger(__name__)

GRACE_S = 2.0  # tick closes an interval this long after its end (late frames first)
MAX_EMPTY = 10  # intervals without frames published after a gap; beyond, skipped


@dataclass(frozen=True)
class Crossing:
    line: int  # index into the counter's lines
    direction: int  # +1 forward, -1 backward
    class_id: int
    track: int  # the counter's (stitched) track id
    time: float  # when the track left the band on the far side


@dataclass
class _State:
    """One track's state against every line, (L,) arrays."""

    settled: np.ndarray  # int8: -1 / +1 the side it is known on, 0 not yet
    start: np.ndarray  # (L, 2) float: last point clearly on the settled side
    pending: np.ndarray  # int8: the direction of a crossing not yet confirmed, 0 none
    since: np.ndarray  # float: when the pending crossing left the band
    done: np.ndarray  # (L, 2) bool: counted forward, backward
    last_t: float = 0.0
    class_id: int = -1

    @classmethod
    def new(cls, n_lines: int) -> _State:
        return cls(
            np.zeros(n_lines, np.int8),
            np.full((n_lines, 2), np.nan),
            np.zeros(n_lines, np.int8),
            np.full(n_lines, np.nan),
            np.zeros((n_lines, 2), bool),
        )


class LineCounter(_Rule):
    """Crossings of directed lines by tracks (fractions of the frame) over time."""

    name = "line_count"

    def __init__(
        self,
        lines: Sequence[Line],
        margin: float = 0.01,
        confirm_s: float = 0.5,
        lost_s: float = 2.0,
    ) -> None:
        super().__init__(None)
        self.lines = list(lines)
        self.margin = margin
        self.confirm_s = confirm_s
        self.lost_s = lost_s  # a track unseen this long is gone: its pending crossing counts
        self._tracks: dict[int, _State] = {}
        self._last_forget = -math.inf

    def _state(self) -> list[dict]:
        return [self._tracks]

    def update(self, tracks: Tracks, t: float) -> list[Crossing]:
        """Feed one frame's tracks (anchors in fractions) at time ``t`` (seconds)."""
        out = self.flush_lost(t)
        if len(tracks):
            out += self._step(tracks, t)
        if t - self._last_forget > 60:
            self._last_forget = t
            self.forget(t)
        return out

    def _step(self, tracks: Tracks, t: float) -> list[Crossing]:
        keys = self._ids(tracks, t)
        m = self.margin
        pts = tracks.anchors().astype(np.float64)
        states = [self._tracks.get(k) or _State.new(len(self.lines)) for k in keys]
        settled = np.stack([s.settled for s in states])  # (N, L)
        start = np.stack([s.start for s in states])  # (N, L, 2)
        pending = np.stack([s.pending for s in states])
        since = np.stack([s.since for s in states])
        done = np.stack([s.done for s in states])  # (N, L, 2)
        side = np.stack([ln.side(pts) for ln in self.lines], axis=1)  # (N, L)
        zone = np.where(side > m, 1, np.where(side < -m, -1, 0)).astype(np.int8)
        here = np.broadcast_to(pts[:, None, :], start.shape)

        # back into the band (or behind it): a pending crossing is cancelled
        pending[(pending == 1) & (side <= m)] = 0
        pending[(pending == -1) & (side >= -m)] = 0
        # the first settled side; staying on it moves its last point
        first = (settled == 0) & (zone != 0)
        settled[first] = zone[first]
        stay = (zone != 0) & (zone == settled)
        pending[stay] = 0
        start[stay] = here[stay]
        # out of the band on the other side: over the segment, or around its end?
        flip = (zone != 0) & (zone == -settled) & (pending == 0)
        for j, ln in enumerate(self.lines):
            rows = np.nonzero(flip[:, j])[0]
            if len(rows) == 0:
                continue
            c = ln.crossings(start[rows, j], pts[rows], m)
            over, around = rows[c != 0], rows[c == 0]
            pending[over, j] = c[c != 0]
            since[over, j] = t
            settled[around, j] = zone[around, j]
            start[around, j] = pts[around]
        # a pending crossing that held long enough counts (once per direction)
        ready = (pending != 0) & (t - since >= self.confirm_s)
        out = []
        for i, j in zip(*np.nonzero(ready), strict=True):
            d = int(pending[i, j])
            col = 0 if d > 0 else 1
            if not done[i, j, col]:
                done[i, j, col] = True
                out.append(
                    Crossing(int(j), d, int(tracks.class_id[i]), keys[i], float(since[i, j]))
                )
            settled[i, j] = d
            start[i, j] = pts[i]
            pending[i, j] = 0
        for i, k in enumerate(keys):
            self._tracks[k] = _State(
                settled[i], start[i], pending[i], since[i], done[i], t, int(tracks.class_id[i])
            )
        return out

    def flush_lost(self, t: float, everything: bool = False) -> list[Crossing]:
        """Tracks unseen for ``lost_s`` (all with ``everything``): their pending crossing
        counts (they were last seen past the band), and they stop being watched."""
        out = []
        for k, s in list(self._tracks.items()):
            if not everything and t - s.last_t < self.lost_s:
                continue
            for j in np.nonzero(s.pending)[0]:
                d = int(s.pending[j])
                if not s.done[j, 0 if d > 0 else 1]:
                    out.append(Crossing(int(j), d, s.class_id, k, float(s.since[j])))
            del self._tracks[k]
        return out


class IntervalCounts:
    """Counts per key over intervals aligned to multiples of ``interval_s``, with the
    share of each interval that was analysed (frames at most ``max_gap_s`` apart)."""

    def __init__(self, keys: Sequence[str], interval_s: float, max_gap_s: float) -> None:
        self.keys = list(keys)
        self.interval_s = interval_s
        self.max_gap_s = max_gap_s
        self.start: float | None = None
        self.end = 0.0
        self.counts = dict.fromkeys(self.keys, 0)
        self.covered = 0.0
        self.samples = 0
        self.prev: float | None = None

    def _boundary_after(self, t: float) -> float:
        return (math.floor(t / self.interval_s) + 1) * self.interval_s

    def sample(self, t: float) -> list[Reading]:
        """A frame was analysed at ``t``: close the intervals that ended before it."""
        if self.start is None:
            self.start, self.end = t, self._boundary_after(t)
        gap = None if self.prev is None else t - self.prev
        seg = (self.prev, t) if gap is not None and 0 < gap <= self.max_gap_s else None
        out = self.advance(t, seg)
        if seg is not None:
            self._cover(seg)
        self.samples += 1
        self.prev = t
        return out

    def advance(self, t: float, seg: tuple[float, float] | None = None) -> list[Reading]:
        """Close every interval that ended by ``t`` (a tick calls it with no frames)."""
        out: list[Reading] = []
        if self.start is None:
            return out
        while t >= self.end:
            if seg is not None:
                self._cover(seg)
            if len(out) < MAX_EMPTY:
                out.append(self.reading(self.end))
            self.reset(self.end)
            if t - self.end > MAX_EMPTY * self.interval_s:  # a long dead stretch: skip it
                self.reset(self._boundary_after(t) - self.interval_s)
        return out

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def reading(self, end: float) -> Reading:
        assert self.start is not None
        period = end - self.start
        coverage = min(1.0, self.covered / period) if period > 0 else 0.0
        seen = self.samples > 0
        values: dict[str, float | None] = {
            k: (float(v) if seen else None) for k, v in self.counts.items()
        }
        values["coverage"] = round(coverage, 3)
        units = dict.fromkeys(self.counts, "count")
        units["coverage"] = "ratio"
        return Reading(
            time=datetime.fromtimestamp(end, UTC),
            values=values,
            units=units,
            period_s=period if period > 0 else None,
            state=None if seen else "no_frames",
        )

    def _cover(self, seg: tuple[float, float]) -> None:
        assert self.start is not None
        lo, hi = max(seg[0], self.start), min(seg[1], self.end)
        self.covered += max(0.0, hi - lo)

    def reset(self, start: float) -> None:
        self.start, self.end = start, start + self.interval_s
        self.counts = dict.fromkeys(self.keys, 0)
        self.covered = 0.0
        self.samples = 0


class LineCountRuntime(Analytic):
    kind = "line_count"

    def __init__(self, cfg: LineCountAnalytic, ctx: CameraContext) -> None:
        names = ctx.class_names(cfg.model)
        unknown = [c for c in cfg.classes if c not in names]
        if unknown:
            raise ValueError(
                f"analytic {cfg.name!r}: classes {unknown} are not in model {cfg.model!r}"
            )
        self.cfg = cfg
        self.names = names
        self.class_ids = np.asarray([names.index(c) for c in cfg.classes], np.int32)
        self.label = {
            int(i): key_class(c) for i, c in zip(self.class_ids, cfg.classes, strict=True)
        }
        self.tracker = ByteTrack(
            high_thresh=cfg.track_score,
            low_thresh=cfg.min_score,
            new_track_thresh=min(1.0, cfg.track_score + 0.1),
            fps_hint=cfg.fps,
            num_classes=len(names),
        )
        self.counter = LineCounter(
            [Line(ln.a, ln.b, forward=ln.direction) for ln in cfg.lines],
            margin=cfg.margin,
            confirm_s=cfg.confirm_s,
            lost_s=self.tracker.lost_ttl_s + 0.5,
        )
        keys = [
            f"{ln.name}.{c}.{d}"
            for ln in cfg.lines
            for c in [*self.label.values(), TOTAL]
            for d in DIRECTIONS
        ]
        self.counts = IntervalCounts(keys, cfg.interval_s, max_gap_s=max(1.0, 3.0 / cfg.fps))
        self.zone = cfg.lines[0].name if len(cfg.lines) == 1 else "lines"
        self.schedule = Schedule(
            period_s=1.0 / cfg.fps,
            model=cfg.model,
            min_score=cfg.min_score,
            priority=cfg.priority,
        )

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        t = sample.time.timestamp()
        readings = self.counts.sample(t)
        dets = keep_classes(sample.detections, self.class_ids, len(self.names), self.cfg.min_score)
        tracks = self.tracker.update(dets, t)
        w, h = sample.wh
        scale = np.array([w, h, w, h], np.float32)
        norm = Tracks(
            tracks.track_id, tracks.xyxy / scale, tracks.class_id, tracks.confidence,
            tracks.class_share,
        )  # fmt: skip
        self._count(self.counter.update(norm, t))
        return Outputs(readings=readings)

    def tick(self, now: datetime) -> Outputs:
        t = now.timestamp()
        if self.counts.prev is not None and t - self.counts.prev < GRACE_S:
            return Outputs()  # frames are flowing: update closes the intervals
        self._count(self.counter.flush_lost(t))
        return Outputs(readings=self.counts.advance(t - GRACE_S))

    def close(self, now: datetime) -> Outputs:
        """The worker stops: pending crossings count, and the partial interval goes out."""
        t = now.timestamp()
        self._count(self.counter.flush_lost(t, everything=True))
        out = self.counts.advance(t)
        if self.counts.start is not None and t > self.counts.start:
            out.append(self.counts.reading(t))
            self.counts.reset(t)
        return Outputs(readings=out)

    def _count(self, crossings: list[Crossing]) -> None:
        for c in crossings:
            label = self.label.get(c.class_id)
            if label is None:  # the vote cannot leave the analytic's classes; be safe
                continue
            line = self.cfg.lines[c.line].name
            d = DIRECTIONS[0] if c.direction > 0 else DIRECTIONS[1]
            self.counts.add(f"{line}.{label}.{d}")
            self.counts.add(f"{line}.{TOTAL}.{d}")
            log.debug(
                "line crossing",
                extra={"analytic": self.cfg.name, "line": line, "class": label, "dir": d},
            )


def build(cfg: LineCountAnalytic, ctx: CameraContext) -> LineCountRuntime:
    return LineCountRuntime(cfg, ctx)
