"""Traffic rules: small classes fed tracks (numpy arrays) and time, returning violations.

Coordinates are whatever the tracks and the rule's geometry share; the worker feeds
fractions of the frame (0-1), as every other analytic's config uses. A track's position
is its anchor, the bottom-centre of its box, where the vehicle meets the road.

Each rule keeps a little state per track id and reports a track at most once. None of
them needs video: ``scripts/eval_traffic.py`` and the tests drive them with scripted
tracks, near misses included.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.analytics.geometry import Line, RuleConfigError, inside
from edge.analytics.tracking import Tracks

Point = tuple[float, float]
SIGNAL_STATES = ("red", "amber", "green", "unknown")


@dataclass
class Violation:
    rule: str
    track_id: int
    time: float  # seconds, the moment of the violation (interpolated where it says so)
    class_id: int
    box: tuple[float, float, float, float]
    details: dict[str, Any] = field(default_factory=dict)


class SignalState:
    """The signal's state over time, and how sure of it we are.

    Two kinds of source feed it:

    - a controller (``mqtt``) reports changes: a state holds until the next report.
    - a camera (``model``, ``lamps``; ``sampled=True``) reports what it saw at each look.
      A state is sure at time t only between two consecutive looks that both saw it, at
      most ``max_gap_s`` apart. Between a look that saw red and a next look that saw
      anything else the light changed at some unknown moment, so that stretch is
      ``unknown``; after the latest look it is ``pending`` until the next one. ``since`` is
      the first look of the run, so how long it had been red is never overstated.
    """

    def __init__(
        self, sampled: bool = False, source: str = "mqtt", max_gap_s: float = 2.0, keep: int = 4096
    ) -> None:
        self.sampled = sampled
        self.source = source
        self.max_gap_s = max_gap_s
        self.keep = keep
        self._t: list[float] = []  # start of each run (a change, for a controller)
        self._end: list[float] = []  # last look of each run (sampled)
        self._s: list[str] = []

    def set(self, t: float, state: str) -> None:
        if state not in SIGNAL_STATES:
            raise ValueError(f"signal state {state!r} is not one of {SIGNAL_STATES}")
        last = self._end[-1] if self.sampled and self._end else (self._t[-1] if self._t else None)
        if last is not None and t < last:
            raise ValueError("signal states must arrive in time order")
        if (
            self._s
            and self._s[-1] == state
            and (not self.sampled or t - self._end[-1] <= self.max_gap_s)
        ):
            self._end[-1] = t
            return
        self._t.append(t)
        self._end.append(t)
        self._s.append(state)
        if len(self._t) > self.keep:  # bounded over months
            del self._t[0], self._end[0], self._s[0]

    def at(self, t: float) -> tuple[str, float | None]:
        """(state, since when) at time ``t``: unknown before the first report; for a camera,
        unknown between runs and ``pending`` after the latest look."""
        i = bisect.bisect_right(self._t, t) - 1
        if i < 0:
            return "unknown", None
        if not self.sampled or t <= self._end[i]:
            return self._s[i], self._t[i]
        if i == len(self._t) - 1:
            return "pending", None
        return "unknown", None


class _Rule:
    """Shared by the rules: class filter, one report per vehicle, and ID-switch stitching.

    A tracker sometimes gives a vehicle a new id (occlusion, a missed frame). A new id
    that appears within ``stitch_dist`` of where another track was last seen, at most
    ``stitch_s`` after it vanished, continues that track here: its time in a lane, its
    crossing of the first speed line, its dwell. So an ID switch neither loses a
    violation nor reports the same vehicle twice.
    """

    name = "rule"
    stitch_s = 1.0
    stitch_dist = 0.04

    def __init__(self, classes: Sequence[int] | None = None) -> None:
        self.classes = None if classes is None else np.asarray(list(classes), np.int32)
        self.reported: set[int] = set()
        self._alias: dict[int, int] = {}  # tracker id -> the id this rule knows it by
        # known id -> (last t, last anchor, velocity per second)
        self._last: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}

    def _select(self, tracks: Tracks) -> Tracks:
        if self.classes is None or len(tracks) == 0:
            return tracks
        return tracks[np.isin(tracks.class_id, self.classes)]

    def _ids(self, tracks: Tracks, t: float) -> list[int]:
        """The rule's id for each track (stitched across ID switches)."""
        pts = tracks.anchors().astype(np.float64)
        raw = tracks.track_id.tolist()
        known = [self._alias.get(tid, tid if tid in self._last else None) for tid in raw]
        taken = {k for k in known if k is not None}
        out = []
        for i, (tid, k) in enumerate(zip(raw, known, strict=True)):
            if k is None:
                best, best_d = tid, self.stitch_dist
                for cid, (lt, lp, lv) in self._last.items():
                    if cid in taken or not (0 < t - lt <= self.stitch_s):
                        continue
                    d = float(np.hypot(*(lp + lv * (t - lt) - pts[i])))  # where it would be
                    if d <= best_d:
                        best, best_d = cid, d
                k = best
                taken.add(k)
                if k != tid:
                    self._alias[tid] = k
            prev = self._last.get(k)
            vel = np.zeros(2)
            if prev is not None and t > prev[0]:
                vel = 0.5 * prev[2] + 0.5 * (pts[i] - prev[1]) / (t - prev[0])
            self._last[k] = (t, pts[i], vel)
            out.append(k)
        return out

    def _violation(self, tracks: Tracks, i: int, t: float, key: int, **details: Any) -> Violation:
        self.reported.add(key)
        tid = int(tracks.track_id[i])
        if tid != key:
            details["earlier_track_id"] = key
        if tracks.class_share is not None:
            details.setdefault("class_share", round(float(tracks.class_share[i]), 2))
        box = tuple(float(v) for v in tracks.xyxy[i])
        return Violation(self.name, tid, t, int(tracks.class_id[i]), box, details)  # type: ignore[arg-type]

    def forget(self, now: float, horizon_s: float = 120.0) -> None:
        """Drop what is known about tracks not seen for ``horizon_s`` (bounded memory
        over months); subclasses drop their own per-track state for those ids too."""
        gone = {k for k, (lt, _, _) in self._last.items() if now - lt > horizon_s}
        for k in gone:
            del self._last[k]
        for tid in [tid for tid, k in self._alias.items() if k in gone]:
            del self._alias[tid]
        self.reported -= gone
        for d in self._state():
            for k in [k for k in d if k in gone]:
                del d[k]

    def _state(self) -> list[dict]:
        return []


