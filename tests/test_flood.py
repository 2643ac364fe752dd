"""The flood analytic, its state machine, the public hotspot API and page.

Unit tests run on rendered scenes with known truth (tests/flood_scenes.py); the last test
runs the whole path on real parts: an edge worker reading a rendered gauge video, a real
mosquitto, the hub process, the public API (ETag/304) and the page in headless Chromium.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from central.app import create_app
from central.config import HubConfig
from central.hotspots import HotspotFileError, load_hotspots
from edge.analytics.flood import CHECK_WIDTH, FloodRule, LevelStateMachine, SceneCheck, _gray_small
from edge.analytics.waterline import find_waterline
from edge.config import FloodAnalytic, FloodLevel
from edgewatch import contract
from tests import flood_scenes as fs
from tests.helpers import Hub, Mosquitto, Process, wait_for

T0 = datetime(2026, 10, 15, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
LEVELS = [FloodLevel(name="I", level_cm=100), FloodLevel(name="II", level_cm=200)]


def rule_for(setup: str, **over: object) -> FloodRule:
    return FloodRule(FloodAnalytic.model_validate(fs.analytic_config(setup, **over)))


def run(rule: FloodRule, setup: str, levels: list[float], cond: str = "day", bad: bool = False):  # type: ignore[no-untyped-def]
    scene = fs.Scene(setup, seed=3)
    outs = []
    for i, lv in enumerate(levels):
        img = scene.render(lv, cond, i, bad)
        outs.append(rule.update(img, T0 + timedelta(minutes=i)))
    return outs


# -- set-ups -------------------------------------------------------------------------------


@pytest.mark.parametrize("setup", ["gauge", "virtual_gauge"])
def test_line_setups_read_the_level_in_centimetres(setup: str) -> None:
    truth = [120.0 + 2 * i for i in range(12)]
    outs = run(rule_for(setup), setup, truth)
    errors = [abs(o.reading.raw_cm - t) for o, t in zip(outs, truth, strict=True)]  # type: ignore[operator]
    assert max(errors) < 6, errors
    assert all(o.reading.state == "I" for o in outs[2:])  # 100 cm passed, 200 cm not


def test_road_cover_gives_cover_and_depth_class() -> None:
    rule = rule_for("road_cover")
    outs = run(rule, "road_cover", [0, 0, 0, 30, 30, 30, 70, 70, 70])
    assert outs[2].reading.depth_class == "dry" and outs[2].reading.cover < 0.05  # type: ignore[operator]
    assert outs[5].reading.depth_class == "ankle" and outs[5].reading.cover > 0.9  # type: ignore[operator]
    assert outs[5].reading.raw_cm == 25  # the 25 cm mark is under water, 40 cm is not
    assert outs[8].reading.depth_class == "impassable"
    assert outs[8].reading.state == "impassable"


@pytest.mark.parametrize(
    ("cond", "reason"),
    [
        ("droplets", "lens_obstructed"),
        ("glare", "glare"),
        ("moved", "camera_moved"),
        ("night", "too_dark"),  # the lights-out frames
    ],
)
def test_unusable_frames_are_unknown_and_keep_the_alarm(cond: str, reason: str) -> None:
    rule = rule_for("gauge")
    good = run(rule, "gauge", [230.0] * 4)
    assert good[-1].reading.state == "II"
    scene = fs.Scene("gauge", seed=3)
    for i in range(3):
        out = rule.update(scene.render(230.0, cond, 10 + i, True), T0 + timedelta(minutes=10 + i))
        r = out.reading
        assert r.state == "unknown" and r.reason == reason
        assert r.level_state == "II" and r.level_cm is None  # alarm kept, no level claimed
    # the second unknown in a row raised a flood_unknown event
    back = rule.update(scene.render(230.0, "day", 20, False), T0 + timedelta(minutes=20))
    assert back.reading.state == "II"
    assert [(t.kind, t.type) for t in back.transitions] == [("flood_unknown", "end")]


def test_a_frozen_stream_is_unknown() -> None:
    rule = rule_for("gauge")
    img = fs.Scene("gauge", seed=3).render(150.0, "day", 0, False)
    states = [rule.update(img, T0 + timedelta(minutes=i)).reading for i in range(4)]
    assert states[0].state == "I"
    assert states[-1].state == "unknown" and states[-1].reason == "frozen"


def test_missing_reference_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="reference_image"):
        rule_for("gauge", reference_image=str(tmp_path / "nope.png"))


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="points needs two or more"):
        FloodAnalytic.model_validate({**fs.analytic_config("gauge"), "points": []})
    with pytest.raises(ValueError, match="strictly ascending"):
        FloodAnalytic.model_validate(
            {
                **fs.analytic_config("gauge"),
                "levels": [{"name": "I", "level_cm": 200}, {"name": "II", "level_cm": 100}],
            }  # fmt: skip
        )


def test_the_reflection_of_the_gauge_is_not_the_waterline() -> None:
    """Calm water mirrors the gauge; the mirrored gauge ends lower with a second, as strong
    step (the old change point read that end, 100 cm low). Readings must be right or
    unknown, never the reflection's end."""
    rule = rule_for("gauge")
    truth = [250.0 + 3 * i for i in range(8)]
    outs = run(rule, "gauge", truth, cond="reflection")
    known = [(o.reading.level_cm, t) for o, t in zip(outs, truth, strict=True)
             if o.reading.state != "unknown"]  # fmt: skip
    assert len(known) >= 6, [o.reading for o in outs]
    assert max(abs(v - t) for v, t in known) < 3, known  # type: ignore[operator]


