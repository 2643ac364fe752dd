from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from edge.inference.detections import nms
from edge.inference.detector import Detector, Placement, letterbox
from edge.inference.registry import Registry


def test_nms_is_class_aware_and_keeps_best() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0], np.int32)
    # box 1 overlaps box 0 (IoU 0.68) and is suppressed; box 2 is another class.
    assert nms(boxes, scores, classes, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, classes, 0.7).tolist() == [0, 1, 2, 3]
    assert nms(boxes[:0], scores[:0], classes[:0], 0.5).tolist() == []


def test_letterbox_top_left_with_padding() -> None:
    frame = np.full((100, 200, 3), 7, np.uint8)
    tensor, ratio = letterbox(frame, 416, 416, 114)
    assert tensor.shape == (3, 416, 416) and ratio == pytest.approx(2.08)
    assert (tensor[:, :208, :] == 7).all() and (tensor[:, 208:, :] == 114).all()


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> Detector:
    reg = Registry(model_dir)
    return Detector(reg.spec("yolox_nano"), reg.resolve("yolox_nano"))


def test_decode_synthetic_head_output(detector: Detector) -> None:
    """A hand-made raw head with one strong anchor decodes to the box it encodes."""
    raw = np.zeros((3549, 85), np.float32)
    raw[:, 4] = 0.0  # no objectness anywhere...
    # ...except anchor (gx=10, gy=5) of the stride-8 grid: index 5 * 52 + 10.
    i = 5 * 52 + 10
    raw[i, 0:2] = 0.5  # centre (10.5, 5.5) * 8 = (84, 44)
    raw[i, 2:4] = np.log(4.0)  # w = h = 4 * 8 = 32
    raw[i, 4] = 0.9
    raw[i, 5 + 2] = 1.0  # class 2 (car)
    det = detector.decode(raw, Placement(2.0), min_score=0.5)
    assert det.class_id.tolist() == [2]
    assert det.confidence[0] == pytest.approx(0.9)
    assert det.xyxy[0] == pytest.approx(np.array([68, 28, 100, 60]) / 2.0)


def test_yolox_finds_vehicles_on_real_highway_frames(detector: Detector, assets: Path) -> None:
    with av.open(str(assets / "video" / "highway_cctv_320x240.avi")) as c:
        frames = [
            f.to_ndarray(format="bgr24")
            for i, f in enumerate(c.decode(video=0))
            if i in (50, 200, 400)
        ]
    results = detector.detect_batch(frames, min_score=0.4)
    vehicle_ids = {detector.class_names.index(n) for n in ("car", "bus", "truck")}
    for det in results:
        assert len(det) >= 2
        assert vehicle_ids & set(det.class_id.tolist())
        assert (det.xyxy[:, 0] >= -5).all() and (det.xyxy[:, 2] <= 325).all()
        assert (det.confidence >= 0.4).all()
