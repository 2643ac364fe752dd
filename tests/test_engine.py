"""The shared inference engine: fairness, overload, batching (a fake model inside the process,
whose cost is a fixed sleep), and the real YOLOX detector fed decoder frames."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge.inference.detections import Detections
from edge.inference.detector import Detector
from edge.inference.engine import InferenceEngine
from edge.inference.registry import Registry
from edge.ingest.reader import Frame


class SleepyModel:
    """Costs ``per_run + per_image * n`` seconds per run, like a model on a busy CPU."""

    def __init__(self, per_image: float, dynamic: bool = False, per_run: float = 0.0) -> None:
        self.per_image, self.per_run, self.dynamic = per_image, per_run, dynamic
        self.batches: list[int] = []

    @property
    def dynamic_batch(self) -> bool:
        return self.dynamic

    def detect_batch(self, frames: Sequence[Any], min_score: float) -> list[Detections]:
        self.batches.append(len(frames))
        time.sleep(self.per_run + self.per_image * len(frames))
        return [Detections.empty() for _ in frames]


def drive(
    engine: InferenceEngine, rates: dict[str, float], weights: dict[str, float], seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Each stream asks at its allowed rate from its own thread (again only when answered);
    returns the served rate and the worst wait per stream (the first second left out)."""
    served: Counter[str] = Counter()
    worst: dict[str, float] = dict.fromkeys(rates, 0.0)
    start = time.monotonic()
    stop = start + seconds

    def camera(name: str) -> None:  # as the edge worker's camera loop paces itself
        engine.register(name, rates[name], weights.get(name, 1.0))
        due = time.monotonic()
        while time.monotonic() < stop:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            t0 = time.monotonic()
            engine.infer(name, np.zeros((2, 2, 3), np.uint8), weight=weights.get(name, 1.0))
            if t0 > start + 1.0:  # after the engine has measured itself
                worst[name] = max(worst[name], time.monotonic() - t0)
                served[name] += 1
            period = 1.0 / engine.allowed_rate(name)
            due = max(due + period, time.monotonic())

    threads = [threading.Thread(target=camera, args=(n,)) for n in rates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {n: served[n] / (seconds - 1.0) for n in rates}, worst


def test_under_capacity_every_stream_gets_its_rate() -> None:
    engine = InferenceEngine(SleepyModel(0.01), "m")  # 100 images/s
    try:
        rates = {f"c{i}": 10.0 for i in range(4)}  # 40/s asked
        got, worst = drive(engine, rates, {}, 4.0)
    finally:
        engine.stop()
    for name, r in got.items():
        assert r == pytest.approx(10.0, rel=0.12), (name, got)
    assert max(worst.values()) < 0.1


def test_overload_is_shared_max_min_fairly_with_bounded_wait() -> None:
    engine = InferenceEngine(SleepyModel(0.01), "m")  # ~100 images/s
    try:
        rates = {f"fast{i}": 50.0 for i in range(4)} | {"slow": 5.0}  # 205/s asked
        got, worst = drive(engine, rates, {}, 5.0)
    finally:
        engine.stop()
    assert got["slow"] == pytest.approx(5.0, rel=0.15), got  # the modest stream keeps its rate
    fast = [got[f"fast{i}"] for i in range(4)]
    assert max(fast) / min(fast) < 1.25, got  # the rest is shared equally
    assert 70 < sum(got.values()) < 100  # ~90% of the model's ~100 images/s
    allowed = [engine.allowed_rate(f"fast{i}") for i in range(4)]
    assert max(allowed) < 30  # each fast camera knows it gets ~21/s of its 50/s
    # the model is never oversubscribed, so a wait stays a few model runs long
    assert max(worst.values()) < 0.1, worst


def test_priority_weights_the_share() -> None:
    engine = InferenceEngine(SleepyModel(0.01), "m")
    try:
        rates = {"a": 100.0, "b": 100.0, "urgent": 100.0}
        got, _ = drive(engine, rates, {"urgent": 2.0}, 4.0)
    finally:
        engine.stop()
    assert got["urgent"] / ((got["a"] + got["b"]) / 2) == pytest.approx(2.0, rel=0.25), got


def test_requests_are_batched_when_the_model_takes_a_batch() -> None:
    model = SleepyModel(0.002, dynamic=True, per_run=0.02)
    engine = InferenceEngine(model, "m", max_batch=4)
    try:
        rates = {f"c{i}": 30.0 for i in range(8)}
        got, _ = drive(engine, rates, {}, 3.0)
    finally:
        engine.stop()
    assert max(model.batches) == 4 and np.mean(model.batches) > 2, Counter(model.batches)
    # batching is what makes 8 x 30/s fit: one image at a time would cap at ~45/s
    assert sum(got.values()) > 100, got


def test_fixed_batch_models_run_one_image_at_a_time() -> None:
    model = SleepyModel(0.005, dynamic=False)
    engine = InferenceEngine(model, "m", max_batch=8)
    try:
        drive(engine, {f"c{i}": 50.0 for i in range(4)}, {}, 2.0)
    finally:
        engine.stop()
    assert set(model.batches) == {1}


def test_real_detector_on_decoder_frames_matches_the_array_path(
    model_dir: Path, h264_video: Path
) -> None:
    """The engine feeds the model reader Frames scaled by swscale: same objects as the
    array path (BGR frame, cv2 letterbox)."""
    reg = Registry(model_dir)
    det = Detector(reg.spec("yolox_nano"), reg.resolve("yolox_nano"), threads=1)
    engine = InferenceEngine(det, "yolox_nano")
    try:
        with av.open(str(h264_video)) as c:
            frames = c.decode(video=0)
            vf = next(f for i, f in enumerate(frames) if i == 60)
        frame = Frame(1, None, 0.0, vf.width, vf.height, vf)  # type: ignore[arg-type]
        via_frame = engine.infer("cam", frame, min_score=0.3)
        via_array = det.detect(frame.bgr(), min_score=0.3)
    finally:
        engine.stop()
    assert len(via_array) >= 2  # cars on the highway
    # Every confident object of one path is found by the other (scaling differs slightly:
    # swscale area vs cv2 bilinear, so borderline scores may cross the threshold).
    for a, b in ((via_array, via_frame), (via_frame, via_array)):
        for box in a.xyxy[a.confidence >= 0.5]:
            assert iou(box, b.xyxy).max() > 0.7, (box, b.xyxy)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


class CountingModel(SleepyModel):
    """A SleepyModel that records how many runs were in progress at once."""

    def __init__(self, per_image: float) -> None:
        super().__init__(per_image)
        self.lock = threading.Lock()
        self.running = self.most = 0

    def detect_batch(self, frames: Sequence[Any], min_score: float) -> list[Detections]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().detect_batch(frames, min_score)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("parallel", [1, 2])
def test_parallel_runs_serve_that_many_at_once_and_measure_the_capacity_of_all(
    parallel: int,
) -> None:
    """models.parallel: each engine thread takes the next request in fair order, so an
    overloaded model serves `parallel` requests at once, and the capacity the cameras are
    paced by counts every thread (one thread's figure would throttle them to half)."""
    model = CountingModel(0.02)  # 50 images/s per run at a time
    engine = InferenceEngine(model, "m", parallel=parallel)
    try:
        rates = {f"c{i}": 40.0 for i in range(6)}  # 240/s asked: overloaded either way
        got, _ = drive(engine, rates, {}, 4.0)
    finally:
        engine.stop()
    assert model.most == parallel
    assert engine.capacity is not None
    assert engine.capacity == pytest.approx(0.9 * 50 * parallel, rel=0.2)
    assert sum(got.values()) == pytest.approx(0.9 * 50 * parallel, rel=0.2), got
    fair = list(got.values())
    assert max(fair) / min(fair) < 1.3, got