def test_the_waterline_skips_marks_and_knows_its_sign() -> None:
    # a bright face with dark ticks every 2 cm, numbers, and a dirt band, over darker water
    px_cm = 4.0
    strip = np.full((400, 40), 200.0, np.float32)
    for y in range(10, 300, 8):
        strip[y : y + 3, 24:] = 40  # ticks on the right half
    strip[100:112, 4:14] = 60  # a number
    strip[180:186] = 120  # an old dirt line, across the whole width
    strip[300:] = 90  # water from row 300
    rng = np.random.default_rng(0)
    img = np.clip(strip + rng.normal(0, 3, strip.shape), 0, 255).astype(np.uint8)
    wl = find_waterline(img, px_cm)
    assert wl is not None and abs(wl.row - 300) < 1.0 and wl.confidence > 0.9, wl
    # a dark wall over brighter water is not what "darker" looks for: no sure answer there
    wall = np.where(np.arange(400)[:, None] < 300, 60.0, 170.0) + rng.normal(0, 3, (400, 40))
    wall = np.clip(wall, 0, 255).astype(np.uint8)
    wl = find_waterline(wall, px_cm)
    assert wl is None or wl.confidence < 0.5, wl
    wl = find_waterline(wall, px_cm, water="brighter")
    assert wl is not None and abs(wl.row - 300) < 1.0 and wl.confidence > 0.9, wl
    # a plain face, no water in view: nothing to be sure of
    flat = np.clip(200 + rng.normal(0, 3, strip.shape), 0, 255).astype(np.uint8)
    wl = find_waterline(flat, px_cm)
    assert wl is None or wl.confidence < 0.5, wl


def test_a_submerged_gauge_is_unknown_and_keeps_the_alarm() -> None:
    """Water over the whole line: no waterline to read, so unknown (with a reason), and the
    alarm it had is kept, never normal."""
    rule = rule_for("gauge")
    run(rule, "gauge", [360.0 + i for i in range(4)])
    scene = fs.Scene("gauge", seed=3)
    for i in range(3):
        r = rule.update(scene.render(440.0, "day", 10 + i, False), T0 + timedelta(minutes=10 + i))
        assert r.reading.state == "unknown" and r.reading.reason, r.reading
        assert r.reading.level_state == "III" and r.reading.level_cm is None


