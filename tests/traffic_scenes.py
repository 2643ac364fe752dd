"""Scripted traffic: one junction, every rule configured on it, and seeded scenarios with
known outcomes, near misses included (stopping on the line, turning on amber, jittery
boxes, ID switches, detection gaps). Used by tests/test_traffic.py and
scripts/eval_traffic.py.

Coordinates are fractions of the frame; the camera looks up the road, so traffic with
right of way moves towards y = 0. 1 unit of y is 50 m (the speed lines are 0.5 apart,
25 m). Analysis at 10 fps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge.analytics.tracking import Tracks
from edge.analytics.traffic import (
    LaneRestriction,
    NoStopping,
    RedLight,
    SignalState,
    Speeding,
    WrongWay,
)

CAR, MOTORCYCLE = 2, 3  # COCO ids
FPS = 10.0
M_PER_UNIT = 50.0
# the junction
STOP_LINE = ((0.3, 0.5), (0.7, 0.5))
UP = (0.0, -1.0)
WRONG_WAY_LANE = [(0.3, 0.0), (0.5, 0.0), (0.5, 1.0), (0.3, 1.0)]
CAR_LANE = [(0.5, 0.0), (0.7, 0.0), (0.7, 1.0), (0.5, 1.0)]
NO_STOP_ZONE = [(0.72, 0.2), (0.95, 0.2), (0.95, 0.8), (0.72, 0.8)]
SPEED_A = ((0.3, 0.8), (0.7, 0.8))
SPEED_B = ((0.3, 0.3), (0.7, 0.3))
SPEED_DISTANCE_M = 25.0
LIMIT_KMH = 50.0
# the signal: green, amber at 10 s, red at 13 s, green again at 43 s
SIGNAL = [(0.0, "green"), (10.0, "amber"), (13.0, "red"), (43.0, "green")]
RED_GRACE_S = 0.5
RULES = ("red_light", "wrong_way", "lane_restriction", "no_stopping", "speeding")


def make_rules() -> dict[str, object]:
    signal = SignalState()
    for t, s in SIGNAL:
        signal.set(t, s)
    return {
        "red_light": RedLight(STOP_LINE, UP, signal, grace_s=RED_GRACE_S),
        "wrong_way": WrongWay(WRONG_WAY_LANE, UP, min_distance=0.15),
        "lane_restriction": LaneRestriction(CAR_LANE, [MOTORCYCLE], min_time_s=3.0),
        "no_stopping": NoStopping(NO_STOP_ZONE, max_dwell_s=20.0, still_distance=0.03),
        "speeding": Speeding(SPEED_A, SPEED_B, SPEED_DISTANCE_M, LIMIT_KMH, calibrated=True),
    }


@dataclass
class Scenario:
    name: str
    expect: set[str]  # the rules this vehicle breaks
    frames: list[tuple[float, Tracks]] = field(default_factory=list)


def kmh(units_per_s: float) -> float:
    return units_per_s * M_PER_UNIT * 3.6


def units_per_s(speed_kmh: float) -> float:
    return speed_kmh / 3.6 / M_PER_UNIT


def _render(
    path: Callable[[float], tuple[float, float]],
    t0: float,
    t1: float,
    cls: int,
    rng: np.random.Generator,
    jitter: float = 0.002,
    switch_at: float | None = None,
    gaps: tuple[tuple[float, float], ...] = (),
    size: tuple[float, float] = (0.06, 0.05),
    tid: int = 1,
) -> list[tuple[float, Tracks]]:
    frames = []
    w, h = size if cls != MOTORCYCLE else (0.025, 0.045)
    for k in range(int(round((t1 - t0) * FPS)) + 1):
        t = t0 + k / FPS
        if any(a <= t < b for a, b in gaps):
            frames.append((t, Tracks.empty()))
            continue
        x, y = path(t)
        x += rng.normal(0, jitter)
        y += rng.normal(0, jitter)
        box = np.array([[x - w / 2, y - h, x + w / 2, y]], np.float32)
        ident = tid + (1000 if switch_at is not None and t >= switch_at else 0)
        frames.append(
            (
                t,
                Tracks(
                    np.array([ident], np.int64),
                    box,
                    np.array([cls], np.int32),
                    np.array([0.8], np.float32),
                ),
            )
        )
    return frames


def straight(x: float, y0: float, vy: float, t0: float) -> Callable[[float], tuple[float, float]]:
    return lambda t: (x, y0 + vy * (t - t0))


def stop_and_go(
    x: float, y0: float, y_stop: float, v: float, t0: float, t_go: float
) -> Callable[[float], tuple[float, float]]:
    """Drive up to y_stop at speed v (units/s, moving up), wait until t_go, drive on."""
    t_arrive = t0 + (y0 - y_stop) / v

    def p(t: float) -> tuple[float, float]:
        if t < t_arrive:
            return x, y0 - v * (t - t0)
        if t < t_go:
            return x, y_stop
        return x, y_stop - v * (t - t_go)

    return p


def scenarios(seed: int = 7, per_case: int = 20) -> list[Scenario]:
    rng = np.random.default_rng(seed)
    out: list[Scenario] = []

    def add(name: str, expect: set[str], frames: list[tuple[float, Tracks]]) -> None:
        out.append(Scenario(name, expect, frames))

    for _ in range(per_case):
        # -- red light: cars in the car lane, 25-45 km/h (never speeding) ---------------
        v = units_per_s(rng.uniform(25, 45))
        x = rng.uniform(0.55, 0.65)
        y0 = 0.95

        def through(
            t_cross: float, x: float = x, v: float = v, y0: float = y0, **kw: object
        ) -> list[tuple[float, Tracks]]:
            t0 = t_cross - (y0 - 0.5) / v
            return _render(straight(x, y0, -v, t0), t0, t0 + (y0 - 0.05) / v, CAR, rng, **kw)  # type: ignore[arg-type]

        add("red: crosses on red", {"red_light"}, through(rng.uniform(14.0, 40.0)))
        add(
            "red: crosses on red, jittery box",
            {"red_light"},
            through(rng.uniform(14.0, 40.0), jitter=0.006),
        )
        tc = rng.uniform(14.0, 40.0)
        add(
            "red: crosses on red, ID switch on the approach",
            {"red_light"},
            through(tc, switch_at=tc - rng.uniform(0.6, 1.2)),
        )
        add("red: crosses on green", set(), through(rng.uniform(2.0, 9.5)))
        add("red: crosses on amber", set(), through(rng.uniform(10.2, 12.8)))
        add("red: crosses within the grace time", set(), through(rng.uniform(13.0, 13.4)))
        t_go = 43.0 + rng.uniform(0.5, 3.0)
        add(
            "red: stops on the line, goes on green",
            set(),
            _render(
                stop_and_go(x, 0.9, 0.5 + rng.uniform(-0.004, 0.004), v, 20.0, t_go),
                20.0,
                t_go + 2.0,
                CAR,
                rng,
                jitter=0.003,
            ),
        )

        # -- wrong way: the left lane flows up; vehicles coming down break the rule ----
        x = rng.uniform(0.34, 0.46)
        vd = units_per_s(rng.uniform(15, 35))
        add(
            "wrong way: drives down the lane",
            {"wrong_way"},
            _render(straight(x, 0.1, vd, 0.0), 0.0, 0.4 / vd, CAR, rng),
        )
        add(
            "wrong way: drives down, ID switch halfway",
            {"wrong_way"},
            _render(straight(x, 0.1, vd, 0.0), 0.0, 0.5 / vd, CAR, rng, switch_at=0.25 / vd),
        )
        add(
            "wrong way: drives up (right way)",
            set(),
            _render(straight(x, 0.9, -vd, 0.0), 0.0, 0.6 / vd, CAR, rng),
        )
        add(
            "wrong way: parked, jittery box",
            set(),
            _render(lambda t, x=x: (x, 0.6), 0.0, 20.0, CAR, rng, jitter=0.008),
        )
        add(
            "wrong way: backs up 6 m to park",
            set(),
            _render(lambda t, x=x: (x, 0.5 + min(t, 3.0) * 0.04), 0.0, 6.0, CAR, rng),
        )

        # -- lane restriction: motorcycles may not use the car lane ---------------------
        x = rng.uniform(0.53, 0.67)
        slow = units_per_s(rng.uniform(8, 15))  # through the lane over more than 3 s
        add(
            "lane: motorcycle in the car lane",
            {"lane_restriction"},
            _render(straight(x, 0.95, -slow, 0.0), 0.0, 6.0, MOTORCYCLE, rng),
        )
        add(
            "lane: motorcycle in the car lane, detection gap",
            {"lane_restriction"},
            _render(straight(x, 0.95, -slow, 0.0), 0.0, 6.0, MOTORCYCLE, rng, gaps=((2.0, 2.3),)),
        )
        add(
            "lane: motorcycle in the car lane, ID switch",
            {"lane_restriction"},
            _render(
                straight(x, 0.95, -slow, 0.0),
                0.0,
                8.0,
                MOTORCYCLE,
                rng,
                switch_at=rng.uniform(1.0, 6.0),
            ),
        )
        add(
            "lane: car in the car lane",
            set(),
            _render(straight(x, 0.95, -slow, 0.0), 0.0, 6.0, CAR, rng),
        )
        add(
            "lane: motorcycle changes lanes through it (2 s)",
            set(),
            _render(lambda t: (0.45 + 0.35 * t / 3.0, 0.7 - 0.05 * t), 0.0, 3.0, MOTORCYCLE, rng),
        )

        # -- no stopping --------------------------------------------------------------
        x = rng.uniform(0.78, 0.9)
        y = rng.uniform(0.3, 0.7)
        add(
            "no stopping: parks 30 s",
            {"no_stopping"},
            _render(lambda t, x=x, y=y: (x, y), 0.0, 30.0, CAR, rng),
        )
        add(
            "no stopping: parks 30 s, jittery box",
            {"no_stopping"},
            _render(lambda t, x=x, y=y: (x, y), 0.0, 30.0, CAR, rng, jitter=0.005),
        )
        add(
            "no stopping: parks 45 s, ID switch at 20 s",
            {"no_stopping"},
            _render(lambda t, x=x, y=y: (x, y), 0.0, 45.0, CAR, rng, switch_at=20.0),
        )
        add(
            "no stopping: stops 15 s (drop-off)",
            set(),
            _render(lambda t, x=x, y=y: (x, y - max(0.0, t - 15.0) * 0.1), 0.0, 18.0, CAR, rng),
        )
        add(
            "no stopping: slow queue through the zone",
            set(),
            _render(lambda t, x=x: (x, 0.79 - 0.0125 * t), 0.0, 44.0, CAR, rng),
        )
        add(
            "no stopping: parks beside the zone",
            set(),
            _render(lambda t, y=y: (0.68, y), 0.0, 30.0, CAR, rng),
        )

        # -- speeding: limit 50 km/h over 25 m ----------------------------------------
        x = rng.uniform(0.55, 0.65)
        for lo, hi, expect in ((58, 90, {"speeding"}), (20, 45, set())):
            vs = units_per_s(rng.uniform(lo, hi))
            add(
                f"speeding: {'over' if expect else 'under'} the limit",
                expect,
                _render(straight(x, 0.95, -vs, 0.0), 0.0, 0.9 / vs, CAR, rng, jitter=0.0015),
            )
        # -- near the thresholds, noisier boxes ----------------------------------------
        vs = units_per_s(rng.uniform(52, 57))
        add(
            "hard: speeding 4-14% over the limit, jittery",
            {"speeding"},
            _render(straight(x, 0.95, -vs, 0.0), 0.0, 0.9 / vs, CAR, rng, jitter=0.003),
        )
        vs = units_per_s(rng.uniform(43, 48))
        add(
            "hard: 4-14% under the limit, jittery",
            set(),
            _render(straight(x, 0.95, -vs, 0.0), 0.0, 0.9 / vs, CAR, rng, jitter=0.003),
        )
        v = units_per_s(rng.uniform(25, 45))
        tc = rng.uniform(14.0, 40.0)
        t0 = tc - (0.95 - 0.5) / v
        add(
            "hard: crosses on red, very jittery box (1% of the frame)",
            {"red_light"},
            _render(straight(0.6, 0.95, -v, t0), t0, t0 + 0.9 / v, CAR, rng, jitter=0.01),
        )
        t0 = 13.0 + RED_GRACE_S + rng.uniform(0.1, 0.4) - (0.95 - 0.5) / v
        add(
            "hard: crosses just after the grace time",
            {"red_light"},
            _render(straight(0.6, 0.95, -v, t0), t0, t0 + 0.9 / v, CAR, rng),
        )
        t0 = 13.0 + RED_GRACE_S - rng.uniform(0.15, 0.4) - (0.95 - 0.5) / v
        add(
            "hard: crosses just before the grace time ends",
            set(),
            _render(straight(0.6, 0.95, -v, t0), t0, t0 + 0.9 / v, CAR, rng),
        )
        xm = rng.uniform(0.55, 0.65)
        stay = rng.uniform(3.3, 4.0)
        add(
            "hard: motorcycle 3.3-4 s in the car lane",
            {"lane_restriction"},
            _render(lambda t, xm=xm, stay=stay: (xm if t < stay else 0.45, 0.6), 0.0, stay + 1.0,
                    MOTORCYCLE, rng),
        )  # fmt: skip
        stay = rng.uniform(2.0, 2.7)
        add(
            "hard: motorcycle 2-2.7 s in the car lane",
            set(),
            _render(lambda t, xm=xm, stay=stay: (xm if t < stay else 0.45, 0.6), 0.0, stay + 1.0,
                    MOTORCYCLE, rng),
        )  # fmt: skip
        dwell = rng.uniform(21.0, 24.0)
        add(
            "hard: parks 21-24 s",
            {"no_stopping"},
            _render(lambda t, dwell=dwell: (0.8, 0.5 if t < dwell else 0.5 - (t - dwell) * 0.1),
                    0.0, dwell + 3.0, CAR, rng, jitter=0.004),
        )  # fmt: skip
        dwell = rng.uniform(16.0, 19.0)
        add(
            "hard: stops 16-19 s",
            set(),
            _render(lambda t, dwell=dwell: (0.8, 0.5 if t < dwell else 0.5 - (t - dwell) * 0.1),
                    0.0, dwell + 3.0, CAR, rng, jitter=0.004),
        )  # fmt: skip
        vs = units_per_s(rng.uniform(65, 90))
        add(
            "speeding: over the limit, ID switch between the lines",
            {"speeding"},
            _render(straight(x, 0.95, -vs, 0.0), 0.0, 0.9 / vs, CAR, rng, switch_at=0.4 / vs),
        )
    return out


def run(scenario: Scenario) -> dict[str, list]:
    """Every rule on one scenario: the violations each reported."""
    rules = make_rules()
    got: dict[str, list] = {name: [] for name in rules}
    for t, tracks in scenario.frames:
        for name, rule in rules.items():
            got[name] += rule.update(tracks, t)  # type: ignore[attr-defined]
    return got


def score(scens: list[Scenario]) -> dict[str, dict[str, float | int]]:
    """Per rule: precision and recall over scenarios (a scenario counts once per rule)."""
    results = [run(s) for s in scens]
    out = {}
    for rule in RULES:
        tp = fp = fn = dup = 0
        for s, res in zip(scens, results, strict=True):
            got = res[rule]
            hit = bool(got)
            dup += max(0, len(got) - 1)
            if rule in s.expect:
                tp += hit
                fn += not hit
            else:
                fp += hit
        out[rule] = {
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "duplicates": dup,
        }
    return out
