"""``line_count`` through the registry: detections in, readings of crossings out.

Every test builds the analytic with ``registry.plugin("line_count").build`` and a small
camera context, and feeds it ``Sample``s of pixel detections (no frames: it declares
detections only), so the real ByteTrack, counter and intervals run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from edge.analytics import registry
from edge.analytics.base import Sample
from edge.analytics.plugins.line_count import evaluation as ev
from edge.inference.detections import Detections
from edgewatch import contract

PLUGIN = registry.plugin("line_count")
CAR, BUS, TRAIN = ev.NAMES.index("car"), ev.NAMES.index("bus"), ev.NAMES.index("train")


def build(**over):  # type: ignore[no-untyped-def]
    return PLUGIN.build(ev.config(**over), ev.ctx())


def at(t: float) -> datetime:
    return datetime.fromtimestamp(ev.T0 + t, UTC)


def car_at(x: float, y: float, cls: int = CAR, scores: np.ndarray | None = None) -> Detections:
    """One car box whose anchor (bottom-centre) is at pixel (x, y)."""
    return Detections(
        np.array([[x - 75, y - 90, x + 75, y]], np.float32),
        np.array([0.85], np.float32),
        np.array([cls], np.int32),
        scores,
    )


def drive(analytic, path, t0: float, t1: float, **kw):  # type: ignore[no-untyped-def]
    """Feed one car along ``path(t)`` from t0 to t1 at 10 fps; the readings."""
    out = []
    for k in range(int(round((t1 - t0) * ev.FPS)) + 1):
        t = t0 + k / ev.FPS
        det = car_at(*path(t), **kw) if path is not None else Detections.empty()
        out += analytic.update(Sample(None, at(t), ev.WH, det)).readings
    return out


def down(x: float = 640, y0: float = 250, v: float = 150, t0: float = 0.0):  # type: ignore[no-untyped-def]
    return lambda t: (x, y0 + v * (t - t0))


def totals(readings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for r in readings:
        for k, v in r.values.items():
            if k != "coverage" and v:
                out[k] = out.get(k, 0) + int(v)
    return out


def test_registered_with_no_event_kinds() -> None:
    assert PLUGIN.type == "line_count"
    assert PLUGIN.kinds == ()
    assert PLUGIN.needs == ("detections",)
    cfg = ev.config()
    assert (cfg.model, cfg.fps, cfg.interval_s, cfg.min_score, cfg.track_score) == (
        "yolox_nano",
        10.0,
        60.0,
        0.1,
        0.5,
    )
    assert cfg.models_used() == {"yolox_nano": list(cfg.classes)}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "at least 1"),
        (
            [
                {"name": "a", "a": [0.1, 0.5], "b": [0.9, 0.5], "direction": [0, 1]},
                {"name": "a", "a": [0.1, 0.6], "b": [0.9, 0.6], "direction": [0, 1]},
            ],
            "names must be unique",
        ),
        (
            [{"name": "a", "a": [0.1, 0.5], "b": [0.9, 0.5], "direction": [1, 0]}],
            "lines.a.direction: must point across the line",
        ),
        (
            [{"name": "a", "a": [0.5, 0.5], "b": [0.5, 0.5], "direction": [0, 1]}],
            "a and b must be different",
        ),
        (
            [{"name": "a", "a": [0.1, 0.5], "b": [1.2, 0.5], "direction": [0, 1]}],
            "fractions",
        ),
        (
            [{"name": "Bad Name", "a": [0.1, 0.5], "b": [0.9, 0.5], "direction": [0, 1]}],
            "pattern",
        ),
        (
            [
                {"name": f"l{i}", "a": [0.1, 0.1 * i], "b": [0.9, 0.1 * i], "direction": [0, 1]}
                for i in range(1, 6)
            ],
            "more than a reading carries",
        ),
    ],
)
def test_config_refuses_what_cannot_run(lines, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        ev.config(lines=lines)


def test_config_refuses_reading_keys_over_64_characters() -> None:
    line = {"name": "x" * 32, "a": [0.1, 0.5], "b": [0.9, 0.5], "direction": [0, 1]}
    ev.config(lines=[line])  # COCO's names fit
    with pytest.raises(ValidationError, match="lines.x+: reading key .* is too long"):
        ev.config(lines=[line], classes=["articulated_double_decker_bus"])


def test_config_refuses_a_class_called_total_and_unknown_classes() -> None:
    with pytest.raises(ValidationError, match='called "total"'):
        ev.config(classes=["car", "total"])
    with pytest.raises(ValueError, match=r"classes \['tram'\] are not in model"):
        build(classes=["car", "tram"])


@pytest.mark.parametrize("sc", ev.scenarios(), ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [0, 1])
def test_scripted_scenario_counts(sc, seed) -> None:  # type: ignore[no-untyped-def]
    """True crossings count once each; near misses (1 px short, over the extension,
    jitter and flicker on the line, parallel, onto the line and back, a dog) never."""
    got = ev.run(sc, seed=seed)
    assert got == sc.expect


def test_evaluate_reports_precision_and_recall() -> None:
    r = ev.evaluate()
    assert r["scenarios"] == r["positives"] + r["near_misses"]
    assert r["near_misses"] >= 8
    assert r["fp"] == 0 and r["fn"] == 0 and r["tp"] >= 10
    assert r["precision"] == 1.0 and r["recall"] == 1.0
    assert "not an accuracy claim" in r["notes"]


def test_no_margin_counts_jitter_twice() -> None:
    """The band is what keeps a car standing on the line from counting: without it the
    same scenario counts a crossing each way (so the scenario can fail)."""
    sc = next(s for s in ev.scenarios() if s.name == "stands_on_line_jitter")
    assert ev.run(sc) == {}
    assert ev.run(sc, margin=0.0, confirm_s=0.0) != {}


def test_one_reading_per_interval_with_every_key() -> None:
    a = build(interval_s=10)
    readings = drive(a, down(), 0, 4)  # crosses y=432 at about 1.2 s
    readings += drive(a, None, 4.1, 9.9)
    assert readings == []
    readings += drive(a, down(t0=10), 10, 14)  # the next interval: another car
    assert len(readings) == 1
    r = readings[0]
    assert r.time == at(10) and r.period_s == 10
    assert r.state is None
    keys = {f"{ln}.{c}.{d}" for ln in ("main", "side") for c in
            ["car", "motorcycle", "bus", "truck", "bicycle", "person", "total"]
            for d in ("forward", "backward")}  # fmt: skip
    assert set(r.values) == keys | {"coverage"}
    assert r.values["main.car.forward"] == 1 and r.values["main.total.forward"] == 1
    assert sum(v for k, v in r.values.items() if k != "coverage") == 2  # car + total
    assert all(r.units[k] == "count" for k in keys)
    assert r.values["coverage"] == pytest.approx(1.0, abs=0.02)
    last = a.close(at(14.2)).readings
    assert len(last) == 1 and last[0].period_s == pytest.approx(4.2)
    assert last[0].values["main.car.forward"] == 1
    assert 0.9 <= last[0].values["coverage"] <= 1.0


def test_reading_fits_the_contract() -> None:
    a = build(interval_s=5)
    readings = drive(a, down(), 0, 5.5)
    assert readings
    for r in readings:
        msg = contract.ReadingMessage(
            camera_id="cam1",
            analytic="line_count",
            analytic_type="line_count",
            time=r.time,
            period_s=r.period_s,
            state=r.state,
            values=r.values,
            units=r.units,
        )
        assert msg.values == r.values


def test_dead_stream_reads_unknown_not_zero() -> None:
    a = build(interval_s=10)
    drive(a, down(x=300), 0, 3)
    assert a.tick(at(4)).readings == []  # the interval has not ended
    first = a.tick(at(12.5)).readings  # no frames since 3 s: the interval closes anyway
    assert len(first) == 1 and first[0].values["main.car.forward"] == 1
    assert first[0].values["coverage"] == pytest.approx(0.3, abs=0.02)
    empty = a.tick(at(22.5)).readings
    assert len(empty) == 1 and empty[0].state == "no_frames"
    assert empty[0].values["main.car.forward"] is None and empty[0].values["coverage"] == 0


def test_a_car_lost_just_past_the_line_counts_once_at_close() -> None:
    """Pending (not yet held for confirm_s) when the worker stops: it was last seen past
    the band, so it counts, in the partial interval close publishes."""
    a = build(interval_s=60, confirm_s=2.0)
    readings = drive(a, down(y0=300), 0, 1.2)  # reaches 480 px, past 432 + the band
    readings += a.close(at(1.3)).readings
    assert totals(readings) == {"main.car.forward": 1, "main.total.forward": 1}


def test_class_vote_among_the_analytics_classes() -> None:
    """A box the model calls "train" first and "bus" second is a bus here."""
    scores = np.zeros((1, len(ev.NAMES)), np.float32)
    scores[0, TRAIN], scores[0, BUS] = 0.85, 0.6
    a = build()
    readings = drive(a, down(), 0, 4, cls=TRAIN, scores=scores)
    readings += a.close(at(4.1)).readings
    assert totals(readings) == {"main.bus.forward": 1, "main.total.forward": 1}


def test_u_turn_counts_each_way_once_and_no_more() -> None:
    """Back and forth across the line three times: one forward, one backward."""
    a = build()
    ys = [250, 600, 250, 600, 250, 600]

    def path(t: float) -> tuple[float, float]:
        return 640.0, float(np.interp(t, np.arange(len(ys)) * 3.0, ys))

    readings = drive(a, path, 0, 15)
    readings += a.close(at(15.1)).readings
    assert totals(readings) == {
        "main.car.forward": 1,
        "main.car.backward": 1,
        "main.total.forward": 1,
        "main.total.backward": 1,
    }
