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


def test_bytetrack_one_van_one_track_whatever_the_frame_calls_it() -> None:
    """A van the detector calls car in some frames and truck in others, boxed twice in some
    (a detector without cross-class NMS): one track, the vote's class, and how sure."""
    bt = ByteTrack(fps_hint=10, num_classes=8)
    ids: set[int] = set()
    for k in range(30):
        x = 100 + 8 * k
        box = [x, 100, x + 60, 150]
        scores = np.zeros(8, np.float32)
        scores[2], scores[7] = (0.7, 0.62) if k % 3 else (0.6, 0.66)  # car, truck
        if 10 <= k < 20:  # both boxes, nearly the same (IoU 0.9): class-aware NMS kept two
            d = Detections(
                np.array([box, [x + 1, 101, x + 61, 152]], np.float32),
                np.array([scores[2], scores[7]], np.float32),
                np.array([2, 7], np.int32),
            )
        else:  # one box with every class's score (cross-class NMS)
            c = int(np.argmax(scores))
            d = Detections(
                np.array([box], np.float32), scores[[c]], np.array([c], np.int32), scores[None]
            )
        out = bt.update(d, k * 0.1)
        ids |= set(out.track_id.tolist())
    assert len(ids) == 1, ids
    assert out.class_id.tolist() == [2] and out.class_share is not None
    assert 0.5 < float(out.class_share[0]) < 0.6  # car, but barely: a rule can ask
    # two vehicles side by side (IoU 0.2) are still two tracks
    bt = ByteTrack(fps_hint=10, num_classes=8)
    for k in range(5):
        out = bt.update(dets([[100, 100, 160, 150], [140, 100, 200, 150]], [0.9, 0.9]), k * 0.1)
    assert len(out) == 2


def test_traffic_monitor_tracks_only_its_classes_best() -> None:
    from edge.analytics.traffic_monitor import TrafficMonitor
    from edge.config import TrafficAnalytic

    names = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
    cfg = TrafficAnalytic.model_validate(
        {"rules": [{"type": "wrong_way", "lane": ts.WRONG_WAY_LANE, "direction": [0, -1]}]}
    )
    mon = TrafficMonitor(cfg, names, "cam-1")
    scores = np.zeros((1, 8), np.float32)
    scores[0, 6], scores[0, 5] = 0.8, 0.65  # the model's best guess is a train, then a bus
    for k in range(3):
        d = Detections(
            np.array([[10, 10, 90, 60]], np.float32),
            np.array([0.7], np.float32),
            np.array([6], np.int32),
            scores,
        )
        out = mon.track(d, k * 0.1)
    assert out.class_id.tolist() == [5]  # a bus to the traffic analytic, not lost


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


def test_a_camera_signal_is_sure_only_between_two_looks_that_agree() -> None:
    s = SignalState(sampled=True, source="lamps", max_gap_s=2.0)
    for t, state in [(0.0, "green"), (0.5, "green"), (1.0, "red"), (1.5, "red"), (2.0, "red")]:
        s.set(t, state)
    assert s.at(0.25) == ("green", 0.0)
    assert s.at(0.75) == ("unknown", None)  # it turned red somewhere between 0.5 and 1.0
    assert s.at(1.75) == ("red", 1.0)  # red since the first look that saw it
    assert s.at(2.1) == ("pending", None)  # nothing seen after 2.0 yet
    s.set(5.0, "red")  # 3 s without a look: the light may have cycled meanwhile
    assert s.at(3.0) == ("unknown", None) and s.at(5.0) == ("red", 5.0)
    s.set(5.5, "unknown")
    assert s.at(5.2) == ("unknown", None)
    with pytest.raises(ValueError):
        s.set(4.0, "red")  # out of order


def _red_from_looks(looks: list[tuple[float, str]]) -> RedLight:
    sig = SignalState(sampled=True, source="lamps")
    for t, state in looks:
        sig.set(t, state)
    return RedLight(ts.STOP_LINE, ts.UP, sig, grace_s=0.5, max_wait_s=2.0)


def test_red_light_only_on_a_red_the_camera_is_sure_of() -> None:
    path = lambda t: (0.6, 0.49 - 0.2 * (t - 20.03))  # noqa: E731 - past the line at 20.03
    reds = [(10.0 + 0.5 * k, "red") for k in range(30)]  # red looks 10.0 ... 24.5
    [v] = feed(_red_from_looks(reds), path, 15.0, 22.0)
    assert v.details["signal"] == "red" and v.details["signal_source"] == "lamps"
    assert v.details["red_for_s"] == 10.03
    # the light turned green somewhere between the look at 20.0 and the one at 20.5: the
    # crossing at 20.03 may have been on green, so it is no violation
    turned = [(t, s) for t, s in reds if t <= 20.0] + [(20.5, "green"), (21.0, "green")]
    assert feed(_red_from_looks(turned), path, 15.0, 22.0) == []
    # the camera stopped seeing the head after 20.0: the crossing waits for a look that
    # never comes, and is dropped
    blind = [(t, s) for t, s in reds if t <= 20.0]
    rule = _red_from_looks(blind)
    assert feed(rule, path, 15.0, 24.0) == [] and rule._wait == {}