# -- state machine -------------------------------------------------------------------------


def feed(m: LevelStateMachine, values: list[float | None], start: int = 0):  # type: ignore[no-untyped-def]
    out = []
    for i, v in enumerate(values):
        out.append(m.update(T0 + timedelta(minutes=start + i), v, None if v is not None else "x"))
    return out


def test_hysteresis_clears_only_below_margin_for_the_hold_time() -> None:
    m = LevelStateMachine(LEVELS, margin_cm=5, hold_s=300, smoothing=1, max_rate_cm_per_min=None)
    res = feed(m, [90, 101, 99, 97, 96, 94, 94, 94, 94, 94, 94, 94])
    states = [r.state for r, _ in res]
    assert states[1] == "I"
    assert states[2:5] == ["I"] * 3  # below 100 but within the 5 cm margin
    assert states[5:10] == ["I"] * 5  # below the margin, hold time not yet over
    assert states[10] == "normal"  # 5 minutes below 95
    changes = [c for _, cs in res for c in cs]
    assert [(c.kind, c.level.name) for c in changes] == [("reached", "I"), ("cleared", "I")]


def feed_at(m: LevelStateMachine, items: list[tuple[float, float | None, float | None]]):  # type: ignore[no-untyped-def]
    """(minutes after T0, level or None, confidence) per reading."""
    return [
        m.update(T0 + timedelta(minutes=t), v, None if v is not None else "x", c)
        for t, v, c in items
    ]


def test_the_plausible_change_grows_with_the_time_between_readings() -> None:
    def machine() -> LevelStateMachine:
        return LevelStateMachine(LEVELS, max_rate_cm_per_min=1, jump_tolerance_cm=3, smoothing=1)

    # 12 cm in one minute is more than 1 cm/min + 3 cm allow: it waits for the next reading
    res = feed_at(machine(), [(0, 50, 1), (1, 62, 1)])
    assert res[1][0].state == "unknown" and res[1][0].reason == "unconfirmed_jump"
    assert res[1][0].rejected and res[1][0].level_cm is None
    # the same 12 cm over 15 minutes is plausible (15 + 3 cm)
    res = feed_at(machine(), [(0, 50, 1), (15, 62, 1)])
    assert res[1][0].state == "normal" and res[1][0].level_cm == 62
    # a jump the next reading confirms counts, both readings: a real surge raises the level
    res = feed_at(machine(), [(0, 50, 1), (1, 102, 1), (2, 103, 1)])
    assert [r.state for r, _ in res] == ["normal", "unknown", "I"]
    assert [(c.kind, c.level.name) for c in res[2][1]] == [("reached", "I")]
    # a jump the next reading does not confirm was an outlier: dropped, nothing moved
    m = machine()
    res = feed_at(m, [(0, 50, 1), (1, 180, 1), (2, 51, 1), (3, 52, 1)])
    assert [r.state for r, _ in res] == ["normal", "unknown", "normal", "normal"]
    assert not any(cs for _, cs in res) and m.rejected == 1
    # an alarm is not cleared by a sudden low reading either
    m = machine()
    res = feed_at(m, [(0, 105, 1), (1, 40, 1), (2, 104, 1)])
    assert [r.state for r, _ in res] == ["I", "unknown", "I"]
    assert res[1][0].level_state == "I"


def test_a_reading_below_the_confidence_floor_is_unknown_and_moves_nothing() -> None:
    m = LevelStateMachine(LEVELS, smoothing=1, min_confidence=0.5, max_rate_cm_per_min=None)
    res = feed_at(m, [(0, 120, 0.9), (1, 230, 0.3), (2, 40, 0.49), (3, 40, 0.1), (4, 121, 0.5)])
    assert [r.state for r, _ in res] == ["I", "unknown", "unknown", "unknown", "I"]
    assert all(r.reason == "low_confidence" for r, _ in res[1:4])
    assert all(r.level_state == "I" and r.level_cm is None for r, _ in res[1:4])
    assert [c for _, cs in res for c in cs][1:] == []  # only the first reading raised a level
    assert res[1][0].confidence == 0.3 and res[1][0].raw_cm == 230  # what it saw, not acted on


