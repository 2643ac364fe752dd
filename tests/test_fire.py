"""The fire and burning rules on arrays alone: confirmation, masks, land use, smoke, hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from edge.analytics.fire import FireRule
from edge.config import BurningAnalytic, FireAnalytic
from edge.inference.detections import Detections

NAMES = ("fire", "smoke")
WH = (1000, 500)
T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 10:00 in Hue


def dets(*boxes: tuple[float, float, float, float, float, int]) -> Detections:
    """Boxes as (x1, y1, x2, y2) fractions, score, class id."""
    if not boxes:
        return Detections.empty()
    a = np.asarray(boxes, np.float32)
    xyxy = a[:, :4] * np.array([WH[0], WH[1], WH[0], WH[1]], np.float32)
    return Detections(xyxy, a[:, 4].copy(), a[:, 5].astype(np.int32))


FIRE = (0.45, 0.5, 0.55, 0.7, 0.8, 0)  # base at (0.5, 0.7)
SMOKE = (0.4, 0.3, 0.6, 0.7, 0.7, 1)


def feed(rule: FireRule, samples: list[Detections], start: datetime = T0, step: float = 2.0):
    out = []
    for i, d in enumerate(samples):
        out += rule.update(d, WH, start + timedelta(seconds=step * i))
    return out


def test_four_of_eight_confirms_and_three_do_not() -> None:
    rule = FireRule(FireAnalytic(), NAMES)
    none = dets()
    got = feed(rule, [dets(FIRE), none, dets(FIRE), none, dets(FIRE), none, none, none])
    assert got == []  # three sightings in eight samples
    rule = FireRule(FireAnalytic(), NAMES)
    got = feed(rule, [dets(FIRE), none, dets(FIRE), none, dets(FIRE), none, dets(FIRE)])
    assert [t.type for t in got] == ["new"]
    new = got[0]
    assert new.kind == "smoke" and new.label == "fire" and new.snapshot  # land use "other"
    assert new.attributes["fire_seen"] is True and new.attributes["urgent"] is False
    assert new.box == pytest.approx((0.45, 0.5, 0.55, 0.7))


def test_scores_below_threshold_and_other_classes_do_not_count() -> None:
    rule = FireRule(FireAnalytic(min_score=0.5), ("fire", "smoke", "person"))
    weak = (0.45, 0.5, 0.55, 0.7, 0.4, 0)
    person = (0.45, 0.5, 0.55, 0.7, 0.9, 2)
    assert feed(rule, [dets(weak, person)] * 8) == []


def test_boxes_wider_than_the_limit_are_cloud_or_fog() -> None:
    fog = (0.05, 0.2, 0.6, 0.6, 0.9, 1)  # 55% of the width
    rule = FireRule(FireAnalytic(), NAMES)
    assert feed(rule, [dets(fog)] * 8) == []
    assert rule.last.too_wide == 1 and rule.last.kept == 0


def test_exclusion_masks_and_sky() -> None:
    kiln = [(0.4, 0.4), (0.6, 0.4), (0.6, 0.8), (0.4, 0.8)]
    rule = FireRule(FireAnalytic(exclude=[kiln]), NAMES)
    assert feed(rule, [dets(FIRE)] * 8) == []
    assert rule.last.excluded == 1
    # a fire elsewhere in the same view still alerts
    elsewhere = (0.05, 0.5, 0.15, 0.7, 0.8, 0)
    assert [t.type for t in feed(rule, [dets(FIRE, elsewhere)] * 4)] == ["new"]
    sky = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.35), (0.0, 0.35)]
    cloud = (0.3, 0.05, 0.5, 0.3, 0.8, 1)  # base at y 0.3: in the sky
    rule = FireRule(FireAnalytic(sky=sky), NAMES)
    assert feed(rule, [dets(cloud)] * 8) == [] and rule.last.sky == 1


def test_land_use_zones_route_the_kind() -> None:
    cfg = FireAnalytic(
        land_use="other",
        zones=[
            {"name": "hills", "use": "forest", "polygon": [(0, 0), (0.5, 0), (0.5, 1), (0, 1)]},
            {"name": "paddy", "use": "field", "polygon": [(0.5, 0), (1, 0), (1, 1), (0.5, 1)]},
        ],
    )
    rule = FireRule(cfg, NAMES, bearing_deg=90.0, hfov_deg=60.0)
    forest = (0.1, 0.5, 0.2, 0.7, 0.8, 0)
    field = (0.7, 0.5, 0.8, 0.7, 0.8, 0)
    got = feed(rule, [dets(forest, field)] * 4)
    by_zone = {t.zone: t for t in got}
    assert set(by_zone) == {"hills", "paddy"}
    assert by_zone["hills"].kind == "forest_fire" and by_zone["hills"].attributes["urgent"]
    assert by_zone["paddy"].kind == "straw_burning"
    # bearing: the forest box centre is at x 0.15, left of centre: less than 90 degrees
    b = by_zone["hills"].attributes["target_bearing_deg"]
    assert isinstance(b, float) and 60 < b < 90
    assert by_zone["paddy"].attributes["target_bearing_deg"] > 90
    assert by_zone["paddy"].attributes["camera_bearing_deg"] == 90.0


def drifting_smoke(i: int) -> tuple[float, float, float, float, float, int]:
    x = 0.1 + 0.06 * i  # the base slides across the frame: cloud
    return (x, 0.3, x + 0.2, 0.6, 0.7, 1)


def test_smoke_must_stay_anchored_and_not_shrink() -> None:
    rule = FireRule(FireAnalytic(), NAMES)
    assert feed(rule, [dets(drifting_smoke(i)) for i in range(8)]) == []
    shrinking = [
        dets((0.4 + 0.01 * i, 0.3 + 0.03 * i, 0.6 - 0.01 * i, 0.7, 0.7, 1)) for i in range(8)
    ]
    rule = FireRule(FireAnalytic(), NAMES)
    assert feed(rule, shrinking) == []
    growing = [
        dets((0.45 - 0.01 * i, 0.5 - 0.03 * i, 0.55 + 0.01 * i, 0.7, 0.7, 1)) for i in range(8)
    ]
    rule = FireRule(FireAnalytic(), NAMES)
    got = feed(rule, growing)
    assert [t.type for t in got] == ["new"] and got[0].label == "smoke"
    assert got[0].attributes["smoke_only"] is True


def test_hold_keeps_an_alert_through_gaps_and_ends_after() -> None:
    rule = FireRule(FireAnalytic(hold_s=60, update_interval_s=1000), NAMES)
    got = feed(rule, [dets(FIRE)] * 4)
    assert [t.type for t in got] == ["new"]
    last_seen = T0 + timedelta(seconds=6)
    # 50 s of nothing (shorter than the hold), then fire again: no end, no second alert
    quiet = feed(rule, [dets()] * 25, start=T0 + timedelta(seconds=8))
    again = feed(rule, [dets(FIRE)], start=T0 + timedelta(seconds=58))
    assert quiet == [] and again == []
    last_seen = T0 + timedelta(seconds=58)
    ended = feed(rule, [dets()] * 40, start=T0 + timedelta(seconds=60))
    assert [t.type for t in ended] == ["end"]
    assert ended[0].end_time == last_seen and ended[0].event_id == got[0].event_id
    # and a new sighting after the end needs confirming again
    assert feed(rule, [dets(FIRE)] * 3, start=T0 + timedelta(seconds=200)) == []


def test_updates_carry_a_better_sighting_at_most_every_interval() -> None:
    rule = FireRule(FireAnalytic(update_interval_s=10), NAMES)
    feed(rule, [dets(FIRE)] * 4)
    better = (0.45, 0.5, 0.55, 0.7, 0.95, 0)
    got = feed(rule, [dets(better)] * 10, start=T0 + timedelta(seconds=8))
    assert [t.type for t in got] == ["update"] and got[0].score == pytest.approx(0.95)


def test_burning_is_more_sensitive_in_season() -> None:
    cfg = BurningAnalytic(
        season=[{"months": [5, 6, 11], "hours": (6, 20)}],
        min_score=0.5,
        season_min_score=0.3,
        season_confirm_hits=3,
    )
    faint = (0.45, 0.5, 0.55, 0.7, 0.35, 1)
    growing = [dets(faint)] * 3
    # 10:00 local in November: in season, three faint sightings confirm
    rule = FireRule(cfg, NAMES)
    got = feed(rule, growing)
    assert [t.type for t in got] == ["new"] and got[0].kind == "straw_burning"
    # 02:00 local: out of the season's hours, the same sightings do not
    night = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)
    rule = FireRule(cfg, NAMES)
    assert not rule.in_season(night)
    assert feed(rule, growing, start=night) == []
    assert rule.min_score == 0.3  # the detector is asked for the lower of the two


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="confirm_hits: cannot exceed confirm_window"):
        FireAnalytic(confirm_hits=9, confirm_window=8)
    with pytest.raises(ValidationError, match="unknown time zone"):
        BurningAnalytic(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"classes \['smoke'\] are not in model"):
        FireRule(FireAnalytic(), ("fire", "person"))


def test_close_ends_running_alerts() -> None:
    rule = FireRule(FireAnalytic(), NAMES)
    new = feed(rule, [dets(FIRE)] * 4)
    ended = rule.close(T0 + timedelta(seconds=30))
    assert [t.type for t in ended] == ["end"] and ended[0].event_id == new[0].event_id
    assert ended[0].seq == new[0].seq + 1 and rule.active_events == 0
