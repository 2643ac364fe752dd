"""Scripted scenarios for ``sidewalk_encroachment`` and ``illegal_parking``: true cases and
near misses, run through the whole runtime (detections in pixels -> ByteTrack -> rule).

Why scripted: the rule's thresholds (the dwell, the still distance, the gaps it forgives,
the hours) are what decides a wrong alert, and each near miss below sits just on the wrong
side of one of them: a car standing 1 s short of the dwell, one standing a hand's width
outside the polygon, a motorbike creeping along the sidewalk, a car that leaves and comes
back before a full dwell, a parked car that a bus hides for a few seconds (one event, not
two), a car parked before the ban starts. These are unit-style scenarios on synthetic
boxes (jitter, score noise, missed detections), not a measure of accuracy on video.

Scored per scenario: the events it should give (0, 1 or 2) against the ``new``
transitions it gave; extra ones are false positives, missing ones false negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from edge.analytics.base import Transition
from edge.analytics.plugins.dwell.config import (
    DwellAnalytic,
    IllegalParkingAnalytic,
    SidewalkEncroachmentAnalytic,
)
from edge.analytics.scripted import TZ, Actor, context, counted, detections, drive

W, H = 1280, 720
SIZES = {"car": (0.12, 0.1), "truck": (0.16, 0.16), "bus": (0.2, 0.18), "motorcycle": (0.04, 0.08)}
SIZES["person"] = (0.03, 0.12)

# a sidewalk along the bottom of the view, the road above it; a parking bay cut out of it
SIDEWALK = [(0.0, 0.72), (1.0, 0.72), (1.0, 0.95), (0.0, 0.95)]
BAY = [(0.6, 0.72), (0.8, 0.72), (0.8, 0.95), (0.6, 0.95)]
ROAD_Y = 0.6
# a no-parking kerb lane (07:00-22:00), the road above it
KERB = [(0.05, 0.55), (0.95, 0.55), (0.95, 0.7), (0.05, 0.7)]
LANE_Y = 0.45


def local(hour: float, day: int = 3) -> float:
    """Epoch seconds of a local time on Monday 3 March 2025 (day 3) or another March day."""
    h, rest = divmod(hour * 3600, 3600)
    m, s = divmod(rest, 60)
    return datetime(2025, 3, day, int(h), int(m), int(s), tzinfo=TZ).timestamp()


@dataclass
class Scenario:
    name: str
    cfg: DwellAnalytic
    actors: list[Actor]
    expect: int  # events it should give
    start: float  # epoch seconds of t = 0
    duration: float
    note: str = ""


def run(s: Scenario, seed: int) -> list[Transition]:
    """Every transition the runtime gives over the scenario (closed at its end)."""
    from edge.analytics import registry

    rt = registry.plugin(s.cfg.type).build(s.cfg, context())
    rng = np.random.default_rng(seed)
    steps = drive(
        rt, s.cfg.fps, s.start, s.duration, lambda t: detections(s.actors, t, rng, SIZES), rng
    )
    return [tr for _, out in steps for tr in out.transitions]


def stand_on(
    at: tuple[float, float],
    stand_s: float,
    t0: float = 2.0,
    road_y: float = ROAD_Y,
    speed: float = 0.08,
) -> list[tuple[float, tuple[float, float]]]:
    """Drive along the road, turn onto the spot, stand ``stand_s`` still, drive off."""
    x, y = at
    turn = abs(y - road_y) / speed
    return [
        (t0 - 3.0, (x - 3.0 * speed, road_y)),
        (t0, (x, road_y)),
        (t0 + turn, at),
        (t0 + turn + stand_s, at),
        (t0 + 2 * turn + stand_s, (x, road_y)),
        (t0 + 2 * turn + stand_s + 3.0, (x + 3.0 * speed, road_y)),
    ]


def sidewalk_scenarios(rng: np.random.Generator) -> list[Scenario]:
    cfg = SidewalkEncroachmentAnalytic(zone=SIDEWALK, exclude=[BAY])
    day = local(10.0)

    def x() -> float:
        return float(rng.uniform(0.15, 0.45))

    def sc(name: str, actors: list[Actor], expect: int, duration: float, note: str) -> Scenario:
        return Scenario(name, cfg, actors, expect, day, duration, note)

    back_x = x()
    first = stand_on((back_x, 0.86), 30.0)
    second = stand_on((back_x + 0.02, 0.87), 75.0, t0=first[-1][0] + 15.0)
    short_first = stand_on((back_x, 0.86), 40.0)
    short_second = stand_on((back_x, 0.86), 40.0, t0=short_first[-1][0] + 15.0)
    creep_x = x()
    return [
        sc("car_on_sidewalk_90s", [Actor("car", stand_on((x(), 0.86), 90))], 1, 110, "plain"),
        sc("motorbike_parked_120s", [Actor("motorcycle", stand_on((x(), 0.9), 120))], 1, 140, ""),
        sc(
            "hidden_by_bus_4s",
            [Actor("car", stand_on((x(), 0.86), 100), hidden=[(50.0, 54.0)])],
            1,
            120,
            "one event, not two, for a car a bus hides for 4 s",
        ),
        sc(
            "jittery_and_missed_80s",
            [Actor("car", stand_on((x(), 0.86), 80), jitter=0.004, miss=0.15, score=0.6)],
            1,
            100,
            "",
        ),
        sc(
            "returns_then_stands_75s",
            [Actor("car", first), Actor("car", second)],
            1,
            second[-1][0] + 2,
            "a first stay of 30 s, away 15 s, back for 75 s: the second stay only",
        ),
        sc(
            "two_side_by_side_70s",
            [Actor("car", stand_on((0.2, 0.86), 70)), Actor("car", stand_on((0.4, 0.86), 70))],
            2,
            90,
            "",
        ),
        # near misses
        sc(
            "drives_along_sidewalk",
            [Actor("car", [(0.0, (0.05, 0.85)), (15.0, (0.95, 0.85))])],
            0,
            20,
            "a car driving slowly along the sidewalk for 15 s",
        ),
        sc(
            "stands_just_outside",
            [Actor("car", stand_on((x(), 0.705), 150), jitter=0.003)],
            0,
            170,
            "anchor 0.015 above the sidewalk's edge",
        ),
        sc("one_second_short", [Actor("car", stand_on((x(), 0.86), 59))], 0, 80, "59 s of 60"),
        sc(
            "creeping_along",
            [Actor("motorcycle", [(0.0, (creep_x, 0.88)), (150.0, (creep_x + 0.15, 0.88))])],
            0,
            150,
            "inches 0.06 of the frame a minute (twice still_distance): never still a dwell",
        ),
        sc(
            "astride_the_edge",
            [Actor("car", stand_on((x(), 0.716), 150), jitter=0.01)],
            0,
            170,
            "anchor 0.004 outside, boxes jittering across the edge",
        ),
        sc(
            "leaves_and_returns",
            [Actor("car", short_first), Actor("car", short_second)],
            0,
            short_second[-1][0] + 2,
            "40 s, away 15 s, 40 s again: each stay short",
        ),
        sc(
            "in_the_allowed_bay",
            [Actor("car", stand_on((0.7, 0.86), 150))],
            0,
            170,
            "the bay is excluded",
        ),
        sc(
            "person_standing",
            [Actor("person", [(0.0, (0.3, 0.86)), (150.0, (0.305, 0.86))])],
            0,
            150,
            "people are not watched",
        ),
    ]


def parking_scenarios(rng: np.random.Generator) -> list[Scenario]:
    cfg = IllegalParkingAnalytic(zone=KERB, hours=(7, 22))

    def x() -> float:
        return float(rng.uniform(0.2, 0.7))

    def sc(
        name: str, actors: list[Actor], expect: int, start: float, duration: float, note: str
    ) -> Scenario:
        return Scenario(name, cfg, actors, expect, start, duration, note)

    def park(at_x: float, stand_s: float, cls: str = "car") -> list[Actor]:
        return [Actor(cls, stand_on((at_x, 0.66), stand_s, road_y=LANE_Y))]

    return [
        sc("car_parked_400s", park(x(), 400), 1, local(11.0), 420, ""),
        sc("truck_loading_330s", park(x(), 330, "truck"), 1, local(15.0), 350, ""),
        sc(
            "parked_before_ban",
            park(x(), 900),
            1,
            local(6 + 55 / 60),
            920,
            "parked 06:55, stays to 07:10: counted from 07:00",
        ),
        sc("stop_299s", park(x(), 299), 0, local(9.0), 320, "1 s short of 300"),
        sc("parked_at_night", park(x(), 600), 0, local(23.0), 620, "the ban is 07:00-22:00"),
        sc(
            "parked_before_ban_leaves",
            park(x(), 570),
            0,
            local(6 + 55 / 60),
            590,
            "parked 06:55, leaves 07:04:30: 270 s inside the ban",
        ),
        sc("motorbike_parked", park(x(), 600, "motorcycle"), 0, local(12.0), 620, "not watched"),
        sc(
            "stop_and_go_jam",
            [
                Actor(
                    "car",
                    [
                        (0.0, (0.2, 0.66)),
                        (200.0, (0.2, 0.66)),
                        (202.0, (0.3, 0.66)),
                        (402.0, (0.3, 0.66)),
                    ],
                )
            ],
            0,
            local(17.5),
            402,
            "two 200 s stands 0.1 apart",
        ),
    ]


def score(results: list[tuple[Scenario, int]]) -> dict[str, Any]:
    return counted([(s.expect, got) for s, got in results])


def scenarios(seed: int = 0) -> list[Scenario]:
    rng = np.random.default_rng(seed)
    return sidewalk_scenarios(rng) + parking_scenarios(rng)


def evaluate(seed: int = 0) -> dict[str, Any]:
    """Every scenario through the registry's runtime; P/R over both types and per type."""
    results: list[tuple[Scenario, int]] = []
    wrong: list[str] = []
    for i, s in enumerate(scenarios(seed)):
        got = sum(1 for t in run(s, seed * 1000 + i) if t.type == "new")
        results.append((s, got))
        if got != s.expect:
            wrong.append(f"{s.cfg.type}/{s.name}: {got} events, expected {s.expect}")
    out = score(results)
    out["types"] = {
        kind: score([(s, g) for s, g in results if s.cfg.type == kind])
        for kind in ("sidewalk_encroachment", "illegal_parking")
    }
    out["wrong"] = wrong
    out["notes"] = (
        "scripted synthetic boxes (jitter, score noise, missed detections) through ByteTrack "
        "and the rule; near misses: 1 s short of the dwell, standing just outside, creeping, "
        "leaving and returning, an allowed bay, outside the ban's hours, classes not watched. "
        "Unit-style scenarios, not an accuracy measure on video."
    )
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(evaluate(), indent=2))