class RedLight(_Rule):
    """Crossing the stop line forward while the signal is red, at least ``grace_s`` after
    it turned red.

    The crossing moment is when the anchor passes ``margin`` beyond the line, interpolated
    between frames; it counts once the vehicle has come from at least ``margin`` behind
    the line and gone ``confirm`` past it within ``max_cross_s``. A vehicle stopped on the
    line, its box jittering across it, does not cross until it drives on (on green).

    Only a red the signal source is sure of counts (``SignalState.at``): from a camera,
    red seen at the looks on both sides of the moment. When the next look has not come
    yet the crossing waits for it (up to ``max_wait_s``); ``unknown`` and ``pending``
    never make a violation. The violation says which source saw the red.
    """

    name = "red_light"

    def __init__(
        self,
        stop_line: tuple[Point, Point],
        forward: Point,
        signal: SignalState,
        grace_s: float = 0.5,
        margin: float = 0.01,
        confirm: float = 0.03,
        max_cross_s: float = 1.5,
        classes: Sequence[int] | None = None,
        max_wait_s: float = 3.0,
    ) -> None:
        super().__init__(classes)
        self.line = Line(*stop_line, forward=forward)
        self.max_wait_s = max_wait_s
        # crossings waiting for the signal's next look: key -> (moment, the track then, until)
        self._wait: dict[int, tuple[float, Tracks, float]] = {}
        self.signal = signal
        self.grace_s = grace_s
        self.margin = margin
        self.confirm = confirm
        self.max_cross_s = max_cross_s
        self._behind: dict[int, bool] = {}  # came from margin behind the line
        self._neg: dict[int, tuple[float, float]] = {}  # last (t, side) not past the margin
        self._pos: dict[int, tuple[float, float]] = {}  # first (t, side) past it after that
        self._done: set[int] = set()

    def _state(self) -> list[dict]:
        return [self._behind, self._neg, self._pos, self._wait]

    def _judge(self, key: int, tc: float, row: Tracks) -> Violation | None | bool:
        """The violation, None when there is none, False while the signal is pending."""
        state, since = self.signal.at(tc)
        if state == "pending":
            return False
        if state == "red" and since is not None and tc - since >= self.grace_s:
            return self._violation(
                row,
                0,
                tc,
                key,
                signal="red",
                red_for_s=round(tc - since, 2),
                signal_source=self.signal.source,
            )
        return None

    def update(self, tracks: Tracks, t: float) -> list[Violation]:
        tracks = self._select(tracks)
        keys = self._ids(tracks, t)
        out = []
        for key, (tc, row, until) in list(self._wait.items()):
            got = self._judge(key, tc, row)
            if got is not False or t > until:
                del self._wait[key]
                if got:
                    out.append(got)
        pts = tracks.anchors()
        side = self.line.side(pts)
        along = self.line.along(pts)
        for i, key in enumerate(keys):
            if key in self._done:
                continue
            d = float(side[i])
            if d < -self.margin:
                self._behind[key] = True
            if d <= self.margin:
                self._neg[key] = (t, d)  # last seen not clearly past the line
                self._pos.pop(key, None)
                continue
            if key in self._neg and key not in self._pos:
                self._pos[key] = (t, d)  # first seen clearly past it
            if d < self.confirm or not self._behind.get(key) or key not in self._pos:
                continue
            (t0, s0), (t1, s1) = self._neg[key], self._pos[key]
            self._done.add(key)  # decided once, either way
            if t - t1 > self.max_cross_s or not -0.05 <= along[i] <= 1.05:
                continue  # crept over slowly from a stop, or passed beside the line
            # when the anchor passed ``margin`` beyond the line: a vehicle stopped on the
            # line, its box jittering across it, only passes that when it drives on
            tc = t0 + (t1 - t0) * (self.margin - s0) / (s1 - s0)
            row = tracks[i : i + 1]
            got = self._judge(key, tc, row)
            if got is False:
                self._wait[key] = (tc, row, t + self.max_wait_s)
            elif got:
                out.append(got)
        return out