def test_red_light_waits_for_the_next_look() -> None:
    sig = SignalState(sampled=True, source="model")
    rule = RedLight(ts.STOP_LINE, ts.UP, sig, grace_s=0.5)
    out = []
    for k in range(60):  # 10 fps; the signal is looked at every 0.5 s, as the worker does
        t = 18.0 + k / 10
        if k % 5 == 0:
            sig.set(t, "red")
        out += rule.update(one(1, 0.6, 0.49 - 0.2 * (t - 20.03)), t)
    [v] = out
    assert v.time == pytest.approx(20.03, abs=1e-6) and v.details["signal_source"] == "model"


def test_lane_restriction_needs_a_sure_class() -> None:
    def run(share: float) -> list:  # type: ignore[type-arg]
        rule = LaneRestriction(ts.CAR_LANE, [ts.MOTORCYCLE], min_time_s=1.0)
        out = []
        for k in range(30):
            tr = one(1, 0.6, 0.5, ts.MOTORCYCLE)
            tr.class_share = np.array([share], np.float32)
            out += rule.update(tr, k / 10)
        return out

    assert run(0.52) == []  # a vote this close is not a motorcycle in a car lane
    [v] = run(0.9)
    assert v.details["class_share"] == 0.9


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
    """Stands in for OpenLenda: boxes (in the model view's pixels) with a class and score."""

    class_names = ("red", "green", "yellow", "empty", "straight", "left", "right", "other")

    class spec:  # what read_model reads of a detector's spec
        input_width = 416

    def __init__(self, boxes: list[tuple[list[float], int, float]]) -> None:
        self.boxes = boxes
        self.seen: tuple[int, ...] | None = None
        self.multi_label: bool | None = None

    def detect(self, img: np.ndarray, min_score: float, multi_label: bool = False) -> Detections:
        self.seen, self.multi_label = img.shape, multi_label
        keep = [(b, c, s) for b, c, s in self.boxes if s >= min_score]
        return Detections(
            np.array([b for b, _, _ in keep], np.float32).reshape(-1, 4),
            np.array([s for _, _, s in keep], np.float32),
            np.array([c for _, c, _ in keep], np.int32),
        )


def test_read_model_looks_around_the_region_at_camera_scale() -> None:
    from edge.analytics.signal import read_model

    img = np.zeros((240, 320, 3), np.uint8)
    # region (160-240, 0-60 px): centre (200, 30). The view is 416 px of the image at its
    # own scale centred there, so image x = view x - 8, image y = view y - 178.
    head = [180.0, 198.0, 230.0, 218.0]  # (172-222, 20-40) in the image: on the region
    elsewhere = [20.0, 300.0, 60.0, 320.0]  # (12-52, 122-142): another head
    det = _FakeLightDetector([(head, 0, 0.22), (head, 5, 0.4), (elsewhere, 1, 0.9)])
    r = read_model(det, img, (0.5, 0.0, 0.75, 0.25), 0.15)
    assert (r.state, r.source, r.reason) == ("red", "model", None)
    assert det.seen == (416, 416, 3) and det.multi_label  # not the 80x60 crop upscaled
    assert r.details["seen"] == {"red": 0.22, "left": 0.4}  # the arrow kept beside the red
    # red and green on the head, too close to call: unknown, with the reason
    det = _FakeLightDetector([(head, 0, 0.22), (head, 1, 0.2)])
    r = read_model(det, img, (0.5, 0.0, 0.75, 0.25), 0.15)
    assert r.state == "unknown" and "too close" in (r.reason or "")
    r = read_model(_FakeLightDetector([(elsewhere, 1, 0.9)]), img, (0.5, 0.0, 0.75, 0.25), 0.15)
    assert r.state == "unknown" and r.reason == "no lit signal found in the region"
    # mirrored: the view is flipped, the boxes flipped back (so the same head is found)
    # and a left arrow seen in the flipped view is a right arrow
    flipped = [416 - head[2], head[1], 416 - head[0], head[3]]
    det = _FakeLightDetector([(flipped, 0, 0.3), (flipped, 5, 0.3)])
    r = read_model(det, img, (0.5, 0.0, 0.75, 0.25), 0.15, mirror=True)
    assert r.state == "red" and r.details["seen"] == {"red": 0.3, "right": 0.3}


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


def test_eval_count_one_vehicle_one_track_on_the_highway_clip(assets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The last 3 s of the real highway clip: a dark car and a white van cross y = 0.7
    (scripts/data/highway_count_truth.json, by eye). The van is boxed as car and truck at
    once; class-aware NMS made it two tracks and two crossings."""
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    import eval_count

    video = assets / "video" / "highway_cctv_320x240.avi"
    truth = json.loads((root / "scripts" / "data" / "highway_count_truth.json").read_text())
    want = [g for g in truth["crossings"] if 27.0 <= g["t"] < 30.0]
    got = eval_count.evaluate(video, 0.7, 30.0, tmp_path, start=27.0)
    assert got["fps"] == 10.0 and 25 <= got["frames_analysed"] <= 31
    match = eval_count.match_truth(got["crossings"], want)
    assert got["count"] == len(want) == 2 and match["matched"] == 2, got["crossings"]
    assert got["simultaneous_duplicates"] == 0
    before = eval_count.evaluate(video, 0.7, 30.0, tmp_path, start=27.0, ablate=True)
    assert before["count"] == 3 and before["simultaneous_duplicates"] > 0
