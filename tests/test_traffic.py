"""ByteTrack and the traffic rules, on arrays only: tracks in, violations out."""

from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.tracking import ByteTrack, Tracks, greedy_match, iou_matrix
from edge.analytics.traffic import (
    LaneRestriction,
    NoHelmet,
    NoStopping,
    RedLight,
    RuleConfigError,
    SignalState,
    Speeding,
    WrongWay,
    inside,
)
from edge.inference.detections import Detections
from tests import traffic_scenes as ts


def one(
    tid: int, x: float, y: float, cls: int = ts.CAR, w: float = 0.06, h: float = 0.05
) -> Tracks:
    return Tracks(
        np.array([tid], np.int64),
        np.array([[x - w / 2, y - h, x + w / 2, y]], np.float32),
        np.array([cls], np.int32),
        np.array([0.9], np.float32),
    )


def feed(rule, path, t0: float = 0.0, t1: float = 10.0, tid: int = 1, cls: int = ts.CAR, fps=10.0):  # type: ignore[no-untyped-def]
    out = []
    for k in range(int(round((t1 - t0) * fps)) + 1):
        t = t0 + k / fps
        x, y = path(t)
        out += rule.update(one(tid, x, y, cls), t)
    return out


# -- tracking -----------------------------------------------------------------------------


def dets(boxes: list[list[float]], conf: list[float], cls: list[int] | None = None) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(conf, np.float32),
        np.array(cls or [2] * len(conf), np.int32),
    )