class WrongWay(_Rule):
    """Moving against the lane's direction over at least ``min_distance``, measured from
    where the track entered the lane (so box jitter never adds up)."""

    name = "wrong_way"

    def __init__(
        self,
        lane: Sequence[Point],
        direction: Point,
        min_distance: float = 0.15,
        max_cos: float = -0.7,
        classes: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classes)
        self.lane = np.asarray(lane, np.float64)
        d = np.asarray(direction, np.float64)
        self.direction = d / np.hypot(*d)
        self.min_distance = min_distance
        self.max_cos = max_cos
        self._start: dict[int, np.ndarray] = {}

    def _state(self) -> list[dict]:
        return [self._start]

    def update(self, tracks: Tracks, t: float) -> list[Violation]:
        tracks = self._select(tracks)
        keys = self._ids(tracks, t)
        out = []
        pts = tracks.anchors().astype(np.float64)
        ins = inside(self.lane, pts)
        for i, key in enumerate(keys):
            if key in self.reported:
                continue
            if not ins[i]:
                self._start.pop(key, None)
                continue
            start = self._start.setdefault(key, pts[i])
            move = pts[i] - start
            dist = float(np.hypot(*move))
            if dist >= self.min_distance and float(move @ self.direction) / dist <= self.max_cos:
                out.append(self._violation(tracks, i, t, key, distance=round(dist, 3)))
        return out


class LaneRestriction(_Rule):
    """A forbidden class in a lane for at least ``min_time_s`` (gaps up to ``gap_s``
    forgiven: a missed detection does not restart the clock).

    The class is the tracker's vote; it is reported only once the forbidden class holds at
    least ``min_share`` of the vote, so a van the detector calls a car as often as a truck
    is not a truck in a car lane."""

    name = "lane_restriction"

    def __init__(
        self,
        lane: Sequence[Point],
        forbidden: Sequence[int],
        min_time_s: float = 3.0,
        gap_s: float = 0.5,
        min_share: float = 0.6,
    ) -> None:
        super().__init__(forbidden)
        self.lane = np.asarray(lane, np.float64)
        self.min_time_s = min_time_s
        self.gap_s = gap_s
        self.min_share = min_share
        self._since: dict[int, tuple[float, float]] = {}  # id -> (entered, last inside)

    def _state(self) -> list[dict]:
        return [self._since]

    def update(self, tracks: Tracks, t: float) -> list[Violation]:
        tracks = self._select(tracks)
        keys = self._ids(tracks, t)
        out = []
        ins = inside(self.lane, tracks.anchors().astype(np.float64))
        for i, key in enumerate(keys):
            if key in self.reported:
                continue
            entered, last = self._since.get(key, (t, t))
            if not ins[i]:
                if t - last > self.gap_s:
                    self._since.pop(key, None)
                continue
            if t - last > self.gap_s:
                entered = t
            self._since[key] = (entered, t)
            sure = tracks.class_share is None or tracks.class_share[i] >= self.min_share
            if t - entered >= self.min_time_s and sure:
                out.append(self._violation(tracks, i, t, key, in_lane_s=round(t - entered, 2)))
        return out


