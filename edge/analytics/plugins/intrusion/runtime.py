"""The ``intrusion`` analytic at run time: ByteTrack, then ``IntrusionRule``.

Why tracks, not boxes: an intrusion is someone *entering*, once. A box in the zone says
nothing about where it came from, and a person standing in a yard would alarm every
sample. With tracks each one has a history:

- A *stay* starts at a track's first sample inside the zone. It is an intrusion when the
  zone was armed at that moment, the track was seen outside before (``from_outside``: a
  tracker's new id for someone already inside, or someone inside when the hours start,
  is no one entering), and it is then inside for ``min_inside`` samples in a row (a box
  jittering over the edge of a path beside the zone is inside one sample at a time).
  ByteTrack itself reports no track before two matched detections, so a single false box
  never gets here.
- One event per stay, and a track that alarmed alarms again only after ``rearm_s`` out
  of the zone (someone walking along its edge, in and out, is one alarm). The event ends
  when the track has been unseen or outside for ``max_missing`` samples (it left), or
  after ``max_event_s`` (someone staying in the zone does not hold an event open for
  hours; the stay is still reported, so no second alarm until it leaves and enters again).
  Someone hidden inside the zone and seen again inside has not entered again.
- A new track id that appears near where a track was lost a moment ago continues it
  (history and stay), so an ID switch at the fence neither loses the entry nor raises
  a second alarm.
- Outside the armed windows nothing starts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.base import CameraContext, Transition, held_transition
from edge.analytics.geometry import PolygonZone
from edge.analytics.plugins.intrusion.config import ArmedWindow, IntrusionAnalytic
from edge.analytics.tracked import TrackedRuleRuntime
from edge.analytics.tracking import Tracks

log = logging.getLogger(__name__)

STALE_S = 60.0  # no samples this long (a dead stream): open events end at the next tick
STITCH_S = 2.0  # a new id this soon after a track was lost, ...
STITCH_DIST = 0.05  # ... this close (fraction of the frame) to where it was, continues it
FORGET_S = 120.0  # a track unseen this long is forgotten


def armed(windows: list[ArmedWindow], local: datetime) -> bool:
    """Whether any window holds at this local time (a wrapping window belongs to the day
    it starts: Friday [22, 6) holds on Saturday before 06:00)."""
    if not windows:
        return True
    hour = local.hour + local.minute / 60 + local.second / 3600 + local.microsecond / 3.6e9
    day = local.weekday()
    for w in windows:
        a, b = w.hours
        if a < b:
            if day in w.days and a <= hour < b:
                return True
        elif (day in w.days and hour >= a) or ((day - 1) % 7 in w.days and hour < b):
            return True
    return False


@dataclass
class _Track:
    last_seen: float
    anchor: np.ndarray
    track_id: int
    outside_seen: bool = False  # seen outside since its last stay began
    in_stay: bool = False
    eligible: bool = False  # this stay began while armed, from outside
    reported: bool = False  # this stay gave its event
    stay_start: float = 0.0
    last_in: float = 0.0
    run: int = 0  # samples in a row inside
    alarmed_last: float | None = None  # last inside sample of the last stay that alarmed
    event_id: uuid.UUID | None = None
    seq: int = 0
    label: str = ""
    score: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    box_px: tuple[int, int, int, int] = (0, 0, 0, 0)


class IntrusionRule:
    """Tracks (pixels) and time in, event transitions out; knows no video or MQTT."""

    def __init__(self, cfg: IntrusionAnalytic, class_names: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.names = class_names
        self.zone = PolygonZone(cfg.zone)
        self.zone_name = cfg.zone_name or cfg.name
        self.tz = ZoneInfo(cfg.timezone)
        self.leave_s = (cfg.max_missing - 0.5) / cfg.fps  # max_missing samples, give or take
        self.tracks: dict[int, _Track] = {}  # by the rule's key (the first tracker id)
        self._alias: dict[int, int] = {}
        self.last_t: float | None = None

    @property
    def open_events(self) -> int:
        return sum(1 for s in self.tracks.values() if s.event_id is not None)

    def armed_at(self, t: float) -> bool:
        return armed(self.cfg.windows, datetime.fromtimestamp(t, self.tz))

    def update(self, tracks: Tracks, wh: tuple[int, int], now: datetime) -> list[Transition]:
        t = now.timestamp()
        self.last_t = t
        is_armed = self.armed_at(t)
        w, h = wh
        scale = np.array([w, h, w, h], np.float32)
        boxes = tracks.xyxy / scale
        anchors = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
        ins = self.zone.contains_fractions(anchors)
        present = set(tracks.track_id.tolist())
        out: list[Transition] = []
        for i in range(len(tracks)):
            tid = int(tracks.track_id[i])
            key = self._key(tid, anchors[i], t, present)
            st = self.tracks.get(key)
            if st is None:
                st = self.tracks[key] = _Track(t, anchors[i], tid)
            st.last_seen, st.anchor, st.track_id = t, anchors[i], tid
            if not ins[i]:
                st.outside_seen = True
                st.run = 0
                continue
            if not st.in_stay:
                st.in_stay, st.stay_start, st.reported = True, t, False
                st.eligible = (
                    is_armed
                    and (st.outside_seen or not self.cfg.from_outside)
                    and (st.alarmed_last is None or t - st.alarmed_last >= self.cfg.rearm_s)
                )
                st.outside_seen = False  # entering again needs another sighting outside
            st.last_in = t
            st.run += 1
            x1, y1, x2, y2 = (float(v) for v in np.clip(boxes[i], 0.0, 1.0))
            st.box = (round(x1, 4), round(y1, 4), round(x2, 4), round(y2, 4))
            st.box_px = tuple(int(v) for v in np.clip(tracks.xyxy[i], 0, scale))  # type: ignore[assignment]
            st.score = float(tracks.confidence[i])
            st.label = self.names[int(tracks.class_id[i])]
            if st.eligible and not st.reported and st.run >= self.cfg.min_inside:
                st.reported = True
                st.event_id = uuid.uuid4()
                st.seq = 0
                log.info(
                    "intrusion",
                    extra={"analytic": self.cfg.name, "track": tid, "zone": self.zone_name},
                )
                out.append(self._transition(st, "new", now, snapshot=True))
        for key, st in list(self.tracks.items()):
            if st.in_stay and t - st.last_in > self.leave_s:
                # seen outside since: it left; else it was lost from view inside
                out += self._end_stay(st, now, "left" if st.last_seen > st.last_in else "lost")
            elif st.event_id is not None and t - st.stay_start >= self.cfg.max_event_s:
                out += self._end_event(st, now, "max_event_s")
            if t - st.last_seen > FORGET_S:
                del self.tracks[key]
                for tid in [tid for tid, k in self._alias.items() if k == key]:
                    del self._alias[tid]
        return out

    def _key(self, tid: int, anchor: np.ndarray, t: float, present: set[int]) -> int:
        """The rule's key for a tracker id: its own, a just-lost track's (an id switch)."""
        if tid in self._alias:
            return self._alias[tid]
        if tid in self.tracks:
            return tid
        best, best_d = None, STITCH_DIST
        for key, st in self.tracks.items():
            if st.track_id in present or not 0 < t - st.last_seen <= STITCH_S:
                continue
            d = float(np.hypot(*(st.anchor - anchor)))
            if d <= best_d:
                best, best_d = key, d
        if best is None:
            return tid
        self._alias[tid] = best
        return best

    def _transition(
        self,
        st: _Track,
        step: Literal["new", "update", "end"],
        now: datetime,
        snapshot: bool = False,
        reason: str | None = None,
    ) -> Transition:
        assert st.event_id is not None
        last = st.last_in if step == "end" else now.timestamp()
        attrs: dict[str, str | int | float | bool | None] = {
            "track_id": st.track_id,
            "zone": self.zone_name,
            "entered": datetime.fromtimestamp(st.stay_start, self.tz).isoformat(),
            "inside_s": round(last - st.stay_start, 1),
        }
        return held_transition(
            st,
            step,
            now,
            label=st.label,
            start=st.stay_start,
            last=st.last_in,
            kind="intrusion",
            zone=self.zone_name,
            attributes=attrs,
            reason=reason,
            snapshot=snapshot,
        )

    def _end_event(self, st: _Track, now: datetime, reason: str) -> list[Transition]:
        if st.event_id is None:
            return []
        st.seq += 1
        out = [self._transition(st, "end", now, reason=reason)]
        st.event_id = None
        return out

    def _end_stay(self, st: _Track, now: datetime, reason: str) -> list[Transition]:
        if st.reported:
            st.alarmed_last = st.last_in
        out = self._end_event(st, now, reason)
        st.in_stay = st.reported = st.eligible = False
        st.run = 0
        return out

    def _end_all(self, now: datetime, reason: str) -> list[Transition]:
        out: list[Transition] = []
        for st in self.tracks.values():
            out += self._end_event(st, now, reason)
        return out

    def tick(self, now: datetime) -> list[Transition]:
        if self.last_t is None or now.timestamp() - self.last_t < STALE_S:
            return []
        return self._end_all(now, "no_frames")

    def close(self, now: datetime) -> list[Transition]:
        return self._end_all(now, "closed")


class IntrusionAnalyticRuntime(TrackedRuleRuntime):
    """Detections of the watched classes -> one ByteTrack for the runtime -> the rule."""

    kind = "intrusion"
    rule: IntrusionRule

    def __init__(self, cfg: IntrusionAnalytic, ctx: CameraContext) -> None:
        super().__init__(cfg, ctx, IntrusionRule(cfg, ctx.class_names(cfg.model)))


def build(cfg: IntrusionAnalytic, ctx: CameraContext) -> IntrusionAnalyticRuntime:
    return IntrusionAnalyticRuntime(cfg, ctx)
