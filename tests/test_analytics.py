from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge.analytics.geometry import PolygonZone
from edge.analytics.objects import ObjectsRule
from edge.config import ObjectsAnalytic
from edge.inference.detections import Detections

CLASSES = ("person", "bicycle", "car")
WH = (200, 100)
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def dets(*rows: tuple[float, float, float, float, float, int]) -> Detections:
    if not rows:
        return Detections.empty()
    a = np.asarray(rows, np.float32)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(np.int32))


def test_polygon_zone_even_odd_and_whole_frame() -> None:
    # An L-shaped (concave) zone in fractions of a 200x100 frame.
    zone = PolygonZone([(0, 0), (0.5, 0), (0.5, 0.5), (1, 0.5), (1, 1), (0, 1)])
    pts = np.array([[10, 10], [150, 20], [150, 80], [99, 49], [101, 49]], np.float32)
    assert zone.contains(pts, WH).tolist() == [True, False, True, True, False]
    assert PolygonZone(None).contains(pts, WH).all()
    assert zone.contains(np.zeros((0, 2), np.float32), WH).shape == (0,)


def rule(**kw: object) -> ObjectsRule:
    cfg = ObjectsAnalytic(
        classes=["car", "person"],
        min_score=0.5,
        min_consecutive=2,
        max_missing=2,
        update_interval_s=1.0,
        **kw,
    )
    return ObjectsRule(cfg, CLASSES)


def test_lifecycle_new_update_end_with_stable_id() -> None:
    r = rule()
    car = (20, 20, 60, 60, 0.6, 2)
    t = [T0 + timedelta(seconds=i) for i in range(10)]
    assert r.update(dets(car), WH, t[0]) == []  # one sample is not enough
    (new,) = r.update(dets((20, 20, 60, 60, 0.7, 2)), WH, t[1])
    assert new.type == "new" and new.label == "car" and new.seq == 0 and new.snapshot
    assert new.score == pytest.approx(0.7) and new.start_time == t[0]
    assert new.box == pytest.approx((0.1, 0.2, 0.3, 0.6))
    (upd,) = r.update(dets((22, 20, 62, 60, 0.9, 2)), WH, t[2])  # better score, interval passed
    assert upd.type == "update" and upd.event_id == new.event_id and upd.seq == 1
    assert upd.score == pytest.approx(0.9)
    assert r.update(dets(car), WH, t[3]) == []  # lower score: nothing to say
    assert r.update(dets(), WH, t[4]) == []  # one miss is tolerated
    assert r.update(dets(car), WH, t[5]) == []
    assert r.update(dets(), WH, t[6]) == []
    (end,) = r.update(dets(), WH, t[7])
    assert end.type == "end" and end.event_id == new.event_id and end.seq == 2
    assert end.end_time == t[7] and end.score == pytest.approx(0.9)
    # The next appearance is a new event with a new id.
    r.update(dets(car), WH, t[8])
    (again,) = r.update(dets(car), WH, t[9])
    assert again.type == "new" and again.event_id != new.event_id


def test_filters_class_score_and_zone() -> None:
    r = rule(zone=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)])  # left half
    outside = (150, 10, 190, 90, 0.9, 2)  # bottom-centre x=170: right half
    weak = (10, 10, 50, 50, 0.3, 2)
    other_class = (10, 10, 50, 50, 0.9, 1)  # bicycle: not configured
    for i in range(5):
        assert r.update(dets(outside, weak, other_class), WH, T0 + timedelta(seconds=i)) == []
    person = (10, 10, 50, 90, 0.8, 0)
    r.update(dets(person, outside), WH, T0 + timedelta(seconds=6))
    out = r.update(dets(person, outside), WH, T0 + timedelta(seconds=7))
    assert [(t.type, t.label) for t in out] == [("new", "person")]


def test_close_ends_open_events_and_unknown_class_is_refused() -> None:
    r = rule()
    car = (20, 20, 60, 60, 0.6, 2)
    r.update(dets(car), WH, T0)
    r.update(dets(car), WH, T0 + timedelta(seconds=1))
    assert r.active_events == 1
    (end,) = r.close(T0 + timedelta(seconds=2))
    assert end.type == "end" and r.active_events == 0
    with pytest.raises(ValueError, match="not in model"):
        ObjectsRule(ObjectsAnalytic(classes=["dragon"]), CLASSES)
