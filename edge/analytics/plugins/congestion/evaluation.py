"""Scripted scenarios for ``congestion``: jams with known episodes, and near misses.

Unit-style checks on synthetic detections, not an accuracy claim. A vertical lane (the
zone) is filled by scripted vehicle boxes at 2 fps, 1280x720, with seeded jitter and 5 %
of the boxes dropped, fed to the analytic built through the registry with its defaults
(window 60 s, slow 0.3, jammed 0.6, hysteresis 0.1, hold 30 s). Its ``congestion``
events make episodes (``new`` to ``end``, or to ``close``).

True jams: one that builds, stands and clears; two apart; stop-and-go; a lane packed with
motorbikes; occupancy flickering around the jammed threshold (one episode, not one per
flicker). Near misses: occupancy hovering just below the threshold, a long truck filling
the view for a few seconds (mid-run, and in the first seconds before the window is
filled), a queue in the next lane whose boxes lap over the zone's edge, the queue of each
red phase at a signal, busy free-flowing traffic.

Precision and recall are on episodes: a predicted episode overlapping a scripted one
(whose end is extended by the window and the hold, the analytic's designed lag) matches
it, once; unmatched predictions are false, unmatched scripted jams missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.analytics import registry
from edge.analytics.base import CameraContext, Sample
from edge.analytics.scripted import pr
from edge.inference.detections import Detections

NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
WH = (1280, 720)
FPS = 2.0
T0 = 1_700_000_000.0  # the scripts' epoch
# the lane, traffic moving up to a stop line at y = 0.10
ZONE = [(0.40, 0.10), (0.60, 0.10), (0.60, 0.95), (0.40, 0.95)]
UP = (0.0, -1.0)
CAR_LEN, CAR_GAP = 0.07, 0.015  # fractions of the height

Box = tuple[float, float, float, float, str]  # x1, y1, x2, y2 fractions, class
Script = Callable[[float, np.random.Generator], list[Box]]


@dataclass
class Scenario:
    name: str
    script: Script
    seconds: float
    jams: list[tuple[float, float]] = field(default_factory=list)  # scripted episodes, s

    @property
    def near_miss(self) -> bool:
        return not self.jams


def ctx() -> CameraContext:
    return CameraContext(
        camera=SimpleNamespace(id="cam1"),
        site="site",
        edge_id="edge1",
        class_names=lambda model: NAMES,
        detector=lambda model: None,
        subscribe=lambda topic, cb: None,
        plate_reader=lambda: None,
        frame_wh=WH,
    )


def config(**over: Any) -> Any:
    doc: dict[str, Any] = {"type": "congestion", "zone": ZONE, "direction": UP, **over}
    return registry.plugin("congestion").config.model_validate(doc)


# -- what is on the road ----------------------------------------------------------------


def queue(k: int, x1: float = 0.39, x2: float = 0.61) -> list[Box]:
    """``k`` cars standing nose to tail from the stop line back."""
    out = []
    for i in range(k):
        y1 = 0.10 + i * (CAR_LEN + CAR_GAP)
        if y1 + CAR_LEN > 0.95:
            break
        out.append((x1, y1, x2, y1 + CAR_LEN, "car"))
    return out


def flow(t: float, n: int, speed: float = 0.05) -> list[Box]:
    """``n`` cars evenly spaced, driving up the lane at ``speed`` (lane lengths / s)."""
    out = []
    for i in range(n):
        pos = (t * speed + i / n) % 1.0  # 0 entering at the bottom, 1 leaving at the top
        y2 = 0.95 - pos * 0.85 + CAR_LEN
        out.append((0.40, y2 - CAR_LEN, 0.60, y2, "car"))
    return out


def motorbikes(rows: int) -> list[Box]:
    """Motorbikes three abreast, ``rows`` rows from the stop line back."""
    out = []
    for r in range(rows):
        y1 = 0.10 + r * 0.06
        if y1 + 0.05 > 0.95:
            break
        for c in range(3):
            x1 = 0.405 + c * 0.065
            out.append((x1, y1, x1 + 0.058, y1 + 0.05, "motorcycle"))
    return out


def truck(y1: float = 0.2, y2: float = 0.9) -> list[Box]:
    return [(0.36, y1, 0.64, y2, "truck")]


def ramp(t: float, points: list[tuple[float, float]]) -> int:
    ts, ks = zip(*points, strict=True)
    return int(round(float(np.interp(t, ts, ks))))


# -- the scenarios ------------------------------------------------------------------------


def scenarios() -> list[Scenario]:
    def builds_and_clears(t: float, rng: np.random.Generator) -> list[Box]:
        if t < 120 or t >= 560:
            return flow(t, 3)
        k = ramp(t, [(120, 2), (240, 10), (480, 10), (560, 0)])
        return queue(k + (int(rng.integers(-1, 1)) if 240 <= t < 480 else 0))

    def two_jams(t: float, rng: np.random.Generator) -> list[Box]:
        if 150 <= t < 400 or 900 <= t < 1150:
            return queue(10 - int(rng.integers(0, 2)))
        return flow(t, 3)

    def stop_and_go(t: float, rng: np.random.Generator) -> list[Box]:
        if 60 <= t < 460:
            return queue(int(round(8.5 + 1.5 * np.sin(2 * np.pi * t / 40))))
        return flow(t, 2)

    def motorbike_jam(t: float, rng: np.random.Generator) -> list[Box]:
        if 100 <= t < 500:
            return motorbikes(14)
        return flow(t, 2)

    def flicker(t: float, rng: np.random.Generator) -> list[Box]:
        if 60 <= t < 600:
            return queue(8 if int(t // 60) % 2 else 7)  # around 0.6, a minute each
        return flow(t, 2)

    def hovering_below(t: float, rng: np.random.Generator) -> list[Box]:
        return queue(7) if t >= 30 else flow(t, 2)  # about 0.55: slow, never jammed

    def long_truck(t: float, rng: np.random.Generator) -> list[Box]:
        return flow(t, 3) + (truck() if 200 <= t < 212 else [])

    def truck_at_start(t: float, rng: np.random.Generator) -> list[Box]:
        return truck(0.12, 0.95) if t < 20 else flow(t, 2)

    def adjacent_lane(t: float, rng: np.random.Generator) -> list[Box]:
        cars = queue(10, 0.58, 0.80) if 100 <= t < 500 else []  # laps 0.02 over the edge
        return cars + flow(t, 1)

    def red_phases(t: float, rng: np.random.Generator) -> list[Box]:
        return queue(10) if t % 90 < 30 else flow(t, 3)  # 30 s red of every 90 s

    def busy_flow(t: float, rng: np.random.Generator) -> list[Box]:
        return flow(t, 5, speed=0.03)

    return [
        Scenario("jam_builds_and_clears", builds_and_clears, 800, [(240, 480)]),
        Scenario("two_jams", two_jams, 1400, [(150, 400), (900, 1150)]),
        Scenario("stop_and_go_jam", stop_and_go, 600, [(60, 460)]),
        Scenario("motorbike_jam", motorbike_jam, 700, [(100, 500)]),
        Scenario("flicker_at_threshold", flicker, 800, [(60, 600)]),
        Scenario("hovering_below", hovering_below, 600),
        Scenario("long_truck_briefly", long_truck, 400),
        Scenario("truck_at_start", truck_at_start, 200),
        Scenario("queue_in_next_lane", adjacent_lane, 600),
        Scenario("red_phase_queues", red_phases, 900),
        Scenario("busy_free_flow", busy_flow, 600),
    ]


# -- running them -------------------------------------------------------------------------


def _detections(boxes: list[Box], rng: np.random.Generator) -> Detections:
    w, h = WH
    keep = [b for b in boxes if rng.random() >= 0.05]  # a missed detection now and then
    if not keep:
        return Detections.empty()
    xyxy = np.array([b[:4] for b in keep], np.float64) * np.array([w, h, w, h])
    xyxy += rng.normal(0, 2.0, xyxy.shape)  # pixels of jitter
    scores = np.clip(rng.normal(0.75, 0.08, len(keep)), 0.35, 0.99)
    classes = [NAMES.index(b[4]) for b in keep]
    return Detections(
        xyxy.astype(np.float32), scores.astype(np.float32), np.asarray(classes, np.int32)
    )


@dataclass
class Run:
    episodes: list[tuple[float, float]]  # (start, end) seconds since the start
    transitions: list[Any]
    readings: list[Any]


def run(sc: Scenario, seed: int = 0, **over: Any) -> Run:
    """Feed a scenario through the analytic: its episodes, transitions and readings."""
    rng = np.random.default_rng(seed)
    analytic = registry.plugin("congestion").build(config(**over), ctx())
    transitions, readings = [], []
    for k in range(int(sc.seconds * FPS) + 1):
        t = k / FPS
        sample = Sample(
            frame=None,
            time=datetime.fromtimestamp(T0 + t, UTC),
            wh=WH,
            detections=_detections(sc.script(t, rng), rng),
        )
        out = analytic.update(sample)
        transitions += out.transitions
        readings += out.readings
    out = analytic.close(datetime.fromtimestamp(T0 + sc.seconds + 0.1, UTC))
    transitions += out.transitions
    readings += out.readings
    episodes, opened = [], {}
    for tr in transitions:
        at = tr.frame_time.timestamp() - T0
        if tr.type == "new":
            opened[tr.event_id] = at
        elif tr.type == "end":
            episodes.append((opened.pop(tr.event_id), at))
    return Run(episodes, transitions, readings)


def score(sc: Scenario, episodes: list[tuple[float, float]], lag_s: float) -> tuple[int, int, int]:
    """(tp, fp, fn) of predicted episodes against the scripted ones."""
    matched: set[int] = set()
    fp = 0
    for s, e in episodes:
        hit = next(
            (
                i
                for i, (ts, te) in enumerate(sc.jams)
                if i not in matched and s < te + lag_s and e > ts
            ),
            None,
        )
        if hit is None:
            fp += 1
        else:
            matched.add(hit)
    return len(matched), fp, len(sc.jams) - len(matched)


def evaluate(seed: int = 0) -> dict[str, Any]:
    tp = fp = fn = 0
    wrong = []
    scs = scenarios()
    cfg = config()
    lag = cfg.window_s + cfg.hold_s
    for i, sc in enumerate(scs):
        r = run(sc, seed=seed * 1000 + i)
        a, b, c = score(sc, r.episodes, lag)
        tp, fp, fn = tp + a, fp + b, fn + c
        if b or c:
            shown = ", ".join(f"{s:.0f}-{e:.0f}" for s, e in r.episodes) or "none"
            wrong.append(f"{sc.name}: episodes {shown}")
    return {
        **pr(len(scs), sum(not s.near_miss for s in scs), tp, fp, fn),
        "notes": "scripted boxes in one lane (1280x720, 2 fps, seeded jitter, 5 % dropped) "
        "through the analytic with its defaults; P/R on jam episodes (one event new..end); "
        "unit-style scenarios, not an accuracy claim"
        + (f"; wrong: {'; '.join(wrong)}" if wrong else ""),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(evaluate(), indent=2))
