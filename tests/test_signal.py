"""Signal state on real photos (the two CC BY 4.0 signal data sets in the assets): the
truth converter, the lamps reading and what it refuses to guess (a dark head, glare, a
lit lamp of the wrong colour), the model reading before and after, the eval script, and
the reader feeding a state that is sure only between two looks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.analytics.signal import (
    Lamp,
    SignalReader,
    lamps_along,
    read_lamps,
    signal_state,
)
from edge.config import SignalSource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import eval_signal  # noqa: E402

KR = "datasets/traffic_lights_kr_ccby4/test"
CINTA = "datasets/traffic_lights_cinta_ccby4/test"


@pytest.fixture(scope="module")
def kr(assets: Path) -> tuple[Path, dict]:
    split = assets / KR
    return split / "images", eval_signal.truth_from_yolo(split)


@pytest.fixture(scope="module")
def cinta(assets: Path) -> tuple[Path, dict]:
    split = assets / CINTA
    return split / "images", eval_signal.truth_from_yolo(split)


def test_truth_from_yolo_reads_boxes_and_polygons(assets: Path, kr, cinta) -> None:  # type: ignore[no-untyped-def]
    _, truth = kr
    heads = [h for v in truth.values() for h in v.values()]
    assert len(truth) == 13 and len(heads) == 33
    assert sorted({h["label"] for h in heads}) == ["green", "left", "red", "yellow"]
    assert {h["state"] for h in heads if h["label"] == "yellow"} == {"amber"}
    assert {h["state"] for h in heads if h["label"] == "left"} == {"green"}
    assert any(h["also_lit"] == ["red"] for h in heads if h["label"] == "left")
    # a polygon label: the head box is its min/max, the region that box grown by half
    # its size on every side
    for name, v in truth.items():
        lines = (assets / KR / "labels" / (Path(name).stem + ".txt")).read_text().split("\n")
        for k, line in enumerate(x for x in lines if x.strip()):
            p = np.array(line.split()[1:], float)
            if len(p) > 4:
                h = v[f"head-{k}"]
                assert h["head"] == pytest.approx(
                    [p[0::2].min(), p[1::2].min(), p[0::2].max(), p[1::2].max()], abs=1e-5
                )
                w = h["head"][2] - h["head"][0]
                assert h["region"][0] == pytest.approx(h["head"][0] - 0.5 * w, abs=1e-4)
    _, truth = cinta
    labels = [h["label"] for v in truth.values() for h in v.values()]
    assert len(labels) == 131 and sorted(set(labels)) == ["green", "red", "yellow"]


def test_lamps_read_real_heads_and_never_guess_wrong(kr, cinta) -> None:  # type: ignore[no-untyped-def]
    images, truth = cinta
    some = dict(list(truth.items())[:40])
    r = eval_signal.evaluate(images, some, "lamps")
    assert r["wrong"] == 0 and r["accuracy"] >= 0.6, (r["accuracy"], r["confusion"])
    r = eval_signal.evaluate(*kr, "lamps")
    assert r["wrong"] == 0 and r["accuracy"] >= 0.8, r["confusion"]


def _read_heads(images: Path, truth: dict, n: int) -> list[tuple[np.ndarray, list[Lamp], str]]:
    """Up to ``n`` three-lamp heads the lamps source reads right, with their lamps."""
    out = []
    for name, heads in truth.items():
        img = cv2.imread(str(images / name))
        h, w = img.shape[:2]
        for spec in heads.values():
            lamps = lamps_along(tuple(spec["head"]), (w, h))
            if len(lamps) == 3 and read_lamps(img, lamps).state == spec["state"]:
                out.append((img, lamps, spec["state"]))
        if len(out) >= n:
            break
    return out


def _disc(img: np.ndarray, lamp: Lamp, scale: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = lamp.r * w * scale
    return (xx + 0.5 - lamp.x * w) ** 2 + (yy + 0.5 - lamp.y * h) ** 2 <= r * r


def _head_box(img: np.ndarray, lamps: list[Lamp]) -> tuple[slice, slice]:
    h, w = img.shape[:2]
    r = 2.0 * lamps[0].r * w
    xs, ys = [lp.x * w for lp in lamps], [lp.y * h for lp in lamps]
    return (
        slice(max(0, int(min(ys) - r)), int(max(ys) + r) + 1),
        slice(max(0, int(min(xs) - r)), int(max(xs) + r) + 1),
    )


def test_lamps_refuse_dark_heads_glare_and_a_lamp_of_the_wrong_colour(cinta) -> None:  # type: ignore[no-untyped-def]
    heads = _read_heads(*cinta, n=12)
    assert len(heads) >= 10
    colours = {"red", "amber", "green"}
    for img, lamps, state in heads:
        lit = read_lamps(img, lamps).details["lamp"]
        ys, xs = _head_box(img, lamps)
        # a dark head (every lamp off: power cut, a failed lamp): its coloured pixels greyed
        dark = img.copy()
        roi = dark[ys, xs]
        chroma = roi.max(axis=2).astype(int) - roi.min(axis=2)
        roi[chroma >= 30] = np.median(roi[chroma < 30], axis=0).astype(np.uint8)
        r = read_lamps(dark, lamps)
        assert r.state == "unknown" and r.reason and r.reason.startswith("dark"), r
        # night: everything but the lit lamp five times darker; still read
        night = (img.astype(np.float32) * 0.2).astype(np.uint8)
        keep = _disc(img, lamps[lit], 1.25)
        night[keep] = img[keep]
        assert read_lamps(night, lamps).state == state
        # glare: the head washed out by a white haze; right, or unknown, never another colour
        glare = img.copy()
        glare[ys, xs] = (0.4 * glare[ys, xs] + 0.6 * 255).astype(np.uint8)
        assert read_lamps(glare, lamps).state in (state, "unknown")
        # the sun in an unlit lens (a warm white reflection)
        sun = img.copy()
        off = next(i for i in range(3) if i != lit)
        sun[_disc(img, lamps[off], 0.8)] = (200, 235, 255)
        assert read_lamps(sun, lamps).state in (state, "unknown")
        # colours configured from a snapshot: the lit lamp's hue must agree with its colour
        right = [Lamp(lp.x, lp.y, lp.r, state if i == lit else None) for i, lp in enumerate(lamps)]
        assert read_lamps(img, right).state == state
        other = sorted(colours - {state})[0]
        wrong = [Lamp(lp.x, lp.y, lp.r, other if i == lit else None) for i, lp in enumerate(lamps)]
        r = read_lamps(img, wrong)
        assert r.state == "unknown" and "looks" in (r.reason or ""), r


def test_two_lamps_lit_is_unknown(cinta) -> None:  # type: ignore[no-untyped-def]
    img, lamps, state = _read_heads(*cinta, n=1)[0]
    lit = read_lamps(img, lamps).details["lamp"]
    other = next(i for i in range(3) if i != lit)
    both = img.copy()
    h, w = img.shape[:2]
    dy = int(round((lamps[other].y - lamps[lit].y) * h))
    dx = int(round((lamps[other].x - lamps[lit].x) * w))
    src = _disc(img, lamps[lit])
    both[np.roll(np.roll(src, dy, axis=0), dx, axis=1)] = img[src]  # the lit lamp copied over
    r = read_lamps(both, lamps)
    assert r.state == "unknown" and "more than one" in (r.reason or "")


def test_model_reading_before_and_after_on_korean_heads(kr, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """OpenLenda on the Korean test split: the old reading (the region cut out and
    upscaled, one class per box) finds nothing; multi-label at the camera's scale finds
    little; mirrored (the model learned red-on-the-right heads) it reads most, no wrong."""
    det = eval_signal.openlenda(tmp_path)
    old = eval_signal.evaluate(*kr, "model", det, legacy=True)
    plain = eval_signal.evaluate(*kr, "model", det)
    mirrored = eval_signal.evaluate(*kr, "model", det, mirror=True)
    assert old["correct"] == 0 and old["unknown"] == old["n"]
    assert mirrored["correct"] >= plain["correct"] + 8 and mirrored["correct"] >= 12
    assert mirrored["wrong"] == 0 and mirrored["precision"] == 1.0


def test_eval_signal_cli(kr, cinta, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    images, truth = cinta
    small = dict(list(truth.items())[:6])
    tfile = tmp_path / "truth.json"
    tfile.write_text(json.dumps(small))
    out = tmp_path / "out.json"

    def run(*args: Any) -> dict:  # type: ignore[type-arg]
        cmd = [sys.executable, str(ROOT / "scripts" / "eval_signal.py"), *map(str, args)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        return json.loads(out.read_text())

    r = run("--images", images, "--truth", tfile, "--json", out, "--source", "lamps")
    assert r["n"] == sum(len(v) for v in small.values()) and set(r["per_head"]) == set(small)
    assert 0 <= r["accuracy"] <= 1 and {"read", "truth", "reason"} <= set(
        next(iter(next(iter(r["per_head"].values())).values()))
    )
    images, truth = kr
    tfile.write_text(json.dumps(dict(list(truth.items())[:2])))
    r = run("--images", images, "--truth", tfile, "--json", out, "--mirror")
    assert r["source"] == "model" and r["mirror"] is True and r["n"] >= 1
    written = tmp_path / "written.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "eval_signal.py"), "--from-yolo",
         images.parent, "--truth", written],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert json.loads(written.read_text()) == truth


def test_signal_reader_feeds_a_state_sure_between_looks(cinta) -> None:  # type: ignore[no-untyped-def]
    img, lamps, state = _read_heads(*cinta, n=1)[0]
    cfg = SignalSource.model_validate(
        {
            "source": "lamps",
            "lamps": [{"at": [lp.x, lp.y], "radius": lp.r} for lp in lamps],
            "period_s": 0.5,
        }
    )
    sig = signal_state(cfg)
    reader = SignalReader(cfg, sig)
    assert reader.look(100.0, img).state == state
    assert sig.at(100.2) == ("pending", None)  # not sure until the next look
    reader.look(100.5, img)
    assert sig.at(100.2) == (state, 100.0) and sig.source == "lamps"
    dark = np.zeros_like(img)
    assert reader.look(101.0, dark).reason == "dark: no lamp lit"
    assert sig.at(100.7) == ("unknown", None)  # it went dark some time after 100.5
    with pytest.raises(ValidationError, match="two or more"):
        SignalSource.model_validate(
            {"source": "lamps", "lamps": [{"at": [0.5, 0.5], "radius": 0.01}]}
        )
    with pytest.raises(ValueError, match="detector"):
        SignalReader(SignalSource.model_validate({"source": "model", "region": [0, 0, 1, 1]}), sig)