def test_smoothing_does_not_carry_old_readings_across_a_gap() -> None:
    """The smoothing carries its window along the window's slope to now; after an outage
    that would invent a level from readings made before it (seen in the demo: a camera back
    after 90 s read 69 cm and the smoothing said 478 cm, a false level III). A gap longer
    than three of the window's intervals starts the window again."""
    levels = [FloodLevel(name="I", level_cm=100), FloodLevel(name="II", level_cm=150)]
    m = LevelStateMachine(levels, smoothing=5, max_rate_cm_per_min=None)
    rising = [(float(k), 40.0 + 1.0 * k, 1.0) for k in range(5)]  # 1 cm/min, every minute
    res = feed_at(m, [*rising, (95.0, 60.0, 1.0), (96.0, 61.0, 1.0), (97.0, 62.0, 1.0)])
    after = [r for r, _ in res[5:]]
    # read after the gap: what the camera sees now, not 40 + 95 cm along the old slope
    assert [round(r.level_cm or 0, 1) for r in after] == [60.0, 60.5, 62.0]
    assert all(r.state == "normal" for r in after)
    assert [c for _, cs in res for c in cs] == []  # no level reached, none invented
    # one bad frame after an hour's outage (the physics check allows a change as large
    # as the gap is long) raises no level: it is never confirmed
    m = LevelStateMachine(levels, smoothing=5)  # 2 cm/min + 5 cm
    steady = [(float(k), 60.0, 1.0) for k in range(5)]
    res = feed_at(m, [*steady, (65.0, 130.0, 1.0), (66.0, 61.0, 1.0), (67.0, 61.0, 1.0)])
    assert [r.state for r, _ in res[5:]] == ["unknown", "normal", "normal"]
    assert res[5][0].reason == "unconfirmed_after_gap"
    assert [c for _, cs in res for c in cs] == []
    # a real rise over the outage is confirmed by the next reading, both count
    m = LevelStateMachine(levels, smoothing=5)
    res = feed_at(m, [*steady, (65.0, 105.0, 1.0), (66.0, 106.0, 1.0)])
    assert [r.state for r, _ in res[5:]] == ["unknown", "I"]
    assert [c.kind for _, cs in res for c in cs] == ["reached"]
    # without a gap the smoothing still keeps up with a steady rise (no lag)
    m = LevelStateMachine(levels, smoothing=5, max_rate_cm_per_min=None)
    res = feed_at(m, [(float(k), 40.0 + 1.0 * k, 1.0) for k in range(8)])
    assert round(res[-1][0].level_cm or 0, 1) == 47.0


def test_an_all_clear_needs_consecutive_confident_readings_spanning_the_hold() -> None:
    levels = [FloodLevel(name="I", level_cm=60), FloodLevel(name="II", level_cm=80)]
    m = LevelStateMachine(
        levels, margin_cm=5, hold_s=900, clear_readings=2, smoothing=1, min_confidence=0.5,
        max_rate_cm_per_min=None,
    )  # fmt: skip
    res = feed_at(
        m,
        [
            (0, 85, 1.0),  # II
            (15, 70, 1.0),  # below 80 - 5: one reading of evidence, not an all-clear
            (30, None, None),  # unknown: the evidence starts again
            (45, 70, 1.0),
            (50, 70, 0.2),  # a low-confidence reading breaks the run too
            (60, 70, 1.0),
            (65, 70, 1.0),  # two in a row, but only 5 minutes apart: under the hold
            (75, 70, 1.0),  # 15 minutes of confident evidence: II clears, I stays
            (90, 50, 1.0),
            (105, 50, 1.0),  # below 60 - 5 for 15 minutes: I clears
        ],
    )
    states = [r.state for r, _ in res]
    assert states == ["II", "II", "unknown", "II", "unknown", "II", "II", "I", "I", "normal"]
    cleared = [
        (i, c.level.name) for i, (_, cs) in enumerate(res) for c in cs if c.kind == "cleared"
    ]
    assert cleared == [(7, "II"), (9, "I")]
    # never on one reading, even with no hold time
    m = LevelStateMachine(levels, hold_s=0, clear_readings=1, smoothing=1)
    res = feed_at(m, [(0, 85, 1), (15, 60, 1), (30, 60, 1)])
    assert [r.state for r, _ in res] == ["II", "II", "I"]


