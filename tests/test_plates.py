"""Plates: formats and their corrections, rows and two-row pairing inside one plate box,
per-character certainty, which vehicle a plate belongs to, voting across frames; OCR on
synthetic plates; and reading and the whole pipeline on real Vietnamese photos
(``vn_plates_ccby4``, the test part: the images with a row in its ``plate_texts.csv``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analytics.plates import (
    BoxReader,
    Chars,
    Line,
    Ocr,
    PlateRead,
    PlateReader,
    decide,
    group_rows,
    own_plate,
    parse,
    plate_owner,
    stacked,
    vote,
)
from tests.plate_scenes import plates

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "scripts" / "data" / "vn_plates_truth.json"


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("30A-123.45", "30A-123.45"),  # car, current 5-digit series
        ("30A 12345", "30A-123.45"),
        ("29A-1234", "29A-1234"),  # older 4-digit
        ("51LD-123.45", "51LD-123.45"),  # two-letter series
        ("3OA-I23.4S", "30A-123.45"),  # O/I/S where digits belong
        ("5IA-8O0.12", "51A-800.12"),
        ("308-123.45", "30B-123.45"),  # 8 where the series letter belongs
        ("BH-53-30", "BH-53-30"),  # military
        ("80-NG-166-71", "80-NG-166-71"),  # diplomatic
        ("80-NC-166-71", None),  # NC is no diplomatic series
        ("10A-123.45", None),  # no province 10
        ("41A-123.45", None),  # nor 41
        ("30-123.45", None),  # no series
        ("30A-12.34", None),  # too few digits
        ("30A-123-45", None),  # a dash inside a civil number
        ("30A-12.345", None),  # the dot is after the third digit
        ("30A-1.234", None),  # 4-digit numbers carry no dot
        ("30A-123.4汉", None),  # a glyph no plate has is not dropped
        ("HELLO WORLD", None),
        ("", None),
    ],
)
def test_formats_and_corrections(text: str, plate: str | None) -> None:
    assert parse(text) == plate


def test_two_row_layouts() -> None:
    assert parse("1234", top="29-B1") == "29B1-1234"
    assert parse("123.45", top="29-B1") == "29B1-123.45"
    assert parse("324.88", top="51F") == "51F-324.88"  # a car's square plate
    assert parse("52-40", top="BH") == "BH-52-40"  # military, two rows
    assert parse("166-71", top="80-NC") is None  # a dashed number is not a civil one
    assert parse("29B11234") == "29B-112.34"  # one row: the current car series


def test_fewer_corrections_win_and_ties_are_ambiguous() -> None:
    # 51A81234: 51A-812.34 as read, or 51AB-1234 with 8 taken for B: the reading as read wins
    assert parse("51A81234") == "51A-812.34"
    s = Chars.of("51A81234")
    assert s is not None
    rows = [Line(s, (0, 0, 100, 20), "51A81234")]
    assert decide(rows, 0.5).plate == "51A-812.34"


def _line(text: str, box: tuple[float, float, float, float], conf: float = 0.95) -> Line:
    chars = Chars.of(text, [conf] * len(text))
    return Line(chars, box, text, None if chars else "bad glyph")


def test_split_boxes_of_one_line_are_merged() -> None:
    rows = group_rows([_line("324.88", (60, 10, 130, 40)), _line("51F-", (0, 12, 50, 41))])
    assert len(rows) == 1 and rows[0].chars is not None and rows[0].chars.text == "51F32488"
    assert decide(rows, 0.6).plate == "51F-324.88"
    # two boxes far apart on one row are not one plate line
    far = group_rows([_line("51F-", (0, 10, 50, 40)), _line("324.88", (200, 10, 270, 40))])
    read = decide(far, 0.6)
    assert read.plate is None and "too far apart" in read.reason


def test_two_rows_pair_only_when_stacked_on_one_plate() -> None:
    top, bottom = _line("59-C2", (20, 0, 90, 30)), _line("316.01", (10, 34, 100, 66))
    assert stacked(top, bottom)
    assert decide([top, bottom], 0.6).plate == "59C2-316.01"
    # the number of another plate beside and below: not glued into a plate
    beside = _line("777.88", (160, 34, 250, 66))
    assert not stacked(top, beside)
    assert decide([top, beside], 0.6).plate is None
    # rows far apart vertically (two plates one above the other), or of unlike size
    assert not stacked(top, _line("316.01", (10, 90, 100, 122)))
    assert not stacked(top, _line("316.01", (10, 34, 100, 110)))


def test_unsure_characters_give_null_with_the_reason() -> None:
    chars = Chars.of("51F-324.88", [0.99, 0.98, 0.97, 0.0, 0.95, 0.41, 0.9, 0.0, 0.9, 0.9])
    assert chars is not None
    read = decide([Line(chars, (0, 0, 100, 20), "51F-324.88")], 0.6)
    assert read.plate is None and "character 5" in read.reason and "0.41" in read.reason
    assert read.chars[4] == pytest.approx(0.41)
    # a corrected character keeps only part of its score: O for 0 at 0.9 is below 0.6 * 0.9
    chars = Chars.of("51F-324.8O", [0.99] * 9 + [0.9])
    assert chars is not None
    assert decide([Line(chars, (0, 0, 100, 20), "")], 0.6).plate is None
    assert decide([Line(chars, (0, 0, 100, 20), "")], 0.5).plate == "51F-324.80"


def test_which_vehicle_a_plate_belongs_to() -> None:
    car = (100, 100, 300, 260)
    plate = (170, 220, 230, 240)  # low and central on the car
    assert own_plate([plate], car) == (0, "one plate on the vehicle")
    assert plate_owner(plate, [car]) == (0, "one vehicle")
    assert own_plate([(170, 105, 230, 125)], car)[0] is None  # on the roof: not its plate
    assert own_plate([plate, (120, 230, 160, 250)], car)[0] is None  # two plates: ambiguous
    behind = (80, 60, 320, 250)  # a bigger box around the same place: overlapping vehicles
    assert own_plate([plate], car, others=[behind])[0] is None
    assert plate_owner(plate, [car, behind])[0] is None
    assert plate_owner(plate, [])[1] == "no vehicle found around the plate"


def test_vote_needs_two_agreeing_reads() -> None:
    a, b = PlateRead("30A-123.45", "ok", 0.9), PlateRead("30A-128.45", "ok", 0.9)
    none = PlateRead(None, "unsure of character 6 ('2', 0.41 < 0.6)")
    assert vote([]) == (None, "no frame to read")
    assert vote([a, none, a]) == ("30A-123.45", "2 of 3 reads agree")
    # a certain read of another plate: 2 against 1 is a disagreement, 3 against 1 is not
    assert vote([a, none, a, b])[0] is None
    assert vote([a, a, a, b]) == ("30A-123.45", "3 of 4 reads agree")
    plate, reason = vote([a, none])
    assert plate is None and reason.startswith("only 1 read")
    assert vote([a, none], min_reads=1)[0] == "30A-123.45"
    plate, reason = vote([a, b])
    assert plate is None and reason.startswith("reads disagree")
    plate, reason = vote([none, none])
    assert plate is None and "unsure of character" in reason


@pytest.fixture(scope="module")
def ocr() -> Ocr:
    return Ocr(threads=2)


def test_ocr_reads_synthetic_plates_on_their_box(ocr: Ocr) -> None:
    reader = BoxReader(ocr)
    sample = plates(24, seed=21)
    reads = [reader.read(p.image, p.box).plate for p in sample]
    produced = [(r, p.text) for r, p in zip(reads, sample, strict=True) if r]
    correct = sum(r == t for r, t in produced)
    assert correct / len(sample) >= 0.75, reads
    assert correct == len(produced), [x for x in produced if x[0] != x[1]]  # never a wrong one
    # voting over the frames of one vehicle: one blank frame does not win, one frame is not two
    pr = PlateReader.__new__(PlateReader)
    pr.box_reader, pr.min_reads = reader, 2
    p = next(p for p, r in zip(sample, reads, strict=True) if r == p.text)
    blank = p.image * 0 + 128
    assert pr([p.image, blank, p.image])[0] == p.text
    assert pr([p.image, blank])[0] is None
    assert pr([blank])[0] is None


# --------------------------------------------------------------------------- real photos


def _truth(assets: Path) -> dict:
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))
    images = assets / "datasets" / "vn_plates_ccby4" / "images"
    if not images.is_dir():
        pytest.fail(f"test asset missing: {images}")
    return truth


def test_truth_file_matches_the_dataset(assets: Path) -> None:
    """The committed truth is the dataset's plate_texts.csv, converted (texts and boxes)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from eval_plates import make_truth

    d = assets / "datasets" / "vn_plates_ccby4"
    assert make_truth(d / "plate_texts.csv", d / "images") == _truth(assets)


