"""Scripted scenarios for ``intrusion``: entries and near misses, through the runtime
(detections in pixels -> ByteTrack -> rule).

Why these: an intrusion alarm wakes a guard, so the near misses are the ones a real site
gives every night: someone walking the path along the fence (boxes jittering towards the
zone), someone who went in at 17:59 when the zone arms at 18:00, a false box for a sample
or two, a car when people are watched, the same person seen again after hiding behind
something inside the zone (one alarm, not two) or given a new tracker id inside it. The
true cases include a quick crossing, two people together, a re-entry, an entry 30 s after
arming and one on a weekend-only window. Synthetic boxes with jitter, score noise and
missed detections: unit-style scenarios, not an accuracy measure on video.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from edge.analytics import scripted
from edge.analytics.base import Transition
from edge.analytics.plugins.intrusion.config import ArmedWindow, IntrusionAnalytic
from edge.analytics.scripted import TZ, context, counted, detections, drive

W, H = 1280, 720
SIZES = {"person": (0.03, 0.12), "car": (0.12, 0.1)}
YARD = [(0.3, 0.4), (0.7, 0.4), (0.7, 0.8), (0.3, 0.8)]
PATH_Y = 0.82  # a footpath along the yard's bottom edge, 0.02 outside it
WALK = 0.05  # fraction of the frame per second (a walking person, a wide view)
NIGHT = IntrusionAnalytic(zone=YARD, windows=[ArmedWindow(hours=(18, 6))])
WEEKEND = IntrusionAnalytic(zone=YARD, windows=[ArmedWindow(days=[5, 6])])


def local(day: int, hour: float) -> float:
    """Epoch seconds of a local time on a March 2025 day (3 = Monday .. 9 = Sunday)."""
    h, rest = divmod(round(hour * 3600), 3600)
    m, s = divmod(rest, 60)
    return datetime(2025, 3, day, int(h), int(m), int(s), tzinfo=TZ).timestamp()


@dataclass
class Actor(scripted.Actor):
    """A person (or a car): more jitter and misses than a parked car, at night."""

    score: float = 0.75
    jitter: float = 0.003
    miss: float = 0.05


@dataclass
class Scenario:
    name: str
    cfg: IntrusionAnalytic
    actors: list[Actor]
    expect: int
    start: float
    duration: float
    note: str = ""


def run(s: Scenario, seed: int) -> list[Transition]:
    from edge.analytics import registry

    rt = registry.plugin("intrusion").build(s.cfg, context())
    rng = np.random.default_rng(seed)
    steps = drive(
        rt, s.cfg.fps, s.start, s.duration, lambda t: detections(s.actors, t, rng, SIZES), rng
    )
    return [tr for _, out in steps for tr in out.transitions]


Keys = list[tuple[float, tuple[float, float]]]


def walk(
    points: list[tuple[float, float]], t0: float = 0.0, pauses: dict[int, float] | None = None
) -> Keys:
    """Keyframes walking through ``points`` at ``WALK``, pausing ``pauses[i]`` s at point i."""
    pauses = pauses or {}
    keys: Keys = [(t0, points[0])]
    t = t0
    for i, (a, b) in enumerate(zip(points, points[1:], strict=False)):
        if i in pauses:
            t += pauses[i]
            keys.append((t, a))
        t += float(np.hypot(b[0] - a[0], b[1] - a[1])) / WALK
        keys.append((t, b))
    return keys


def scenarios(seed: int = 0) -> list[Scenario]:
    rng = np.random.default_rng(seed)

    def y() -> float:
        return float(rng.uniform(0.5, 0.7))

    in_and_out = [(0.15, 0.6), (0.5, 0.6), (0.15, 0.6)]
    yy = y()
    twice = walk(
        [(0.15, yy), (0.45, yy), (0.15, yy), (0.1, yy), (0.45, yy), (0.15, yy)], pauses={3: 35}
    )
    return [
        Scenario(
            "enters_at_20h",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 20}))],
            1,
            local(3, 20),
            25 + 20,
        ),
        Scenario(
            "quick_crossing_02h",
            NIGHT,
            [Actor("person", walk([(0.2, y()), (0.8, y())]))],
            1,
            local(4, 2),
            14,
            "inside for 8 s",
        ),
        Scenario(
            "enters_at_18h00m30",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 10}))],
            1,
            local(3, 18) + 27,
            40,
            "reaches the zone 30 s after it arms",
        ),
        Scenario(
            "two_together",
            NIGHT,
            [
                Actor("person", walk([(0.15, 0.55), (0.5, 0.55)], pauses={})),
                Actor("person", walk([(0.15, 0.65), (0.5, 0.65)], pauses={})),
            ],
            2,
            local(3, 21),
            10,
        ),
        Scenario(
            "enters_twice",
            NIGHT,
            [Actor("person", twice)],
            2,
            local(3, 22),
            twice[-1][0],
            "in, out for 43 s, in again: two alarms",
        ),
        Scenario(
            "hidden_inside_then_seen",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 30}), hidden=[(12.0, 18.0)])],
            1,
            local(3, 23),
            50,
            "behind a shed in the yard for 6 s: one alarm",
        ),
        Scenario(
            "weekend_afternoon",
            WEEKEND,
            [Actor("person", walk(in_and_out, pauses={1: 10}))],
            1,
            local(8, 14),
            30,
            "Saturday, a weekend-only window",
        ),
        # near misses
        Scenario(
            "walks_along_the_edge",
            NIGHT,
            [Actor("person", walk([(0.15, PATH_Y), (0.85, PATH_Y)]), jitter=0.006)],
            0,
            local(3, 20) + 600,
            15,
            "the path 0.02 outside the zone, boxes jittering 0.006",
        ),
        Scenario(
            "entered_at_17h59",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 180}))],
            0,
            local(3, 17 + 59 / 60) - 3,
            200,
            "inside before the zone arms at 18:00, stays to 18:02",
        ),
        Scenario(
            "single_false_box",
            NIGHT,
            [Actor("person", [(5.0, (0.5, 0.6)), (5.1, (0.5, 0.6))], score=0.9, miss=0)],
            0,
            local(3, 20),
            10,
            "one sample",
        ),
        Scenario(
            "two_sample_false_box",
            NIGHT,
            [Actor("person", [(5.0, (0.5, 0.6)), (5.3, (0.5, 0.6))], score=0.9, miss=0)],
            0,
            local(3, 20),
            10,
            "two samples, first seen inside",
        ),
        Scenario(
            "daytime_entry",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 20}))],
            0,
            local(3, 12),
            45,
            "noon: not armed",
        ),
        Scenario(
            "car_enters",
            NIGHT,
            [Actor("car", walk(in_and_out, pauses={1: 20}))],
            0,
            local(3, 20),
            45,
            "people are watched",
        ),
        Scenario(
            "new_id_inside",
            NIGHT,
            [Actor("person", walk(in_and_out, pauses={1: 400}), hidden=[(300.0, 310.0)])],
            0,
            local(3, 17 + 58 / 60),
            420,
            "inside since 17:58; hidden 10 s at 18:03, a new tracker id inside",
        ),
        Scenario(
            "weekday_afternoon",
            WEEKEND,
            [Actor("person", walk(in_and_out, pauses={1: 10}))],
            0,
            local(7, 14),
            30,
            "Friday: the weekend window is not armed",
        ),
    ]


def evaluate(seed: int = 0) -> dict[str, Any]:
    results: list[tuple[Scenario, int]] = []
    wrong: list[str] = []
    for i, s in enumerate(scenarios(seed)):
        got = sum(1 for t in run(s, seed * 1000 + i) if t.type == "new")
        results.append((s, got))
        if got != s.expect:
            wrong.append(f"{s.name}: {got} events, expected {s.expect}")
    return {
        **counted([(s.expect, g) for s, g in results]),
        "wrong": wrong,
        "notes": "scripted synthetic boxes (jitter, score noise, missed detections) through "
        "ByteTrack and the rule; near misses: the path along the edge, inside before arming, "
        "false boxes for one and two samples, out of hours, a car, a new id inside. "
        "Unit-style scenarios, not an accuracy measure on video.",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(evaluate(), indent=2))
