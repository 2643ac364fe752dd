"""``crowd`` through the registry: people counted per sample, an event with hysteresis, a
reading every interval."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from edge.analytics import registry
from edge.analytics.base import Analytic, CameraContext, Outputs, Sample
from edge.analytics.geometry import RuleConfigError
from edge.analytics.plugins.crowd.config import CrowdAnalytic
from edge.inference.detections import Detections

NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
W, H = 1280, 720
PLAZA = [(0.2, 0.3), (0.8, 0.3), (0.8, 0.9), (0.2, 0.9)]
T0 = datetime(2025, 3, 3, 17, 0, tzinfo=TZ)  # on the minute
KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")


def ctx() -> CameraContext:
    return CameraContext(
        camera=SimpleNamespace(id="cam1", location=None),
        site="s1",
        edge_id="e1",
        class_names=lambda _m: NAMES,
        detector=lambda _m: None,
        subscribe=lambda *_a: None,
        plate_reader=lambda: None,
    )


def people(
    n: int, y: float = 0.6, score: float = 0.7, cls: str = "person", x0: float = 0.25
) -> Detections:
    """``n`` boxes standing in a row at anchor height ``y``."""
    if n == 0:
        return Detections.empty()
    xs = x0 + 0.04 * np.arange(n) % 0.5
    xyxy = np.stack(
        [(xs - 0.015) * W, np.full(n, (y - 0.12) * H), (xs + 0.015) * W, np.full(n, y * H)], 1
    )
    return Detections(
        xyxy.astype(np.float32),
        np.full(n, score, np.float32),
        np.full(n, NAMES.index(cls), np.int32),
    )


def crowd(**kw: object) -> Analytic:
    cfg = CrowdAnalytic(zone=PLAZA, **kw)  # type: ignore[arg-type]
    return registry.plugin("crowd").build(cfg, ctx())


def feed(
    rt: Analytic, counts: Callable[[float], Detections], seconds: float, start: datetime = T0
) -> list[tuple[float, Outputs]]:
    """One sample a second (the default fps); (t, outputs) of each."""
    out = []
    for k in range(int(seconds) + 1):
        now = start + timedelta(seconds=k)
        out.append(
            (float(k), rt.update(Sample(frame=None, time=now, wh=(W, H), detections=counts(k))))
        )
    return out


def steps(out: list[tuple[float, Outputs]]) -> list[tuple[float, str]]:
    return [(t, tr.type) for t, o in out for tr in o.transitions]


# -- manifest and config --------------------------------------------------------------------


def test_crowd_is_registered_with_its_kind_and_readings() -> None:
    p = registry.plugin("crowd")
    (kind,) = p.kinds
    assert kind.name == "crowd" and kind.severity == "medium" and not kind.review
    assert not kind.urgent and set(p.readings) == {"people", "people_max"}
    cfg = TypeAdapter(registry.config_union()).validate_python({"type": "crowd"})
    assert isinstance(cfg, CrowdAnalytic) and cfg.name == "crowd" and cfg.classes == ["person"]
    assert cfg.min_people == 10 and cfg.min_duration_s == 30 and cfg.clear_at == 7


def test_clear_below_defaults_to_seven_tenths_rounded_and_may_not_exceed_min_people() -> None:
    assert CrowdAnalytic(min_people=4).clear_at == 3
    assert CrowdAnalytic(min_people=25).clear_at == 18
    assert CrowdAnalytic(min_people=10, clear_below=9).clear_at == 9
    with pytest.raises(ValidationError, match="clear_below"):
        CrowdAnalytic(min_people=10, clear_below=11)
    with pytest.raises(ValidationError, match="zone"):
        CrowdAnalytic(zone=[(0, 0), (1, 1)])
    with pytest.raises(RuleConfigError, match="classes"):
        registry.plugin("crowd").build(CrowdAnalytic(classes=["ghost"]), ctx())


# -- the event ------------------------------------------------------------------------------


def test_twelve_people_for_long_enough_is_one_crowd_event() -> None:
    rt = crowd()
    out = feed(rt, lambda t: people(12 if 5 <= t <= 60 else 0), 120)
    assert [s for _, s in steps(out)] == ["new", "end"]
    t_new, new = next((t, tr) for t, o in out for tr in o.transitions)
    assert t_new == 35  # 30 s after the first sample at 12, not before
    assert new.kind == "crowd" and new.snapshot and new.label == "person"
    assert new.attributes["people"] == 12 and new.attributes["min_people"] == 10
    assert new.start_time == T0 + timedelta(seconds=5)
    x1, y1, x2, y2 = new.box  # around the people counted
    assert 0.2 <= x1 < x2 <= 0.8 and y2 == pytest.approx(0.6, abs=0.01) and y1 < 0.5
    t_end, end = next((t, tr) for t, o in out for tr in o.transitions if tr.type == "end")
    assert t_end == 61 + 30 and end.attributes["reason"] == "cleared"  # held 30 s at 0
    assert end.attributes["people_max"] == 12 and end.attributes["duration_s"] == 55
    assert end.event_id == new.event_id and end.seq == 1


def test_too_few_people_or_too_short_is_no_event() -> None:
    assert not steps(feed(crowd(), lambda t: people(9), 300))
    assert not steps(feed(crowd(), lambda t: people(12 if t < 29 else 0), 100))
    assert steps(feed(crowd(), lambda t: people(10 if t <= 31 else 0), 100))[0] == (30, "new")


def test_people_outside_the_zone_faint_boxes_and_cars_are_not_counted() -> None:
    assert not steps(feed(crowd(), lambda t: people(15, y=0.93), 60))
    assert not steps(feed(crowd(), lambda t: people(15, score=0.3), 60))
    assert not steps(feed(crowd(), lambda t: people(15, cls="car"), 60))
    assert steps(feed(crowd(), lambda t: people(15, y=0.85), 60))


def test_short_dips_are_forgiven_long_ones_restart_the_clock() -> None:
    def dips(t: float) -> Detections:  # under 10 for 2 s every 10 s
        return people(8 if t % 10 in (4, 5) else 12)

    assert steps(feed(crowd(), dips, 40))[0] == (30, "new")

    def gaps(t: float) -> Detections:  # under 10 for 5 s every 20 s
        return people(8 if t % 20 >= 15 else 12)

    assert not steps(feed(crowd(), gaps, 120))


def test_hysteresis_a_wavering_count_is_one_event() -> None:
    def waver(t: float) -> Detections:
        if t < 40:
            return people(12)
        if t < 200:  # 8 (above clear_below) and 6 (below, 20 s: under hold_s) by turns
            return people(8 if (t // 20) % 2 else 6)
        return people(0)

    out = feed(crowd(), waver, 260)
    assert [s for _, s in steps(out) if s != "update"] == ["new", "end"]
    assert steps(out)[-1] == (230, "end")  # below 7 from 200, held 30 s
    # no hysteresis (clear below 10 at once) would have ended it at 40 + hold
    out2 = feed(crowd(clear_below=10, hold_s=5), waver, 260)
    assert [s for _, s in steps(out2)][:2] == ["new", "end"] and steps(out2)[1][0] < 60


def test_updates_at_most_every_update_interval_and_close_ends() -> None:
    rt = crowd(update_interval_s=20)
    out = feed(rt, lambda t: people(11 + int(t) % 3), 120)
    ts = [t for t, s in steps(out) if s == "update"]
    assert ts == [50, 70, 90, 110]
    (end,) = rt.close(T0 + timedelta(seconds=121)).transitions
    assert end.type == "end" and end.attributes["reason"] == "closed"
    assert end.attributes["people_max"] == 13 and end.seq == 5
    assert not rt.close(T0 + timedelta(seconds=122)).transitions


# -- readings -------------------------------------------------------------------------------


def test_a_reading_each_interval_mean_and_max_aligned_to_the_clock() -> None:
    rt = crowd(interval_s=60)
    start = T0 + timedelta(seconds=30)  # 17:00:30: the first interval is half covered
    out = feed(rt, lambda t: people(int(t) % 5), 149, start=start)  # 0..4 repeating
    readings = [r for _, o in out for r in o.readings]
    assert [r.time for r in readings] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    first, second = readings
    assert first.values == {
        "people": pytest.approx(np.mean([k % 5 for k in range(30)])),
        "people_max": 4.0,
    }
    assert second.values["people"] == pytest.approx(np.mean([k % 5 for k in range(30, 90)]))
    assert first.period_s == 60 and first.state == "clear" and first.units["people"] == "people"
    assert all(KEY.match(k) for r in readings for k in r.values)


def test_a_dead_stream_gets_empty_readings_and_its_event_ends() -> None:
    rt = crowd(interval_s=60)
    feed(rt, lambda t: people(12), 50)  # 17:00:00-17:00:50, the event at 30 s
    assert rt.tick(T0 + timedelta(seconds=62)).readings == []  # the grace for late samples
    out = rt.tick(T0 + timedelta(seconds=66))
    (r,) = out.readings
    assert r.values["people"] == 12 and r.state == "crowd"
    assert not out.transitions
    later = rt.tick(T0 + timedelta(seconds=186))
    assert [x.values for x in later.readings] == [{"people": None, "people_max": None}] * 2
    (end,) = later.transitions  # no sample for 60 s and more
    assert end.type == "end" and end.attributes["reason"] == "no_frames"


def test_the_scripted_evaluation_has_near_misses_and_no_false_alarm() -> None:
    from edge.analytics.plugins.crowd.evaluation import evaluate

    r = evaluate(seed=2)
    assert r["near_misses"] >= 6 and r["positives"] >= 5
    assert r["fp"] == 0 and r["precision"] == 1.0
    assert r["recall"] >= 0.8, r["wrong"]
    assert r["reading_mae"] is not None and r["reading_mae"] < 0.2
