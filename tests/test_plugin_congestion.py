"""``congestion`` through the registry: detections in, readings and jam events out.

Every test builds the analytic with ``registry.plugin("congestion").build`` and a small
camera context, and feeds it ``Sample``s of pixel detections (no frames).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from edge.analytics import registry
from edge.analytics.base import Sample
from edge.analytics.plugins.congestion import evaluation as ev
from edge.inference.detections import Detections
from edgewatch import contract

PLUGIN = registry.plugin("congestion")
W, H = ev.WH


def build(**over):  # type: ignore[no-untyped-def]
    return PLUGIN.build(ev.config(**over), ev.ctx())


def at(t: float) -> datetime:
    return datetime.fromtimestamp(ev.T0 + t, UTC)


def dets(boxes: list[ev.Box]) -> Detections:
    if not boxes:
        return Detections.empty()
    xyxy = np.array([b[:4] for b in boxes], np.float32) * np.array([W, H, W, H], np.float32)
    return Detections(
        xyxy,
        np.full(len(boxes), 0.8, np.float32),
        np.array([ev.NAMES.index(b[4]) for b in boxes], np.int32),
    )


def feed(analytic, script, t0: float, t1: float):  # type: ignore[no-untyped-def]
    """Samples at 2 fps from t0 to t1 (exclusive) of ``script(t)``; transitions, readings."""
    transitions, readings = [], []
    for k in range(int(round((t1 - t0) * ev.FPS))):
        t = t0 + k / ev.FPS
        out = analytic.update(Sample(None, at(t), ev.WH, dets(script(t))))
        transitions += out.transitions
        readings += out.readings
    return transitions, readings


def test_registered_with_its_kind() -> None:
    assert PLUGIN.type == "congestion"
    (kind,) = PLUGIN.kinds
    assert kind.name == "congestion" and kind.severity == "medium"
    assert not kind.urgent and not kind.review
    assert registry.kinds()["congestion"] is kind
    cfg = ev.config()
    assert (cfg.fps, cfg.window_s, cfg.slow, cfg.jammed, cfg.interval_s) == (2, 60, 0.3, 0.6, 30)
    assert "person" not in cfg.classes


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"zone": None}, "zone"),
        ({"zone": [(0.1, 0.1), (0.2, 0.2)]}, "at least 3 points"),
        ({"zone": [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]}, "no area"),
        ({"zone": [(0.1, 0.1), (1.2, 0.2), (0.3, 0.9)]}, "fractions"),
        ({"slow": 0.6, "jammed": 0.5}, "jammed: must be above slow"),
        ({"slow": 0.1, "hysteresis": 0.2}, "hysteresis: must be below slow"),
        ({"direction": (0, 0)}, "direction: must not be zero"),
        ({"classes": []}, "at least one class"),
    ],
)
def test_config_refuses_what_cannot_run(over, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        ev.config(**over)


def test_unknown_class_is_refused_at_build() -> None:
    with pytest.raises(ValueError, match=r"classes \['tram'\] are not in model"):
        build(classes=["car", "tram"])


def test_occupancy_is_the_covered_share_clipped_and_not_double_counted() -> None:
    grid = build().grid
    lower_half = (0.30, 0.525, 0.70, 0.95)  # overhangs the lane sideways: clipped
    occ, _ = grid.measure(np.array([lower_half]))
    assert occ == pytest.approx(0.5, abs=0.03)
    twice, _ = grid.measure(np.array([lower_half, (0.40, 0.6, 0.60, 0.95)]))
    assert twice == pytest.approx(occ)  # an overlapping box covers nothing new
    outside, _ = grid.measure(np.array([(0.62, 0.1, 0.9, 0.95)]))
    assert outside == 0.0
    assert grid.measure(np.zeros((0, 4)))[0] == 0.0


def test_queue_length_runs_from_the_head_end() -> None:
    grid = build().grid  # direction up: the head at y = 0.10
    head = np.array([(0.40, 0.10, 0.60, 0.44)])  # 40 % of the lane from the stop line
    tail = np.array([(0.40, 0.61, 0.60, 0.95)])  # 40 % at the far end, nothing at the head
    assert grid.measure(head)[1] == pytest.approx(0.4, abs=0.03)
    assert grid.measure(tail)[1] == 0.0
    # cars with short gaps between them are one queue
    assert grid.measure(np.array([b[:4] for b in ev.queue(6)]))[1] == pytest.approx(
        6 * 0.085 / 0.85, abs=0.04
    )
    # without a direction: the share of the lane with vehicles on it, wherever
    free = build(direction=None).grid
    assert free.measure(tail)[1] == pytest.approx(0.4, abs=0.03)
    assert free.measure(head)[1] == pytest.approx(0.4, abs=0.03)


def test_a_jam_is_one_event_new_updates_end() -> None:
    a = build(update_interval_s=60)
    tr, _ = feed(a, lambda t: ev.queue(10), 0, 400)
    tr2, _ = feed(a, lambda t: ev.flow(t, 2), 400, 600)
    steps = tr + tr2
    assert [s.type for s in steps][0] == "new" and steps[-1].type == "end"
    assert {s.event_id for s in steps} == {steps[0].event_id}
    assert [s.seq for s in steps] == list(range(len(steps)))
    new = steps[0]
    # decided once the window (60 s) is filled, not before
    assert 59 <= new.frame_time.timestamp() - ev.T0 <= 61
    assert new.kind == "congestion" and new.zone == "lane" and new.label == "jammed"
    assert new.snapshot
    assert new.box == (0.40, 0.10, 0.60, 0.95) and new.box_px == (512, 72, 768, 684)
    assert new.attributes["occupancy"] > 0.6 and new.attributes["vehicles"] >= 9
    updates = [s for s in steps if s.type == "update"]
    gaps = np.diff([s.frame_time.timestamp() for s in [new, *updates]])
    assert len(updates) >= 4 and (gaps >= 60).all()
    end = steps[-1]
    # flow's occupancy falls below 0.5 within a window, then the hold of 30 s
    assert 400 + 30 <= end.end_time.timestamp() - ev.T0 <= 400 + 60 + 30 + 1
    assert a.state.name == "free"


def test_readings_every_interval_and_unknown_before_the_window_fills() -> None:
    a = build()
    _, readings = feed(a, lambda t: ev.queue(5), 0, 120)
    times = [r.time.timestamp() - ev.T0 for r in readings]
    # multiples of 30 s since the epoch (T0 is 20 s past one)
    assert times == pytest.approx([10, 40, 70, 100], abs=0.6)
    assert readings[0].state == "unknown" and readings[-1].state == "slow"
    for r in readings:
        assert r.period_s == 30
        assert set(r.values) == {"occupancy", "queue_length", "vehicles"}
        assert r.values["vehicles"] == pytest.approx(5)
        assert r.values["occupancy"] == pytest.approx(5 * 0.07 / 0.85, abs=0.03)
        assert r.values["queue_length"] == pytest.approx(5 * 0.085 / 0.85, abs=0.04)
        contract.ReadingMessage(
            camera_id="cam1",
            analytic="congestion",
            analytic_type="congestion",
            time=r.time,
            period_s=r.period_s,
            state=r.state,
            values=r.values,
            units=r.units,
        )


def test_dead_stream_reads_no_frames_and_close_ends_the_jam() -> None:
    a = build()
    tr, _ = feed(a, lambda t: ev.queue(10), 0, 100)
    assert [s.type for s in tr] == ["new"]
    assert a.tick(at(100.5)).readings == []  # frames were just here
    dead = a.tick(at(125)).readings  # the 120 s reading is due, no frames since 100 s
    assert len(dead) == 1 and dead[0].state == "no_frames"
    assert set(dead[0].values.values()) == {None}
    assert a.tick(at(126)).readings == []  # once per interval
    out = a.close(at(130))
    assert [s.type for s in out.transitions] == ["end"]
    assert out.transitions[0].event_id == tr[0].event_id and out.transitions[0].kind
    assert a.close(at(131)).transitions == []


def test_a_gap_in_the_frames_restarts_the_window() -> None:
    """After a gap the window fills again before a state is decided: a truck filling the
    view right after a reconnect is not a jam."""
    a = build()
    feed(a, lambda t: ev.flow(t, 2), 0, 100)
    tr, readings = feed(a, lambda t: ev.truck(0.12, 0.95), 200, 230)
    assert tr == []
    assert readings and all(r.state == "unknown" for r in readings)


@pytest.mark.parametrize("sc", ev.scenarios(), ids=lambda s: s.name)
def test_scripted_scenario_episodes(sc) -> None:  # type: ignore[no-untyped-def]
    """Each scripted jam is one episode; the near misses (hovering just below, a long
    truck, the next lane's queue, red-phase queues, busy flow) none; the flicker one."""
    r = ev.run(sc, seed=3)
    cfg = ev.config()
    tp, fp, fn = ev.score(sc, r.episodes, cfg.window_s + cfg.hold_s)
    assert (tp, fp, fn) == (len(sc.jams), 0, 0), r.episodes
    assert len(r.episodes) == len(sc.jams)


def test_without_hysteresis_the_flicker_opens_many_episodes() -> None:
    """The flicker scenario has teeth: with no hysteresis and no hold it splits."""
    sc = next(s for s in ev.scenarios() if s.name == "flicker_at_threshold")
    assert len(ev.run(sc).episodes) == 1
    assert len(ev.run(sc, hysteresis=0.0, hold_s=0.0).episodes) > 1


def test_evaluate_reports_precision_and_recall() -> None:
    r = ev.evaluate()
    assert r["scenarios"] == r["positives"] + r["near_misses"]
    assert r["near_misses"] >= 5
    assert r["fp"] == 0 and r["fn"] == 0 and r["tp"] >= 6
    assert r["precision"] == 1.0 and r["recall"] == 1.0
    assert "not an accuracy claim" in r["notes"]
