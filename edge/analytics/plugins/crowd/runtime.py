"""The ``crowd`` analytic at run time: people counted per sample, an event with hysteresis,
a reading every interval.

No tracking: a crowd is a count, and a tracker on dozens of overlapping people would cost
more than the detector and add ID switches to nothing. Each sample counts the boxes of the
watched classes whose anchor (bottom-centre, where a person stands) is in the zone, after
``min_score``.

- Onset: the count is at least ``min_people`` for ``min_duration_s``; a dip shorter than
  ``gap_s`` (people hiding each other, a missed detection) does not restart the clock.
- Clear: the count stays below ``clear_below`` for ``hold_s``; any sample at or above it
  restarts the hold. Between the two thresholds the event stays as it is, so a count
  wavering around ``min_people`` is one event.
- Readings: the mean and the max count over each ``interval_s``, on intervals aligned to
  the clock (every camera's minute is the same minute on the chart). An interval in which
  no sample came still gets a reading, with no values: a gap, not a zero.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from edge.analytics.base import (
    Analytic,
    CameraContext,
    Outputs,
    Reading,
    Sample,
    Schedule,
    Transition,
    held_transition,
)
from edge.analytics.geometry import PolygonZone, RuleConfigError
from edge.analytics.plugins.crowd.config import CrowdAnalytic
from edge.inference.detections import Detections

log = logging.getLogger(__name__)

STALE_S = 60.0  # no samples this long (a dead stream): an open event ends at the next tick
MAX_GAP_READINGS = 60  # empty readings at most, after an outage, before jumping to now


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass
class _Event:
    event_id: uuid.UUID
    start: float
    people_max: int
    score: float
    box: tuple[float, float, float, float]
    box_px: tuple[int, int, int, int]
    seq: int = 0
    last_sent: float = 0.0
    low_since: float | None = None
    last_seen: float = 0.0  # last sample at or above clear_below


class CrowdRule:
    """Detections (pixels) and time in; event transitions and readings out."""

    def __init__(self, cfg: CrowdAnalytic, class_names: tuple[str, ...]) -> None:
        unknown = [c for c in cfg.classes if c not in class_names]
        if unknown:
            raise RuleConfigError(
                f"analytics.{cfg.name}.classes: {unknown} are not in model {cfg.model!r}"
            )
        self.cfg = cfg
        self.class_ids = np.asarray([class_names.index(c) for c in cfg.classes], np.int32)
        self.label = cfg.classes[0] if len(cfg.classes) == 1 else "people"
        self.zone = PolygonZone(cfg.zone)
        self.zone_name = cfg.zone_name or cfg.name
        self.clear_at = cfg.clear_at
        self.high_since: float | None = None  # start of the current run at >= min_people
        self.last_high: float | None = None
        self.event: _Event | None = None
        self.last_t: float | None = None
        # the current reading interval: its start, and the counts of its samples
        self.iv_start: float | None = None
        self.counts: list[int] = []

    @property
    def state(self) -> str:
        return "crowd" if self.event is not None else "clear"

    def count(self, dets: Detections, wh: tuple[int, int]) -> Detections:
        """The boxes counted: watched classes, ``min_score``, anchor in the zone."""
        keep = np.isin(dets.class_id, self.class_ids) & (dets.confidence >= self.cfg.min_score)
        dets = dets[keep]
        return dets[self.zone.contains(dets.anchors(), wh)]

    def update(
        self, dets: Detections, wh: tuple[int, int], now: datetime
    ) -> tuple[list[Transition], list[Reading]]:
        t = now.timestamp()
        self.last_t = t
        readings = self._roll(t)
        mine = self.count(dets, wh)
        n = len(mine)
        self.counts.append(n)
        return self._judge(n, mine, wh, t, now), readings

    # -- the event ------------------------------------------------------------------------

    def _judge(
        self, n: int, mine: Detections, wh: tuple[int, int], t: float, now: datetime
    ) -> list[Transition]:
        cfg = self.cfg
        if n >= cfg.min_people:
            if self.high_since is None or self.last_high is None or t - self.last_high > cfg.gap_s:
                self.high_since = t
            self.last_high = t
        elif self.last_high is not None and t - self.last_high > cfg.gap_s:
            self.high_since = self.last_high = None
        ev = self.event
        if ev is None:
            if self.high_since is None or self.last_high != t:
                return []
            if t - self.high_since < cfg.min_duration_s:
                return []
            score, box, box_px = self._box(mine, wh)
            self.event = _Event(uuid.uuid4(), self.high_since, n, score, box, box_px)
            self.event.last_sent = t
            self.event.last_seen = t
            log.info(
                "crowd",
                extra={"analytic": cfg.name, "people": n, "zone": self.zone_name},
            )
            return [self._transition("new", n, now, snapshot=True)]
        ev.people_max = max(ev.people_max, n)
        if n >= self.clear_at:
            ev.low_since = None
            ev.last_seen = t
            if n > 0:
                ev.score, ev.box, ev.box_px = self._box(mine, wh)
        elif ev.low_since is None:
            ev.low_since = t
        if ev.low_since is not None and t - ev.low_since >= cfg.hold_s:
            return self._end(n, now, "cleared")
        if t - ev.last_sent >= cfg.update_interval_s:
            ev.seq += 1
            ev.last_sent = t
            return [self._transition("update", n, now)]
        return []

    def _box(
        self, mine: Detections, wh: tuple[int, int]
    ) -> tuple[float, tuple[float, float, float, float], tuple[int, int, int, int]]:
        """Mean score and the box around the people counted (fractions, pixels)."""
        w, h = wh
        if len(mine) == 0:
            return 0.0, (0.0, 0.0, 1.0, 1.0), (0, 0, w, h)
        lo = mine.xyxy[:, :2].min(axis=0)
        hi = mine.xyxy[:, 2:].max(axis=0)
        px = np.clip(np.concatenate([lo, hi]), 0, [w, h, w, h])
        box = tuple(round(float(v), 4) for v in px / np.array([w, h, w, h], np.float32))
        return float(mine.confidence.mean()), box, tuple(int(v) for v in px)  # type: ignore[return-value]

    def _transition(
        self,
        step: Literal["new", "update", "end"],
        n: int,
        now: datetime,
        snapshot: bool = False,
        reason: str | None = None,
    ) -> Transition:
        ev = self.event
        assert ev is not None
        last = ev.last_seen if step == "end" else now.timestamp()
        attrs: dict[str, str | int | float | bool | None] = {
            "people": n,
            "people_max": ev.people_max,
            "min_people": self.cfg.min_people,
            "duration_s": round(last - ev.start, 1),
            "zone": self.zone_name,
        }
        return held_transition(
            ev,
            step,
            now,
            label=self.label,
            start=ev.start,
            last=ev.last_seen,
            kind="crowd",
            zone=self.zone_name,
            attributes=attrs,
            reason=reason,
            snapshot=snapshot,
        )

    def _end(self, n: int, now: datetime, reason: str) -> list[Transition]:
        if self.event is None:
            return []
        self.event.seq += 1
        out = [self._transition("end", n, now, reason=reason)]
        self.event = None
        self.high_since = self.last_high = None
        return out

    # -- readings -------------------------------------------------------------------------

    def _roll(self, t: float) -> list[Reading]:
        """Readings for every interval that ended by ``t``; ``t`` is in the current one."""
        step = self.cfg.interval_s
        here = math.floor(t / step) * step
        if self.iv_start is None:
            self.iv_start = here
            return []
        out = []
        while self.iv_start < here:  # time only moves on; a late sample joins the current
            out.append(self._reading())
            self.iv_start += step
            self.counts = []
            if len(out) >= MAX_GAP_READINGS:  # a long outage: no flood of empty readings
                self.iv_start = here
        return out

    def _reading(self) -> Reading:
        assert self.iv_start is not None
        step = self.cfg.interval_s
        c = self.counts
        return Reading(
            time=_dt(self.iv_start + step),
            values={
                "people": round(float(np.mean(c)), 2) if c else None,
                "people_max": float(max(c)) if c else None,
            },
            units={"people": "people", "people_max": "people"},
            period_s=step,
            state=self.state if c else None,
        )

    def tick(self, now: datetime) -> tuple[list[Transition], list[Reading]]:
        """Readings of intervals over (frames or not; a grace for samples still coming),
        and an open event's end once no sample has come for ``STALE_S``."""
        t = now.timestamp()
        grace = max(5.0, 2.0 / self.cfg.fps)
        readings = self._roll(t - grace) if self.iv_start is not None else []
        ended: list[Transition] = []
        if self.event is not None and self.last_t is not None and t - self.last_t >= STALE_S:
            ended = self._end(0, now, "no_frames")
        return ended, readings

    def close(self, now: datetime) -> list[Transition]:
        return self._end(0, now, "closed")


class CrowdAnalyticRuntime(Analytic):
    kind = "crowd"

    def __init__(self, cfg: CrowdAnalytic, ctx: CameraContext) -> None:
        self.cfg = cfg
        self.rule = CrowdRule(cfg, ctx.class_names(cfg.model))
        self.zone = self.rule.zone_name
        # no motion gating: a crowd standing still is still a crowd
        self.schedule = Schedule(
            period_s=1.0 / cfg.fps, model=cfg.model, min_score=cfg.min_score, priority=cfg.priority
        )

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        transitions, readings = self.rule.update(sample.detections, sample.wh, sample.time)
        return self.out(transitions, readings=readings)

    def tick(self, now: datetime) -> Outputs:
        transitions, readings = self.rule.tick(now)
        return self.out(transitions, readings=readings)

    def close(self, now: datetime) -> Outputs:
        return self.out(self.rule.close(now))


def build(cfg: CrowdAnalytic, ctx: CameraContext) -> CrowdAnalyticRuntime:
    return CrowdAnalyticRuntime(cfg, ctx)
