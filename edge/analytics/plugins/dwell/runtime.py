"""``sidewalk_encroachment`` and ``illegal_parking`` at run time: ByteTrack, then ``DwellRule``.

Why a rule of its own rather than the traffic analytic's ``no_stopping``: that rule is one
of a junction's, reports a vehicle once and then forgets it, and has no end. A sidewalk or
a no-parking kerb is watched on its own (often by a camera with no junction in view), and
an operator reviewing the event wants to know how long the vehicle stood and when it left;
so here a vehicle's *stay* is the unit: one event per stay, ``new`` when it has stood
beyond the dwell time, ``update`` with the dwell so far, ``end`` when it leaves.

- Standing is what ``no_stopping`` means by it: over the whole dwell window the anchor
  (bottom-centre of the box, where the wheels meet the ground) stays within
  ``still_distance`` of its mean position. A vehicle driving through, or a queue creeping
  along the kerb, never stands that long.
- Only samples seen inside count towards the dwell, and at least half of the window's
  samples must be (a car astride the edge, its box jittering across it, is not in it).
  ``moved`` is the extent of the anchor's path after a 2 s running mean takes the boxes'
  jitter out; the window is 2 s longer to match, so a stand 1 s short is still short.
- A stay ends after ``max_missing`` samples in a row in which the vehicle is unseen, or
  outside the zone (allowed polygons, ``exclude``, count as outside) and away from where
  it stood. Shorter gaps (a bus passing in front, a missed detection) are forgiven, before
  and after the event; a box jittering across the edge is not a leave at all. A vehicle
  that leaves for longer and comes back starts a new stay and a new dwell.
- A tracker that gives a hidden vehicle a new id would start a second stay and, a dwell
  later, a second event for the same car. A new id that appears within ``still_distance``
  of a stay not seen in this sample continues that stay.
- ``hours``: outside them the rule does not apply; stays are dropped and open events end,
  so a car parked before a ban starts is counted from the ban's start.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.base import CameraContext, Transition, held_transition
from edge.analytics.geometry import PolygonZone
from edge.analytics.plugins.dwell.config import DwellAnalytic
from edge.analytics.tracked import TrackedRuleRuntime
from edge.analytics.tracking import Tracks

log = logging.getLogger(__name__)

STALE_S = 60.0  # no samples this long (a dead stream): open events end at the next tick
MIN_SHARE = 0.5  # of the dwell window's samples, seen inside (a car astride the edge is not)
SMOOTH_S = 2.0  # the running mean that takes jitter out of ``moved``


def in_hours(hour: float, hours: tuple[float, float] | None) -> bool:
    """Whether a local hour (fractional) is in [from, to), which may wrap midnight."""
    if hours is None:
        return True
    a, b = hours
    return a <= hour < b if a < b else (hour >= a or hour < b)


def local_hour(t: float, tz: ZoneInfo) -> float:
    local = datetime.fromtimestamp(t, tz)
    return local.hour + local.minute / 60 + local.second / 3600


@dataclass
class _Stay:
    """One vehicle's stay in the zone, and its event once it has stood long enough."""

    track_id: int
    last_here: float  # last seen inside, or just outside where it stood (astride the edge)
    anchor: np.ndarray  # where it was last seen inside
    path: deque[tuple[float, float, float]] = field(default_factory=deque)  # (t, x, y) inside
    label: str = ""
    score: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    box_px: tuple[int, int, int, int] = (0, 0, 0, 0)
    event_id: uuid.UUID | None = None
    seq: int = 0
    standing_since: float = 0.0
    last_sent: float = 0.0


def moved(path: np.ndarray, k: int) -> float:
    """How far an anchor moved over a window of positions (M, 2): the diagonal of the box
    around them, after a running mean over ``k`` samples takes out the boxes' jitter."""
    if k > 1 and len(path) > k:
        c = np.cumsum(np.vstack([np.zeros((1, 2)), path]), axis=0)
        path = (c[k:] - c[:-k]) / k
    return float(np.hypot(*np.ptp(path, axis=0)))