class NoStopping(_Rule):
    """Standing in a no-stopping zone for more than ``max_dwell_s``: inside the zone, and
    within ``still_distance`` of its mean position over the last ``max_dwell_s`` (a slow
    queue that keeps moving is not stopping)."""

    name = "no_stopping"

    def __init__(
        self,
        zone: Sequence[Point],
        max_dwell_s: float = 30.0,
        still_distance: float = 0.03,
        classes: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classes)
        self.zone = np.asarray(zone, np.float64)
        self.max_dwell_s = max_dwell_s
        self.still = still_distance
        self._path: dict[int, list[tuple[float, np.ndarray]]] = {}

    def _state(self) -> list[dict]:
        return [self._path]

    def update(self, tracks: Tracks, t: float) -> list[Violation]:
        tracks = self._select(tracks)
        keys = self._ids(tracks, t)
        out = []
        pts = tracks.anchors().astype(np.float64)
        ins = inside(self.zone, pts)
        for i, key in enumerate(keys):
            if key in self.reported:
                continue
            if not ins[i]:
                self._path.pop(key, None)
                continue
            path = self._path.setdefault(key, [])
            path.append((t, pts[i]))
            while len(path) > 2 and path[1][0] <= t - self.max_dwell_s:
                path.pop(0)  # keep the window, plus the sample just before it
            if t - path[0][0] < self.max_dwell_s:
                continue
            window = np.array([p for _, p in path])
            spread = float(np.max(np.hypot(*(window - window.mean(axis=0)).T)))
            if spread < self.still:
                out.append(self._violation(tracks, i, t, key, dwell_s=round(t - path[0][0], 1)))
        return out


class Speeding(_Rule):
    """Two lines ``distance_m`` apart; crossing times interpolated between frames; speed
    over ``limit_kmh`` is reported, as ``monitoring_only`` unless the camera is
    calibrated (an uncalibrated speed is not evidence for a fine)."""

    name = "speeding"

    def __init__(
        self,
        line_a: tuple[Point, Point],
        line_b: tuple[Point, Point],
        distance_m: float,
        limit_kmh: float,
        calibrated: bool = False,
        classes: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classes)
        if distance_m <= 0 or limit_kmh <= 0:
            raise RuleConfigError("speeding needs distance_m > 0 and limit_kmh > 0")
        mid_a = (np.asarray(line_a[0]) + np.asarray(line_a[1])) / 2
        mid_b = (np.asarray(line_b[0]) + np.asarray(line_b[1])) / 2
        forward = tuple(mid_b - mid_a)
        self.a = Line(*line_a, forward=forward)  # type: ignore[arg-type]
        self.b = Line(*line_b, forward=forward)  # type: ignore[arg-type]
        self.distance_m = distance_m
        self.limit_kmh = limit_kmh
        self.calibrated = calibrated
        self._prev: dict[int, tuple[float, float, float]] = {}  # id -> (t, side a, side b)
        self._cross: dict[int, dict[str, float]] = {}

    def _state(self) -> list[dict]:
        return [self._prev, self._cross]

    def update(self, tracks: Tracks, t: float) -> list[Violation]:
        tracks = self._select(tracks)
        keys = self._ids(tracks, t)
        out = []
        pts = tracks.anchors().astype(np.float64)
        sa, sb = self.a.side(pts), self.b.side(pts)
        for i, key in enumerate(keys):
            if key in self.reported:
                continue
            prev = self._prev.get(key)
            self._prev[key] = (t, float(sa[i]), float(sb[i]))
            if prev is None:
                continue
            t0, a0, b0 = prev
            cross = self._cross.setdefault(key, {})
            for name, s0, s1 in (("a", a0, sa[i]), ("b", b0, sb[i])):
                if name not in cross and (s0 < 0) != (s1 < 0) and s1 != s0:
                    cross[name] = t0 + (t - t0) * (-s0) / (s1 - s0)
            if "a" in cross and "b" in cross:
                dt = abs(cross["b"] - cross["a"])
                self._cross.pop(key)
                self.reported.add(key)  # measured once, fast or not
                if dt <= 0:
                    continue
                speed = self.distance_m / dt * 3.6
                if speed > self.limit_kmh:
                    out.append(
                        self._violation(
                            tracks,
                            i,
                            max(cross["a"], cross["b"]),
                            key,
                            speed_kmh=round(speed, 1),
                            limit_kmh=self.limit_kmh,
                            monitoring_only=not self.calibrated,
                        )
                    )
        return out


class NoHelmet(_Rule):
    """Needs a rider/helmet classifier. There is none in this project yet, so this rule
    refuses to start rather than pretend (it would report nothing, or guess)."""

    name = "no_helmet"

    def __init__(self, model: str | None = None) -> None:
        super().__init__(None)
        if not model:
            raise RuleConfigError(
                "no_helmet needs a rider/helmet classifier model (set model: to its id in "
                "models/manifest.yaml); none is configured, so the rule cannot run"
            )
        raise RuleConfigError(
            f"no_helmet: model {model!r} is not a helmet classifier this version can run "
            "(no helmet classifier adapter exists yet)"
        )