def test_iou_and_greedy_match() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[20, 20, 30, 30], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[1, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(50 / 150)
    assert greedy_match(iou, 0.2) == [(1, 0), (0, 1)]
    assert greedy_match(iou, 0.5) == [(1, 0)]


def test_bytetrack_keeps_ids_through_jitter_low_scores_and_a_missed_frame() -> None:
    rng = np.random.default_rng(1)
    bt = ByteTrack(fps_hint=10)
    seen = []
    for k in range(40):
        t = k * 0.1
        boxes = [[100 + 12 * k, 100, 160 + 12 * k, 150], [600 - 9 * k, 300, 680 - 9 * k, 360]]
        boxes = (np.array(boxes) + rng.normal(0, 2.0, (2, 4))).tolist()
        conf = [0.9, 0.25 if 12 <= k < 18 else 0.85]  # the second is blurred for 0.6 s
        if k == 25:
            conf[0] = 0.0  # not detected at all for one frame
        out = bt.update(dets(boxes, conf), t)
        seen.append(dict(zip(out.track_id.tolist(), out.xyxy[:, 0].tolist(), strict=True)))
    assert seen[0] == {}  # tentative on the first frame (min_hits 2)
    ids = set().union(*[s.keys() for s in seen])
    assert ids == {1, 2}, ids  # no new id for the low-score stretch or the gap
    assert 2 in seen[14] and 1 not in seen[25] and 1 in seen[26]


def test_bytetrack_new_id_after_long_absence_and_class_vote() -> None:
    bt = ByteTrack(fps_hint=10, lost_ttl_s=1.0)
    box = [[100, 100, 160, 150]]
    for k in range(5):
        out = bt.update(dets(box, [0.9], [2 if k != 3 else 7]), k * 0.1)
    assert out.class_id.tolist() == [2]  # one "truck" vote does not make it a truck
    first = out.track_id.tolist()
    for k in range(5, 25):
        bt.update(dets([], []), k * 0.1)  # gone for 2 s > lost_ttl_s
    bt.update(dets(box, [0.9]), 2.5)
    out = bt.update(dets(box, [0.9]), 2.6)
    assert out.track_id.tolist() != first and len(out) == 1
    # a lone low-score box never starts a track
    bt2 = ByteTrack()
    for k in range(5):
        assert len(bt2.update(dets(box, [0.3]), k * 0.1)) == 0


# -- geometry and signal ------------------------------------------------------------------


def test_inside_and_signal_history() -> None:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    assert inside(square, np.array([[0.5, 0.5], [1.5, 0.5], [-0.1, 0.2]])).tolist() == [
        True,
        False,
        False,
    ]
    s = SignalState()
    assert s.at(5.0) == ("unknown", None)
    s.set(0.0, "green")
    s.set(10.0, "red")
    s.set(10.5, "red")  # a repeat changes nothing
    assert s.at(9.99) == ("green", 0.0) and s.at(12.0) == ("red", 10.0)
    with pytest.raises(ValueError):
        s.set(11.0, "purple")
    with pytest.raises(ValueError):
        s.set(5.0, "green")


# -- rules --------------------------------------------------------------------------------


def red_rule(grace: float = 0.5) -> RedLight:
    sig = SignalState()
    for t, state in ts.SIGNAL:
        sig.set(t, state)
    return RedLight(ts.STOP_LINE, ts.UP, sig, grace_s=grace)


def test_red_light_interpolates_the_crossing_and_respects_amber_and_grace() -> None:
    v = 0.2  # units per second
    # clearly past the line (its 0.01 margin: y = 0.49) at exactly t = 20.03, between the
    # frames at 20.0 and 20.1
    got = feed(red_rule(), lambda t: (0.6, 0.49 - v * (t - 20.03)), 15.0, 22.0)
    assert len(got) == 1 and got[0].time == pytest.approx(20.03, abs=1e-6)
    assert got[0].details["signal"] == "red" and got[0].details["red_for_s"] == 7.03
    assert feed(red_rule(), lambda t: (0.6, 0.5 - v * (t - 11.0)), 8.0, 14.0) == []  # amber
    assert feed(red_rule(), lambda t: (0.6, 0.5 - v * (t - 13.3)), 10.0, 16.0) == []  # grace
    assert len(feed(red_rule(0.0), lambda t: (0.6, 0.5 - v * (t - 13.3)), 10.0, 16.0)) == 1
    # beside the stop line (a free right turn lane): not a crossing of it
    assert feed(red_rule(), lambda t: (0.85, 0.5 - v * (t - 20.0)), 15.0, 22.0) == []


def test_red_light_stopping_on_the_line_is_not_crossing() -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        rule = red_rule()
        stop = 0.5 + rng.uniform(-0.005, 0.005)
        path = ts.stop_and_go(0.6, 0.9, stop, 0.2, 14.0, 44.0)
        noisy = lambda t, p=path: (p(t)[0], p(t)[1] + rng.normal(0, 0.003))  # noqa: E731
        assert feed(rule, noisy, 14.0, 47.0) == []


def test_red_light_unknown_signal_and_once_per_vehicle() -> None:
    rule = RedLight(ts.STOP_LINE, ts.UP, SignalState())  # no signal reported yet
    assert feed(rule, lambda t: (0.6, 0.9 - 0.2 * t), 0.0, 4.0) == []
    rule = red_rule()
    path = lambda t: (0.6, 0.9 - 0.2 * (t - 20) if t < 22.5 else 0.9 - 0.2 * (25 - t))  # noqa: E731
    assert len(feed(rule, path, 20.0, 27.5)) == 1  # crosses, backs over the line, crosses again


def test_wrong_way_needs_distance_against_the_lane() -> None:
    mk = lambda: WrongWay(ts.WRONG_WAY_LANE, ts.UP, min_distance=0.15)  # noqa: E731
    got = feed(mk(), lambda t: (0.4, 0.1 + 0.05 * t), 0.0, 6.0)
    assert len(got) == 1 and 2.9 <= got[0].time <= 3.2  # 0.15 after entering
    assert feed(mk(), lambda t: (0.4, 0.9 - 0.05 * t), 0.0, 10.0) == []  # the right way
    assert feed(mk(), lambda t: (0.4, 0.5 + 0.02 * min(t, 4.0)), 0.0, 8.0) == []  # backs 4 m
    assert feed(mk(), lambda t: (0.25 + 0.05 * t, 0.5), 0.0, 10.0) == []  # crosses the lane
    rng = np.random.default_rng(0)
    parked = lambda t: (0.4 + rng.normal(0, 0.01), 0.5 + rng.normal(0, 0.01))  # noqa: E731
    assert feed(mk(), parked, 0.0, 60.0) == []


def test_lane_restriction_time_class_and_gaps() -> None:
    mk = lambda: LaneRestriction(ts.CAR_LANE, [ts.MOTORCYCLE], min_time_s=3.0, gap_s=0.5)  # noqa: E731
    got = feed(mk(), lambda t: (0.6, 0.9 - 0.02 * t), 0.0, 5.0, cls=ts.MOTORCYCLE)
    assert len(got) == 1 and got[0].time == pytest.approx(3.0)
    assert feed(mk(), lambda t: (0.6, 0.9 - 0.02 * t), 0.0, 5.0, cls=ts.CAR) == []
    assert feed(mk(), lambda t: (0.6, 0.9), 0.0, 2.5, cls=ts.MOTORCYCLE) == []
    # a 0.3 s detection gap is forgiven, a 1 s visit elsewhere restarts the clock
    rule = mk()
    out = []
    for k in range(70):
        t = k / 10
        if 1.0 <= t < 1.3:
            continue
        x = 0.45 if 2.0 <= t < 3.0 else 0.6
        out += rule.update(one(1, x, 0.6, ts.MOTORCYCLE), t)
    assert len(out) == 1 and out[0].time == pytest.approx(3.0 + 3.0)


def test_no_stopping_dwell_not_slow_traffic() -> None:
    mk = lambda: NoStopping(ts.NO_STOP_ZONE, max_dwell_s=20.0, still_distance=0.03)  # noqa: E731
    got = feed(mk(), lambda t: (0.8, 0.5), 0.0, 25.0)
    assert len(got) == 1 and got[0].time == pytest.approx(20.0)
    assert feed(mk(), lambda t: (0.8, 0.5 if t < 15 else 0.5 - 0.1 * (t - 15)), 0.0, 19.0) == []
    assert feed(mk(), lambda t: (0.8, 0.79 - 0.0125 * t), 0.0, 44.0) == []
    assert feed(mk(), lambda t: (0.6, 0.5), 0.0, 40.0) == []


def test_speeding_interpolates_and_flags_uncalibrated_cameras() -> None:
    def measure(kmh: float, calibrated: bool = True, phase: float = 0.037):  # type: ignore[no-untyped-def]
        rule = Speeding(ts.SPEED_A, ts.SPEED_B, 25.0, 50.0, calibrated=calibrated)
        v = ts.units_per_s(kmh)
        return feed(rule, lambda t: (0.6, 0.95 - v * (t + phase)), 0.0, 0.9 / v)

    for kmh in (55.0, 72.0, 110.0):
        [v] = measure(kmh)
        assert v.details["speed_kmh"] == pytest.approx(kmh, abs=0.15)
        assert v.details["monitoring_only"] is False
    assert measure(45.0) == [] and measure(49.5) == []
    [v] = measure(72.0, calibrated=False)
    assert v.details["monitoring_only"] is True
    with pytest.raises(RuleConfigError):
        Speeding(ts.SPEED_A, ts.SPEED_B, 0.0, 50.0)


def test_an_id_switch_between_the_speed_lines_is_stitched() -> None:
    rule = Speeding(ts.SPEED_A, ts.SPEED_B, 25.0, 50.0, calibrated=True)
    v = ts.units_per_s(80.0)
    out = []
    for k in range(int(0.9 / v * 10) + 1):
        t = k / 10
        out += rule.update(one(1 if t < 0.3 / v else 77, 0.6, 0.95 - v * t), t)
    assert len(out) == 1 and out[0].track_id == 77
    assert out[0].details["earlier_track_id"] == 1
    assert out[0].details["speed_kmh"] == pytest.approx(80.0, abs=0.5)


def test_two_vehicles_side_by_side_are_not_stitched() -> None:
    rule = LaneRestriction(ts.CAR_LANE, [ts.MOTORCYCLE], min_time_s=3.0)
    out = []
    for k in range(50):
        t = k / 10
        tr = [one(1, 0.55, 0.6, ts.MOTORCYCLE)] if t < 2.0 else []
        tr.append(one(2, 0.65, 0.6, ts.MOTORCYCLE)) if t >= 2.0 else None  # another bike
        both = Tracks(*(np.concatenate([getattr(x, f) for x in tr]) for f in (
            "track_id", "xyxy", "class_id", "confidence")))  # fmt: skip
        out += rule.update(both, t)
    assert out == []  # 2 s each, 0.1 apart: two bikes, not one for 4 s


def test_no_helmet_refuses_to_run_without_a_model() -> None:
    with pytest.raises(RuleConfigError, match="needs a rider/helmet classifier"):
        NoHelmet(None)
    with pytest.raises(RuleConfigError, match="not a helmet classifier"):
        NoHelmet("yolox_nano")


def test_rule_memory_is_bounded() -> None:
    rule = WrongWay(ts.WRONG_WAY_LANE, ts.UP)
    for tid in range(500):
        rule.update(one(tid, 0.4, 0.5 + (tid % 10) * 0.01), tid * 1.0)
    rule.forget(now=500.0, horizon_s=120.0)
    assert len(rule._last) <= 121 and len(rule._start) <= 121


def test_scripted_scenarios_meet_the_targets() -> None:
    scores = ts.score(ts.scenarios(seed=11, per_case=6))
    for rule, s in scores.items():
        assert s["precision"] >= 0.95 and s["recall"] >= 0.9, (rule, s)


# -- the analytic around the rules --------------------------------------------------------


class _FakeLightDetector:
    """Stands in for OpenLenda (no openly licensed traffic-light footage to test on)."""

    class_names = ("red", "green", "yellow", "empty", "straight", "left", "right", "other")

    def __init__(self, boxes: list[tuple[int, float]]) -> None:
        self.boxes = boxes
        self.seen: tuple[int, ...] | None = None

    def detect(self, img: np.ndarray, min_score: float) -> Detections:
        self.seen = img.shape
        keep = [(c, s) for c, s in self.boxes if s >= min_score]
        return Detections(
            np.zeros((len(keep), 4), np.float32),
            np.array([s for _, s in keep], np.float32),
            np.array([c for c, _ in keep], np.int32),
        )


def test_read_signal_takes_the_best_light_in_the_region() -> None:
    from edge.analytics.traffic_monitor import read_signal

    img = np.zeros((240, 320, 3), np.uint8)
    det = _FakeLightDetector([(1, 0.18), (0, 0.25), (4, 0.9)])  # green, red, an arrow
    assert read_signal(det, img, (0.5, 0.0, 0.75, 0.25), 0.15) == "red"
    assert det.seen == (60, 80, 3)  # only the signal head's region is looked at
    assert read_signal(_FakeLightDetector([(2, 0.3)]), img, (0, 0, 1, 1), 0.15) == "amber"
    assert read_signal(_FakeLightDetector([(0, 0.1)]), img, (0, 0, 1, 1), 0.15) is None


def test_traffic_monitor_turns_violations_into_events_then_evidence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from edge.analytics.traffic_monitor import TrafficMonitor
    from edge.config import TrafficAnalytic

    names = tuple(f"c{i}" for i in range(80))
    names = names[:2] + ("car", "motorcycle") + names[4:]
    cfg = TrafficAnalytic.model_validate(
        {
            "classes": ["car", "motorcycle"],
            "evidence": {"dir": str(tmp_path), "post_s": 1.0},
            "rules": [{"type": "wrong_way", "lane": ts.WRONG_WAY_LANE, "direction": [0, -1]}],
        }
    )
    mon = TrafficMonitor(cfg, names, "cam-1")
    w, h = 1000, 500
    out = []
    for k in range(60):
        t = 1_800_000_000 + k * 0.1
        y = (0.1 + 0.01 * k) * h  # 0.01 of the frame per frame, downwards
        box = [[380, y - 25, 420, y]]
        d = Detections(
            np.array(box, np.float32), np.array([0.9], np.float32), np.array([2], np.int32)
        )
        out += mon.update(d, (w, h), datetime.fromtimestamp(t, UTC))
    [new] = out
    assert (new.type, new.kind, new.label, new.zone) == ("new", "wrong_way", "car", "wrong_way")
    assert new.snapshot and new.attributes["config_version"] == mon.config_version
    assert new.attributes["evidence"] == "recording" and len(mon.pending) == 1
    assert mon.finalize(new.start_time.timestamp() + 0.5, None, (w, h), None) == []  # not due
    [(msgs, pkg)] = mon.finalize(new.start_time.timestamp() + 1.5, None, (w, h), None)
    assert [m.type for m in msgs] == ["update", "end"] and pkg is None
    assert msgs[0].attributes["evidence"] == "none" and msgs[1].kind == "wrong_way"
    assert mon.pending == []
