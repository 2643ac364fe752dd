"""``sidewalk_encroachment`` and ``illegal_parking`` through the registry: detections (pixels)
in, ByteTrack and the dwell rule inside, event transitions out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from edge.analytics import registry
from edge.analytics.base import Analytic, CameraContext, Sample, Transition
from edge.analytics.geometry import RuleConfigError
from edge.analytics.plugins.dwell.config import (
    IllegalParkingAnalytic,
    SidewalkEncroachmentAnalytic,
)
from edge.analytics.tracking import Tracks
from edge.inference.detections import Detections

NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
W, H = 1280, 720
SIDEWALK = [(0.0, 0.72), (1.0, 0.72), (1.0, 0.95), (0.0, 0.95)]
KERB = [(0.05, 0.55), (0.95, 0.55), (0.95, 0.7), (0.05, 0.7)]
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=TZ)  # a Monday
SIZE = {"car": (0.12, 0.1), "motorcycle": (0.04, 0.08), "person": (0.03, 0.12)}

Box = tuple[str, float, float]  # class, anchor x, anchor y (fractions)


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


def dets(boxes: list[Box], score: float = 0.8) -> Detections:
    if not boxes:
        return Detections.empty()
    xyxy = []
    for cls, x, y in boxes:
        w, h = SIZE[cls]
        xyxy.append([(x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H])
    return Detections(
        np.asarray(xyxy, np.float32),
        np.full(len(boxes), score, np.float32),
        np.asarray([NAMES.index(c) for c, _, _ in boxes], np.int32),
    )


def feed(
    rt: Analytic,
    start: datetime,
    seconds: float,
    at: Callable[[float], list[Box]],
    fps: float = 2.0,
) -> list[tuple[float, Transition]]:
    """(t, transition) for every sample of ``seconds``; ``at(t)`` gives the boxes."""
    out = []
    for k in range(int(seconds * fps) + 1):
        t = k / fps
        now = start + timedelta(seconds=t)
        got = rt.update(Sample(frame=None, time=now, wh=(W, H), detections=dets(at(t))))
        out += [(t, tr) for tr in got.transitions]
    return out


def stand(x: float, y: float, arrive: float, leave: float) -> Callable[[float], list[Box]]:
    """A car driving in along the road (y 0.6), standing at (x, y) from ``arrive`` to
    ``leave``, then driving off the way it came."""

    def at(t: float) -> list[Box]:
        if t < arrive - 3 or t > leave + 3:
            return []
        if t < arrive:
            f = (arrive - t) / 3
            return [("car", x, y - (y - 0.6) * f)]
        if t <= leave:
            return [("car", x, y)]
        f = (t - leave) / 3
        return [("car", x, y - (y - 0.6) * f)]

    return at


def sidewalk(**kw: object) -> Analytic:
    cfg = SidewalkEncroachmentAnalytic(zone=SIDEWALK, **kw)  # type: ignore[arg-type]
    return registry.plugin("sidewalk_encroachment").build(cfg, ctx())


def news(out: list[tuple[float, Transition]]) -> list[tuple[float, Transition]]:
    return [(t, tr) for t, tr in out if tr.type == "new"]


# -- manifests and config -----------------------------------------------------------------


def test_both_types_are_registered_from_one_folder_with_review_kinds() -> None:
    for name in ("sidewalk_encroachment", "illegal_parking"):
        p = registry.plugin(name)
        assert p.runtime == "edge.analytics.plugins.dwell.runtime:build"
        (kind,) = p.kinds
        assert kind.name == name and kind.severity == "medium" and kind.review
    assert {"sidewalk_encroachment", "illegal_parking"} <= set(registry.kinds_where(review=True))


def test_the_config_union_parses_each_type_with_its_defaults() -> None:
    adapter = TypeAdapter(registry.config_union())
    park = adapter.validate_python({"type": "illegal_parking", "zone": KERB})
    walk = adapter.validate_python({"type": "sidewalk_encroachment", "zone": SIDEWALK})
    assert isinstance(park, IllegalParkingAnalytic) and park.name == "illegal_parking"
    assert park.max_dwell_s == 300 and park.classes == ["car", "bus", "truck"]
    assert isinstance(walk, SidewalkEncroachmentAnalytic) and walk.name == "sidewalk_encroachment"
    assert walk.max_dwell_s == 60 and "motorcycle" in walk.classes
    assert walk.fps == 2 and walk.still_distance == 0.03 and walk.timezone == "Asia/Ho_Chi_Minh"
    assert park.models_used() == {"yolox_nano": ["car", "bus", "truck"]}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"zone": [(0, 0), (1, 1)]}, "zone"),
        ({"zone": [(0, 0), (1.5, 0), (1, 1)]}, "zone"),
        ({"exclude": [[(0, 0), (1, 0)]]}, "exclude"),
        ({"hours": (7, 7)}, "hours"),
        ({"hours": (7, 25)}, "hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"classes": []}, "classes"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(extra: dict, key: str) -> None:
    doc = {"zone": KERB, **extra}
    with pytest.raises(ValidationError) as err:
        IllegalParkingAnalytic.model_validate(doc)
    assert key in str(err.value)


def test_a_zone_is_required() -> None:
    with pytest.raises(ValidationError, match="zone"):
        SidewalkEncroachmentAnalytic.model_validate({})


def test_a_class_the_model_lacks_is_refused_at_build() -> None:
    cfg = SidewalkEncroachmentAnalytic(zone=SIDEWALK, classes=["car", "tuk_tuk"])
    with pytest.raises(RuleConfigError, match="tuk_tuk"):
        registry.plugin("sidewalk_encroachment").build(cfg, ctx())


# -- the rule ------------------------------------------------------------------------------


def test_a_car_standing_beyond_the_dwell_gives_one_event_new_updates_end() -> None:
    rt = sidewalk(update_interval_s=20)
    out = feed(rt, T0, 120, stand(0.3, 0.86, arrive=5, leave=100))
    steps = [tr for _, tr in out]
    assert [s.type for s in steps][0] == "new" and steps[-1].type == "end"
    assert len({s.event_id for s in steps}) == 1
    assert [s.seq for s in steps] == list(range(len(steps)))
    (t_new, new), *_ = news(out)
    assert 64.5 <= t_new <= 68.5  # stood 60 s (plus the 2 s running mean), not earlier
    assert new.snapshot and new.kind == "sidewalk_encroachment" and new.label == "car"
    assert new.zone == "sidewalk_encroachment" and new.attributes["zone"] == new.zone
    assert isinstance(new.attributes["track_id"], int) and new.attributes["dwell_s"] >= 60
    assert 0.2 < new.box[0] < new.box[2] < 0.4 and abs(new.box[3] - 0.86) < 0.02
    assert new.box_px[3] == pytest.approx(0.86 * H, abs=10)
    updates = [t for t, s in out if s.type == "update"]
    assert updates and all(b - a >= 19.9 for a, b in zip([t_new, *updates], updates, strict=False))
    assert not any(s.snapshot for s in steps[1:])
    end_t, end = out[-1]
    assert end.attributes["reason"] == "left" and 100 < end_t < 110
    assert end.end_time is not None and end.attributes["dwell_s"] >= 90


def test_one_second_short_of_the_dwell_and_driving_through_are_not_events() -> None:
    assert not news(feed(sidewalk(), T0, 90, stand(0.3, 0.86, arrive=5, leave=64)))

    def through(t: float) -> list[Box]:
        return [("car", 0.05 + 0.06 * t, 0.85)] if t <= 15 else []

    assert not news(feed(sidewalk(), T0, 30, through))


def test_standing_just_outside_or_in_an_excluded_bay_is_not_an_event() -> None:
    assert not news(feed(sidewalk(), T0, 120, stand(0.3, 0.71, arrive=5, leave=110)))
    bay = [(0.6, 0.72), (0.8, 0.72), (0.8, 0.95), (0.6, 0.95)]
    rt = sidewalk(exclude=[bay])
    assert not news(feed(rt, T0, 120, stand(0.7, 0.86, arrive=5, leave=110)))
    # the same stand outside the bay is one
    assert len(news(feed(sidewalk(exclude=[bay]), T0, 120, stand(0.4, 0.86, 5, 110)))) == 1


def test_creeping_more_than_still_distance_over_the_dwell_is_not_standing() -> None:
    def creep(t: float) -> list[Box]:  # 0.05 of the frame a minute
        return [("motorcycle", 0.2 + 0.05 * t / 60, 0.88)]

    assert not news(feed(sidewalk(), T0, 150, creep))

    def slower(t: float) -> list[Box]:  # 0.015 a minute: standing
        return [("motorcycle", 0.2 + 0.015 * t / 60, 0.88)]

    assert len(news(feed(sidewalk(), T0, 150, slower))) == 1


def test_leaving_and_coming_back_restarts_the_dwell() -> None:
    first, second = stand(0.3, 0.86, 5, 45), stand(0.3, 0.86, 65, 105)

    def twice(t: float) -> list[Box]:
        return first(t) if t < 55 else second(t)

    assert not news(feed(sidewalk(), T0, 115, twice))  # 40 s, away, 40 s


def test_a_car_hidden_for_a_few_seconds_keeps_its_stay_one_event() -> None:
    at = stand(0.3, 0.86, 5, 100)
    out = feed(sidewalk(), T0, 110, lambda t: [] if 50 <= t < 54 else at(t))
    assert len(news(out)) == 1
    assert [tr.type for _, tr in out].count("end") == 1


def test_a_new_tracker_id_at_the_same_spot_continues_the_stay() -> None:
    rt = sidewalk()
    rule = rt.rule  # type: ignore[attr-defined]
    box = np.array([[0.24 * W, 0.76 * H, 0.36 * W, 0.86 * H]], np.float32)
    out = []
    for k in range(141):  # 70 s at 2 fps: id 1 for 40 s, then id 9 (an id switch)
        tid = 1 if k < 80 else 9
        tracks = Tracks(np.array([tid]), box, np.array([2], np.int32), np.array([0.8], np.float32))
        out += rule.update(tracks, (W, H), T0 + timedelta(seconds=k / 2))
    (new,) = [t for t in out if t.type == "new"]
    assert new.attributes["track_id"] == 9 and new.attributes["dwell_s"] >= 60


def test_people_and_unwatched_classes_are_ignored() -> None:
    rt = sidewalk()
    assert not news(feed(rt, T0, 100, lambda t: [("person", 0.3, 0.86)]))
    park = registry.plugin("illegal_parking").build(
        IllegalParkingAnalytic(zone=KERB, max_dwell_s=30), ctx()
    )
    assert not news(feed(park, T0, 60, lambda t: [("motorcycle", 0.5, 0.66)]))
    park2 = registry.plugin("illegal_parking").build(
        IllegalParkingAnalytic(zone=KERB, max_dwell_s=30), ctx()
    )
    assert len(news(feed(park2, T0, 60, lambda t: [("car", 0.5, 0.66)]))) == 1


def test_the_detectors_class_scores_are_cut_to_the_watched_classes() -> None:
    """A box the detector thinks a train first and a car second is a car here."""
    rt = registry.plugin("illegal_parking").build(
        IllegalParkingAnalytic(zone=KERB, max_dwell_s=30), ctx()
    )
    scores = np.zeros((1, len(NAMES)), np.float32)
    scores[0, NAMES.index("train")], scores[0, NAMES.index("car")] = 0.7, 0.6
    box = np.array([[0.44 * W, 0.56 * H, 0.56 * W, 0.66 * H]], np.float32)
    d = Detections(box, np.array([0.7], np.float32), np.array([6], np.int32), scores)
    out = []
    for k in range(81):
        now = T0 + timedelta(seconds=k / 2)
        out += rt.update(Sample(frame=None, time=now, wh=(W, H), detections=d)).transitions
    (new,) = [t for t in out if t.type == "new"]
    assert new.label == "car" and new.score == pytest.approx(0.6, abs=0.01)


# -- hours, ticks, close --------------------------------------------------------------------


def parking(**kw: object) -> Analytic:
    cfg = IllegalParkingAnalytic(zone=KERB, hours=(7, 22), **kw)  # type: ignore[arg-type]
    return registry.plugin("illegal_parking").build(cfg, ctx())


def test_a_car_parked_before_the_ban_is_counted_from_the_ban_start() -> None:
    start = datetime(2025, 3, 3, 6, 55, tzinfo=TZ)
    out = feed(parking(), start, 900, lambda t: [("car", 0.5, 0.66)])
    ((t_new, new),) = news(out)
    assert (start + timedelta(seconds=t_new)).strftime("%H:%M") == "07:05"
    assert new.start_time.astimezone(TZ).strftime("%H:%M") == "07:00"
    # leaving at 07:04 is no event
    assert not news(feed(parking(), start, 540, lambda t: [("car", 0.5, 0.66)]))


def test_outside_the_ban_nothing_and_an_open_event_ends_when_the_ban_does() -> None:
    night = datetime(2025, 3, 3, 23, 0, tzinfo=TZ)
    assert not news(feed(parking(), night, 600, lambda t: [("car", 0.5, 0.66)]))
    late = datetime(2025, 3, 3, 21, 50, tzinfo=TZ)
    out = feed(parking(), late, 900, lambda t: [("car", 0.5, 0.66)])
    kinds = [(tr.type, tr.attributes.get("reason")) for _, tr in out]
    assert kinds[0] == ("new", None) and kinds[-1] == ("end", "hours")
    assert len(news(out)) == 1
    t_end = out[-1][0]
    assert (late + timedelta(seconds=t_end)).strftime("%H:%M") == "22:00"


def test_a_ban_wrapping_midnight_applies_after_midnight() -> None:
    rt = registry.plugin("illegal_parking").build(
        IllegalParkingAnalytic(zone=KERB, hours=(22, 6)), ctx()
    )
    start = datetime(2025, 3, 4, 2, 0, tzinfo=TZ)
    assert len(news(feed(rt, start, 400, lambda t: [("car", 0.5, 0.66)]))) == 1


def test_close_and_a_dead_stream_end_the_open_event() -> None:
    rt = sidewalk()
    out = feed(rt, T0, 80, lambda t: [("car", 0.3, 0.86)])
    assert len(news(out)) == 1
    last = T0 + timedelta(seconds=80)
    assert not rt.tick(last + timedelta(seconds=10)).transitions  # a short gap: nothing
    (end,) = rt.tick(last + timedelta(seconds=61)).transitions
    assert end.type == "end" and end.attributes["reason"] == "no_frames"
    assert not rt.close(last + timedelta(seconds=62)).transitions  # ended once only
    rt2 = sidewalk()
    feed(rt2, T0, 80, lambda t: [("car", 0.3, 0.86)])
    (closed,) = rt2.close(T0 + timedelta(seconds=81)).transitions
    assert closed.type == "end" and closed.attributes["reason"] == "closed"
    assert closed.end_time is not None and closed.seq >= 1


def test_the_scripted_evaluation_has_near_misses_and_no_false_alarm() -> None:
    from edge.analytics.plugins.dwell.evaluation import evaluate

    r = evaluate(seed=1)
    assert r["near_misses"] >= 10 and r["positives"] >= 8
    assert r["fp"] == 0 and r["precision"] == 1.0
    assert r["recall"] >= 0.9, r["wrong"]
    assert set(r["types"]) == {"sidewalk_encroachment", "illegal_parking"}


def test_a_parked_car_whose_box_slips_over_the_edge_has_not_left() -> None:
    """After its event, the anchor sits 0.01 outside for 20 s (a box a little shorter),
    then back: the stay and its event go on; it leaves only when it drives off."""

    def at(t: float) -> list[Box]:
        if t > 150:
            return []
        return [("car", 0.3, 0.715 if 80 <= t < 100 else 0.725)]

    out = feed(sidewalk(), T0, 160, at)
    assert [tr.type for _, tr in out if tr.type != "update"] == ["new", "end"]
    assert out[-1][0] > 150