def test_reading_real_plates_on_their_boxes(assets: Path, ocr: Ocr) -> None:
    """Reading alone on 40 real clear plates (every fifth image of the test part): the
    figures of the full run are in docs/benchmarks/eval_plates_given_boxes.json."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from eval_plates import read_given_boxes, score_image, summarise

    truth = _truth(assets)
    names = [n for n, ts in truth.items() if any(t["clear"] for t in ts)][::5][:40]
    reader = BoxReader(ocr)
    per = {}
    for n in names:
        img = cv2.imread(str(assets / "datasets" / "vn_plates_ccby4" / "images" / n))
        per[n] = score_image(truth[n], read_given_boxes(reader, img, truth[n]))
    s = summarise(per, {n: truth[n] for n in names})
    assert s["legible"] >= 38
    assert s["recall"] >= 0.8, s
    assert s["wrong"] <= 1, [(n, v["wrong"]) for n, v in per.items() if v["wrong"]]


def test_eval_script_end_to_end_on_real_photos(assets: Path, tmp_path: Path) -> None:
    """The exact interface on a few real photos: vehicles, plates, reading, scores."""
    truth = _truth(assets)
    pick = [n for n in truth if n.startswith(("CarLongPlate4", "xemay10", "quandoi"))][:8]
    small = tmp_path / "truth.json"
    small.write_text(json.dumps({n: truth[n] for n in pick}))
    out = tmp_path / "out.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "eval_plates.py"),
         "--images", str(assets / "datasets" / "vn_plates_ccby4" / "images"),
         "--truth", str(small), "--json", str(out), "--model-dir", str(assets / "models")],
        check=True, cwd=ROOT, capture_output=True, timeout=600,
    )  # fmt: skip
    r = json.loads(out.read_text())
    for key in ("legible", "correct", "wrong", "null", "precision", "recall", "per_image"):
        assert key in r
    assert set(r["per_image"]) == set(pick)
    assert r["legible"] == sum(t["clear"] for n in pick for t in truth[n])
    assert r["correct"] + r["null"] == r["legible"]
    assert r["correct"] >= r["legible"] // 2, r["null_reasons"]
    assert r["wrong"] == 0, {n: v["wrong"] for n, v in r["per_image"].items() if v["wrong"]}
    for v in r["per_image"].values():
        for read in v["reads"]:
            assert read["plate"] is not None or read["reason"]  # null always says why


def test_plate_reads_are_not_glued_from_two_real_plates(assets: Path, ocr: Ocr) -> None:
    """Two real motorbike plates side by side, the second lower by one row: the first
    plate's box gives the first plate and never its top row over the second's number."""
    truth = _truth(assets)
    bikes = [
        (n, t)
        for n, ts in truth.items()
        for t in ts
        if t["clear"] and t["kind"] == "motorbike" and n.startswith("xemayBigPlate")
    ][:2]
    assert len(bikes) == 2
    crops = []
    for n, t in bikes:
        img = cv2.imread(str(assets / "datasets" / "vn_plates_ccby4" / "images" / n))
        x1, y1, x2, y2 = (int(v) for v in t["box"])
        crops.append(cv2.resize(img[y1:y2, x1:x2], (180, 140)))
    canvas = np.full((400, 480, 3), 90, np.uint8)
    canvas[60:200, 40:220] = crops[0]
    canvas[130:270, 240:420] = crops[1]  # half a plate lower: its number beside our top row
    reader = BoxReader(ocr)
    first = reader.read(canvas, (40, 60, 220, 200))
    assert first.plate in (bikes[0][1]["plate"], None), first
    # a box that spans both plates (a bad detection) must not produce a glued plate
    both = reader.read(canvas, (40, 60, 420, 270))
    assert both.plate in (None, bikes[0][1]["plate"], bikes[1][1]["plate"]), both


def test_evidence_reader_on_real_vehicle_frames(assets: Path) -> None:
    """The evidence pipeline's reader (plate_nano shipped in models/, then the box reader)
    on three frames of one real vehicle: the plate once two reads agree, never from one."""
    from edge.analytics.plates import VehiclePlateReader, configured, reader_or_reason
    from edge.config import EvidenceSettings

    reader, why = reader_or_reason(model_dir=str(assets / "models"))
    assert isinstance(reader, VehiclePlateReader), why
    truth = _truth(assets)
    name = next(n for n in truth if n.startswith("CarLongPlate100_"))
    img = cv2.imread(str(assets / "datasets" / "vn_plates_ccby4" / "images" / name))
    frames = [img, img[:, 3:], img[3:]]  # the camera's frames move a little
    assert reader(frames) == (truth[name][0]["plate"], "3 of 3 reads agree")
    plate, reason = reader(frames[:1])
    assert plate is None and reason.startswith("only 1 read")
    strict = configured(reader, EvidenceSettings(plate_min_reads=3))
    assert strict.detector is reader.detector and strict(frames[:2])[0] is None
    # a frame without the vehicle's plate (the top of the frame): nothing is guessed
    plate, reason = reader([img[: img.shape[0] // 4]] * 3)
    assert plate is None and reason