def test_trend_and_eta_to_the_next_level() -> None:
    m = LevelStateMachine(LEVELS, smoothing=3, trend_window_s=1200)
    res = feed(m, [100 + i for i in range(25)])  # +1 cm a minute
    r = res[-1][0]
    assert r.trend_cm_per_h == pytest.approx(60, abs=1)
    assert r.next_level == "II"
    assert r.eta_s == pytest.approx((200 - 124) * 60, rel=0.05)


def test_unknown_never_reads_normal() -> None:
    m = LevelStateMachine(LEVELS, smoothing=1)
    res = feed(m, [None, None, 50, None])
    assert [r.state for r, _ in res] == ["unknown", "unknown", "normal", "unknown"]


# -- real frames: GRIME2 marsh camera, 30 June 2012 (../shared/assets) --------------------

ROOT = Path(__file__).resolve().parents[1]
REAL_CONFIG = ROOT / "configs" / "eval" / "grime2_2012.yaml"


def _eval_real():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "eval_flood_real", ROOT / "scripts" / "eval_flood_real.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _staff_config(tmp_path: Path) -> Path:
    """The same camera with the line along the staff gauge instead of down the target: the
    staff leans 4.5 px over 240 rows; points at its decimetre ticks (rows measured on the
    11:00 frame). At night the staff's reflection ends 40 cm below the water: the trap."""
    doc = yaml.safe_load(REAL_CONFIG.read_text())
    flood = doc["cameras"][0]["analytics"][0]

    def at(row: float) -> list[float]:
        return [(300 + (row - 260) * 4.5 / 240) / 800, row / 600]

    ticks = {90: 250.9, 80: 292.0, 70: 332.6, 60: 373.5, 50: 413.5, 40: 453.5, 30: 493.4, 20: 532.5}
    flood.update(
        line=[at(200), at(597)],
        line_width=0.02,
        points=[{"at": at(row), "level_cm": cm} for cm, row in ticks.items()],
    )
    path = tmp_path / "staff.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("line", ["target", "staff"])
def test_real_frames_meet_the_targets(assets: Path, tmp_path: Path, line: str) -> None:
    """The development set (24 frames, dawn IR to full day, 63 -> 12 cm, levels I = 60 and
    II = 80 cm) against the levels read by eye. Reached here: MAE 0.27 (target line) / 0.55
    cm (staff), worst 0.5 / 0.8 cm, nothing unknown, level I raised on the first frame and
    cleared only once the water was below it. Before: MAE 5.8 cm both; the staff line read
    its night reflection's end (20 cm for 63) and cleared level I at 06:00 with the water at
    63 cm; the target line read the old dirt line (70 cm for 47)."""
    folder = assets / "water" / "grime2" / "2012_demo"
    config = REAL_CONFIG if line == "target" else _staff_config(tmp_path)
    res = _eval_real().evaluate(folder / "06", config, folder / "06_levels.csv")
    assert res["n"] == 24 and res["scored"] == 24
    assert res["false_clear"] == 0
    assert res["late_raise_samples"] == 0 and res["missed_raise"] == 0
    assert res["unknown"] == 0, res["unknown_reasons"]
    assert res["errors_over_5cm"] == 0
    assert res["mae_cm"] <= (0.5 if line == "target" else 0.8), res["mae_cm"]
    assert res["max_err_cm"] <= (1.0 if line == "target" else 1.2), res["max_err_cm"]
    # level I (60 cm) was raised on the first frame and cleared after the water fell below it
    states = [p["level_state"] for p in res["per_frame"]]
    assert states[0] == "I" and states[-1] == "normal"
    first_normal = states.index("normal")
    assert all(p["truth_cm"] < 60 for p in res["per_frame"][first_normal:])


