"""Vietnamese plate formats, OCR corrections, voting, and OCR on synthetic plates."""

from __future__ import annotations

import pytest

from edge.analytics.plates import PlateReader, parse, vote
from tests.plate_scenes import plates


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("30A-123.45", "30A-123.45"),  # car, current 5-digit series
        ("30A 12345", "30A-123.45"),
        ("29A-1234", "29A-1234"),  # older 4-digit
        ("51LD-123.45", "51LD-123.45"),  # two-letter series
        ("29-B1 123.45", "29B1-123.45"),  # motorbike, read as one line
        ("3OA-I23.4S", "30A-123.45"),  # O/I/S where digits belong
        ("5IA-8O0.12", "51A-800.12"),
        ("308-123.45", "30B-123.45"),  # 8 where the series letter belongs
        ("10A-123.45", None),  # no province 10
        ("30-123.45", None),  # no series
        ("30A-12.34", None),  # too few digits
        ("HELLO WORLD", None),
        ("", None),
    ],
)
def test_formats_and_corrections(text: str, plate: str | None) -> None:
    assert parse(text) == plate


def test_two_line_layout_fixes_the_series() -> None:
    assert parse("1234", top="29-B1") == "29B1-1234"
    assert parse("123.45", top="29-B1") == "29B1-123.45"
    assert parse("29B11234") == "29B-112.34"  # one line: the current car series wins


def test_vote() -> None:
    assert vote([]) == (None, "no frame to read")
    assert vote([(None, 0.0), (None, 0.0)]) == (None, "no read matched a Vietnamese plate format")
    assert vote([("30A-123.45", 0.9), (None, 0.0), ("30A-123.45", 0.7), ("30A-128.45", 0.8)]) == (
        "30A-123.45",
        "2 of 4 reads agree",
    )
    plate, reason = vote([("30A-123.45", 0.9), ("30A-128.45", 0.85)])
    assert plate is None and reason.startswith("reads disagree")


def test_ocr_reads_synthetic_plates() -> None:
    reader = PlateReader()
    sample = plates(24, seed=21)
    hits = sum(reader.read(p.image)[0] == p.text for p in sample)
    assert hits / len(sample) >= 0.8, hits
    # voting over the frames of one vehicle: a bad frame does not win
    p = sample[0]
    blank = p.image * 0 + 128
    assert reader([p.image, blank, p.image])[0] == p.text
    assert reader([blank])[0] is None