class DwellRule:
    """Tracks (pixels) and time in, event transitions out; knows no video or MQTT."""

    def __init__(self, cfg: DwellAnalytic, class_names: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.kind = cfg.type
        self.names = class_names
        self.zone_name = cfg.zone_name or cfg.name
        self.zone = PolygonZone(cfg.zone)
        self.exclude = [PolygonZone(p) for p in cfg.exclude]
        self.period = 1.0 / cfg.fps
        self.leave_s = (cfg.max_missing - 0.5) * self.period  # max_missing samples, give or take
        self.tz = ZoneInfo(cfg.timezone)
        self.smooth = max(1, round(SMOOTH_S * cfg.fps))
        # the running mean blurs the first and last samples of a stand into the moves
        # around it; the window is longer by its width, so a stand still needs the dwell
        self.margin = (self.smooth - 1) / cfg.fps
        self.window = cfg.max_dwell_s + self.margin
        self.stays: dict[int, _Stay] = {}  # by the rule's key (the first tracker id of the stay)
        self._alias: dict[int, int] = {}  # tracker id -> key, after an id switch
        self.last_t: float | None = None

    @property
    def open_events(self) -> int:
        return sum(1 for s in self.stays.values() if s.event_id is not None)

    def allowed(self, anchors: np.ndarray) -> np.ndarray:
        """(N,) bool: anchors (fractions) inside the zone and in no excluded polygon."""
        ins = self.zone.contains_fractions(anchors)
        for ex in self.exclude:
            ins &= ~ex.contains_fractions(anchors)
        return ins

    def update(self, tracks: Tracks, wh: tuple[int, int], now: datetime) -> list[Transition]:
        t = now.timestamp()
        self.last_t = t
        if not in_hours(local_hour(t, self.tz), self.cfg.hours):
            return self._end_all(now, "hours")
        w, h = wh
        scale = np.array([w, h, w, h], np.float32)
        boxes = tracks.xyxy / scale
        anchors = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
        ins = self.allowed(anchors)
        out: list[Transition] = []
        present = set(tracks.track_id.tolist())
        seen: set[int] = set()
        for i in np.nonzero(ins)[0].tolist():
            tid = int(tracks.track_id[i])
            key = self._key(tid, anchors[i], present, seen)
            seen.add(key)
            stay = self.stays.get(key)
            if stay is None:
                stay = self.stays[key] = _Stay(tid, t, anchors[i])
            stay.track_id, stay.last_here, stay.anchor = tid, t, anchors[i]
            x1, y1, x2, y2 = (float(v) for v in np.clip(boxes[i], 0.0, 1.0))
            stay.box = (round(x1, 4), round(y1, 4), round(x2, 4), round(y2, 4))
            px = np.clip(tracks.xyxy[i], 0, scale)
            stay.box_px = tuple(int(v) for v in px)  # type: ignore[assignment]
            stay.score = float(tracks.confidence[i])
            stay.label = self.names[int(tracks.class_id[i])]
            out += self._stand(key, stay, t, now)
        for i in np.nonzero(~ins)[0].tolist():
            # outside, but where it stood: its box jitters across the edge; not a leave
            tid = int(tracks.track_id[i])
            near = self.stays.get(self._alias.get(tid, tid))
            if near is not None and near.track_id == tid and near.last_here < t:
                if float(np.hypot(*(near.anchor - anchors[i]))) < self.cfg.still_distance:
                    near.last_here = t
        for key, stay in list(self.stays.items()):
            if t - stay.last_here > self.leave_s:
                out += self._leave(key, stay, now, "left")
        return out

    def _key(self, tid: int, anchor: np.ndarray, present: set[int], seen: set[int]) -> int:
        """The stay a tracker id belongs to: its own, an earlier id's (an id switch), or new."""
        if tid in self._alias:
            return self._alias[tid]
        if tid in self.stays:
            return tid
        best, best_d = None, self.cfg.still_distance
        for key, stay in self.stays.items():
            if key in seen or stay.track_id in present:
                continue
            d = float(np.hypot(*(stay.anchor - anchor)))
            if d <= best_d:
                best, best_d = key, d
        if best is None:
            return tid
        self._alias[tid] = best
        return best

    def _stand(self, key: int, stay: _Stay, t: float, now: datetime) -> list[Transition]:
        cfg = self.cfg
        stay.path.append((t, float(stay.anchor[0]), float(stay.anchor[1])))
        while len(stay.path) > 2 and stay.path[1][0] <= t - self.window:
            stay.path.popleft()  # the window, plus the sample just before it
        if stay.event_id is not None:
            if t - stay.last_sent >= cfg.update_interval_s:
                stay.seq += 1
                stay.last_sent = t
                return [self._transition(stay, "update", now)]
            return []
        span = t - stay.path[0][0]
        if span < self.window or len(stay.path) < MIN_SHARE * (span * cfg.fps + 1):
            return []
        if moved(np.array([(x, y) for _, x, y in stay.path]), self.smooth) >= cfg.still_distance:
            return []
        stay.event_id = uuid.uuid4()
        stay.standing_since = stay.path[0][0] + self.margin / 2
        stay.last_sent = t
        log.info(
            "vehicle standing",
            extra={
                "analytic": cfg.name,
                "kind": self.kind,
                "track": stay.track_id,
                "dwell_s": round(t - stay.standing_since, 1),
            },
        )
        return [self._transition(stay, "new", now, snapshot=True)]

    def _transition(
        self,
        stay: _Stay,
        step: Literal["new", "update", "end"],
        now: datetime,
        reason: str | None = None,
        snapshot: bool = False,
    ) -> Transition:
        assert stay.event_id is not None
        last = stay.last_here if step == "end" else now.timestamp()
        attrs: dict[str, str | int | float | bool | None] = {
            "track_id": stay.track_id,
            "dwell_s": round(last - stay.standing_since, 1),
            "zone": self.zone_name,
            "max_dwell_s": self.cfg.max_dwell_s,
        }
        return held_transition(
            stay,
            step,
            now,
            label=stay.label,
            start=stay.standing_since,
            last=stay.last_here,
            kind=self.kind,
            zone=self.zone_name,
            attributes=attrs,
            reason=reason,
            snapshot=snapshot,
        )

    def _leave(self, key: int, stay: _Stay, now: datetime, reason: str) -> list[Transition]:
        del self.stays[key]
        for tid in [tid for tid, k in self._alias.items() if k == key]:
            del self._alias[tid]
        if stay.event_id is None:
            return []
        stay.seq += 1
        return [self._transition(stay, "end", now, reason)]

    def _end_all(self, now: datetime, reason: str) -> list[Transition]:
        out: list[Transition] = []
        for key, stay in list(self.stays.items()):
            out += self._leave(key, stay, now, reason)
        return out

    def tick(self, now: datetime) -> list[Transition]:
        """A dead stream: end what is open once no sample has come for ``STALE_S``."""
        if self.last_t is None or now.timestamp() - self.last_t < max(STALE_S, 2 * self.leave_s):
            return []
        return self._end_all(now, "no_frames")

    def close(self, now: datetime) -> list[Transition]:
        return self._end_all(now, "closed")


class DwellAnalyticRuntime(TrackedRuleRuntime):
    """Detections of the watched classes -> one ByteTrack for the runtime -> ``DwellRule``."""

    rule: DwellRule

    def __init__(self, cfg: DwellAnalytic, ctx: CameraContext) -> None:
        self.kind = cfg.type
        super().__init__(cfg, ctx, DwellRule(cfg, ctx.class_names(cfg.model)))


def build(cfg: DwellAnalytic, ctx: CameraContext) -> DwellAnalyticRuntime:
    return DwellAnalyticRuntime(cfg, ctx)