def test_eval_real_takes_time_from_grime2_names_else_mtime(tmp_path: Path) -> None:
    mod = _eval_real()
    named = tmp_path / "NRmarshDN-12-06-30-05-15.jpg"
    other = tmp_path / "frame_0001.jpg"
    for f in (named, other):
        f.write_bytes(b"")
    os.utime(other, (1_700_000_000, 1_700_000_000))
    assert mod.frame_time(named) == datetime(2012, 6, 30, 5, 15, tzinfo=UTC)
    assert mod.frame_time(other) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    truth = tmp_path / "t.csv"
    truth.write_text("file,level,eye_cm\nsub/a.jpg,12.5,11\nb.jpg,,3\n")
    assert mod.load_truth(truth) == {"a.jpg": 12.5}


def test_the_sun_coming_out_is_not_a_camera_move(assets: Path) -> None:
    """Dawn IR view as the reference; the same camera in sunshine with hard shadows of reeds
    (rendered over real morning frames) must not read as moved, and the same frames really
    shifted by 30 x 15 px must. Before the tile check: 3 of these 12 sunlit frames "moved"
    (9 of 12 with 60 shadows, where 3 still do)."""
    frames = sorted((assets / "water" / "grime2" / "2012_demo" / "06").glob("*.jpg"))
    doc = yaml.safe_load(REAL_CONFIG.read_text())
    cfg = FloodAnalytic.model_validate(doc["cameras"][0]["analytics"][0])
    check = SceneCheck(cfg, cv2.imread(str(frames[0])))
    limit = cfg.max_shift * CHECK_WIDTH
    false_moves = true_moves = 0
    shift = np.float32([[1, 0, 30], [0, 1, 15]])
    for seed in range(4):
        for i in (6, 8, 10):
            img = fs.sunlit(cv2.imread(str(frames[i])), seed, shadows=45)
            d, _how = check.shift(img, _gray_small(img), 0.6)
            false_moves += d is None or d > limit
            moved = cv2.warpAffine(img, shift, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            d, _how = check.shift(moved, _gray_small(moved), 0.6)
            true_moves += d is None or d > limit
    assert true_moves == 12
    assert false_moves == 0, false_moves


# -- hub: public API -----------------------------------------------------------------------


def reading(hid: str, t: datetime, state: str = "II", level: float | None = 230.0, **kw):  # type: ignore[no-untyped-def]
    doc = contract.HotspotReading(
        hotspot_id=hid,
        # the camera configs/hotspots.geojson links the hotspot to (no other is believed)
        camera_id=kw.pop("camera_id", f"flood-{hid[-3:]}"),
        analytic="flood",
        setup="gauge",
        time=t,
        state=state,
        level_state=kw.pop("level_state", state),
        level_cm=level,
        trend_cm_per_h=12.0,
        next_level="III",
        eta_s=3600,
        period_s=60,
        **kw,
    )
    return doc.model_dump_json(exclude_none=True).encode()


@pytest.fixture
def hub_app(tmp_path: Path) -> TestClient:
    cfg = HubConfig(
        database_url=f"sqlite:///{tmp_path}/hub.sqlite3",
        hotspots_file=Path("configs/hotspots.geojson"),
    )
    return TestClient(create_app(cfg, consume=False))


def post(client: TestClient, site: str, edge: str, hid: str, payload: bytes) -> str:
    return client.app.state.ingestor.handle(contract.hotspot_topic(site, edge, hid), payload)  # type: ignore[attr-defined]


def test_hotspots_geojson_states_stale_and_no_private_fields(hub_app: TestClient) -> None:
    now = datetime.now(UTC)
    assert post(hub_app, "hue", "edge-01", "hue-001", reading("hue-001", now)) == "stored"
    assert post(hub_app, "hue", "edge-01", "hue-001", reading("hue-001", now)) == "duplicate"
    old = now - timedelta(minutes=10)
    assert post(hub_app, "hue", "edge-01", "hue-002", reading("hue-002", old, "normal", 20.0)) == (
        "stored"
    )
    bad = reading("hue-003", now, "unknown", None, level_state="knee", reason="glare")
    assert post(hub_app, "hue", "edge-01", "hue-003", bad) == "stored"
    r = hub_app.get("/api/v1/hotspots")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 50
    f = {x["id"]: x for x in doc["features"]}
    assert f["hue-001"]["geometry"]["type"] == "Point"
    p1 = f["hue-001"]["properties"]
    assert p1["state"] == "II" and p1["level_cm"] == 230 and not p1["stale"]
    assert p1["trend"] == "rising" and p1["eta_s"] == 3600 and p1["next_level"] == "III"
    p2 = f["hue-002"]["properties"]  # 10 minutes old at a 60 s period: stale, so unknown
    assert p2["stale"] and p2["state"] == "unknown" and p2["reason"] == "stale"
    p3 = f["hue-003"]["properties"]
    assert p3["state"] == "unknown" and p3["last_known_state"] == "knee"
    assert p3["reason"] == "glare"
    assert f["hue-050"]["properties"]["reason"] == "no_reading"
    assert doc["features"][0]["id"] == "hue-001"  # most severe first
    text = r.text
    for private in ("flood-001", "edge-01", "camera", "rtsp", "site"):
        assert private not in text, private
    h = hub_app.get("/api/v1/hotspots/hue-001/history").json()
    assert [p["level_cm"] for p in h["points"]] == [230.0]
    assert "flood-001" not in json.dumps(h)
    assert hub_app.get("/api/v1/hotspots/nope/history").status_code == 404


def test_etag_gives_304_until_a_new_reading(hub_app: TestClient) -> None:
    now = datetime.now(UTC)
    post(hub_app, "hue", "edge-01", "hue-001", reading("hue-001", now))
    r1 = hub_app.get("/api/v1/hotspots")
    etag = r1.headers["etag"]
    assert "max-age" in r1.headers["cache-control"]
    r2 = hub_app.get("/api/v1/hotspots", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    post(hub_app, "hue", "edge-01", "hue-001", reading("hue-001", now + timedelta(seconds=60)))
    r3 = hub_app.get("/api/v1/hotspots", headers={"If-None-Match": etag})
    assert r3.status_code == 200 and r3.headers["etag"] != etag


def test_bad_readings_are_rejected_and_counted(hub_app: TestClient) -> None:
    topic = contract.hotspot_topic("hue", "edge-01", "hue-001")
    ing = hub_app.app.state.ingestor  # type: ignore[attr-defined]
    assert ing.handle(topic, b"{not json") == "rejected"
    assert ing.handle(topic, reading("hue-002", datetime.now(UTC))) == "rejected"  # id mismatch
    assert ing.handle(topic, b'{"hotspot_id": "hue-001"}') == "rejected"
    assert hub_app.get("/api/v1/hotspots").status_code == 200


def test_hotspot_file_errors_name_the_feature(tmp_path: Path) -> None:
    doc = json.loads(Path("configs/hotspots.geojson").read_text())
    doc["features"][3]["properties"]["levels"] = []
    bad = tmp_path / "h.geojson"
    bad.write_text(json.dumps(doc))
    with pytest.raises(HotspotFileError, match=r"features\.3\.properties\.levels"):
        load_hotspots(bad)


# -- end to end: edge -> mosquitto -> hub -> API -> browser --------------------------------


def gauge_video(path: Path, level: float, n: int = 40, fps: int = 5) -> Path:
    scene = fs.Scene("gauge", seed=5)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = fs.W, fs.H, "yuv420p"
        st.options = {"g": str(fps), "bf": "0", "crf": "20"}
        for i in range(n):
            img = scene.render(level, "day", i, False)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


@pytest.mark.e2e
def test_flood_reading_reaches_the_public_page(tmp_path: Path, broker: Mosquitto, uid: str) -> None:
    video = gauge_video(tmp_path / "gauge.mp4", 230.0)
    hid = f"e2e-{uid}"
    hotspots = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [107.59, 16.46]},
                "properties": {
                    "id": hid,
                    "name": "Test gauge",
                    "period_s": 1,
                    "levels": fs.LEVELS,
                    "example": True,
                    "camera": {"site": "hue", "edge_id": f"edge-{uid}", "camera_id": "river"},
                },  # fmt: skip
            }
        ],
    }
    (tmp_path / "hotspots.geojson").write_text(json.dumps(hotspots))
    hub = Hub(tmp_path, f"sqlite:///{tmp_path}/hub.sqlite3", broker, f"hub-{uid}")
    import yaml

    conf = yaml.safe_load(hub.config_path.read_text())
    conf["hotspots_file"] = str(tmp_path / "hotspots.geojson")
    hub.config_path.write_text(yaml.safe_dump(conf))
    analytic = fs.analytic_config("gauge", hotspot=hid, period_s=1, hold_s=5)
    edge = Process(
        tmp_path,
        "edge",
        ["edge", "run"],
        {
            "edge_id": f"edge-{uid}",
            "site": "hue",
            "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
            "spool_dir": str(tmp_path / "spool"),
            "cameras": [{"id": "river", "url": str(video), "loop": True, "analytics": [analytic]}],
        },
    )
    hub.start()
    edge.start()
    try:

        def reached() -> dict | None:
            feats = hub.get("/api/v1/hotspots")
            feats = json.loads(feats) if isinstance(feats, bytes) else feats
            p = feats["features"][0]["properties"]
            return p if p["state"] == "II" and not p["stale"] else None

        p = wait_for(reached, 60, what="level II at the hub")
        assert abs(p["level_cm"] - 230) < 6, p
        # the level event went through the events API too
        wait_for(
            lambda: {e["label"] for e in hub.all_events(kind="flood_level")} >= {"I", "II"},
            20,
            what="flood_level events I and II at the hub",
        )
        base = f"http://127.0.0.1:{hub.port}"
        with urllib.request.urlopen(f"{base}/api/v1/hotspots") as r:
            etag = r.headers["ETag"]
        req = urllib.request.Request(f"{base}/api/v1/hotspots", headers={"If-None-Match": etag})
        try:
            with urllib.request.urlopen(req) as r:
                status = r.status  # a new reading may have come in between
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status in (304, 200)
        browse(base, hid)
    finally:
        edge.stop()
        hub.stop()


def browse(base: str, hid: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            t0 = time.monotonic()
            page.goto(f"{base}/hotspots")
            card = page.locator(f'li.card[data-id="{hid}"]')
            card.wait_for(timeout=10000)
            assert card.get_attribute("data-state") == "II"
            assert "Level II" in card.inner_text()
            # a function, not an expression: polled under the page's CSP (no eval)
            page.wait_for_function(
                "(hid) => Number(document.querySelector("
                "`li[data-id=\"${hid}\"] svg.chart`)?.dataset.points) > 0",
                arg=hid,
                timeout=10000,
            )
            assert card.locator("svg.chart polyline").count() == 1
            assert card.locator("svg.chart line.thr").count() == 3
            page.screenshot(path=str(ARTIFACTS / "hotspots_page.png"), full_page=True)
            print(f"\nhotspots page rendered in {time.monotonic() - t0:.2f} s")
        finally:
            browser.close()
