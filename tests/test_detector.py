from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from edge.analytics.tracking import iou_matrix
from edge.inference.detections import merge_nms, nms
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


def test_merge_nms_suppresses_across_a_group_and_says_who_absorbed_whom() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.55, 0.5, 0.4], np.float32)
    group = np.array([2, 2, 0, 2])  # a car, a truck in the car's group, a person, a car
    keep, owner = merge_nms(boxes, scores, group, 0.45)
    assert keep.tolist() == [0, 2, 3]  # the truck is the car; the person is not
    assert owner.tolist() == [0, 0, 2, 3]


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


def _class_aware(model_dir: Path) -> Detector:
    """YOLOX-Nano as the edge decoded it before: NMS per class, no merge group."""
    reg = Registry(model_dir)
    return Detector(reg.spec("yolox_nano"), reg.resolve("yolox_nano"), merge=[])


def test_decode_merges_vehicle_classes_but_not_people(detector: Detector, model_dir: Path) -> None:
    raw = np.zeros((3549, 85), np.float32)
    for i, dx, cls, score in ((5 * 52 + 10, 0.5, 2, 0.6), (5 * 52 + 11, -0.45, 7, 0.55),
                              (5 * 52 + 12, -1.4, 0, 0.5)):  # fmt: skip
        raw[i, 0:2] = (dx, 0.5)  # centres (84, 44), (84.4, 44), (84.8, 44): the same place
        raw[i, 2:4] = np.log(4.0)
        raw[i, 4] = 1.0
        raw[i, 5 + cls] = score
    det = detector.decode(raw, Placement(1.0), min_score=0.3)
    names = [detector.class_names[c] for c in det.class_id]
    assert sorted(names) == ["car", "person"]  # the "truck" box is the car
    car = names.index("car")
    assert det.confidence[car] == pytest.approx(0.6)
    assert det.class_scores is not None
    assert det.class_scores[car, 7] == pytest.approx(0.55)  # its truck score, kept
    # multi-label decoding keeps every class of every box, NMS per class
    multi = detector.decode(raw, Placement(1.0), min_score=0.3, multi_label=True)
    assert sorted(detector.class_names[c] for c in multi.class_id) == ["car", "person", "truck"]
    # class-aware (no merge group): two vehicles where there is one
    assert len(_class_aware(model_dir).decode(raw, Placement(1.0), min_score=0.3)) == 3


def test_one_box_per_vehicle_on_real_highway_frames(
    detector: Detector, model_dir: Path, assets: Path
) -> None:
    """On the real clip, class-aware NMS boxes vehicles as car and truck (or bus) at once;
    merged, each vehicle is one box, and no vehicle is lost."""
    with av.open(str(assets / "video" / "highway_cctv_320x240.avi")) as c:
        frames = [f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0)) if i < 200]
    frames = frames[::10]
    plain = _class_aware(model_dir)
    names = ("bicycle", "car", "motorcycle", "bus", "truck")
    vehicles = [detector.class_names.index(n) for n in names]

    def twins(d) -> int:  # type: ignore[no-untyped-def]
        d = d[np.isin(d.class_id, vehicles) & (d.confidence >= 0.3)]
        return int(np.triu(iou_matrix(d.xyxy, d.xyxy) >= 0.8, 1).sum())

    old = plain.detect_batch(frames, 0.1)
    new = detector.detect_batch(frames, 0.1)
    assert sum(twins(d) > 0 for d in old) >= len(frames) // 4  # the problem is real
    assert sum(twins(d) for d in new) == 0
    for o, n in zip(old, new, strict=True):
        o = o[np.isin(o.class_id, vehicles) & (o.confidence >= 0.5)]
        n = n[np.isin(n.class_id, vehicles)]
        assert len(o) == 0 or (iou_matrix(o.xyxy, n.xyxy).max(axis=1) >= 0.8).all()


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
