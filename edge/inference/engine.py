"""One inference engine per model per box, shared by every camera that uses the model.

Cameras call :meth:`InferenceEngine.infer` from their own threads when a sample is due; the
engine's single thread runs the model. Two mechanisms keep it fair and bounded:

- **Rate allocation** (the long run). Each stream (a camera's analytics on this model)
  registers the rate it wants and a weight (its priority). The engine measures its own speed
  (images per busy second, at the batch sizes it actually runs) and, when the wanted rates
  add up to more than 90% of it, shares that capacity weighted max-min fairly
  ("water-filling"): streams asking less than their share keep their rate, the others get
  equal shares per unit of weight. Cameras pace themselves at :meth:`allowed_rate`, so the
  model is never oversubscribed, latency stays bounded, and a camera knows (and reports)
  the rate it actually gets.
- **Start-time fair queueing** (the short run). Waiting requests are served in order of a
  virtual start tag ``max(V, F_i)``, with ``F_i`` advancing by ``1 / weight`` per request,
  so bursts are interleaved fairly too. A camera asks again only after its answer, so each
  stream has at most one request waiting: no queue can grow.

Requests are batched (up to ``max_batch``) when the model has a dynamic batch dimension.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.inference.detections import Detections

log = logging.getLogger(__name__)


class BatchDetector(Protocol):
    @property
    def dynamic_batch(self) -> bool: ...

    def detect_batch(self, frames: Sequence[Any], min_score: float) -> list[Detections]: ...


@dataclass
class _Request:
    stream: str
    image: Any  # a reader Frame or an (H, W, 3) BGR array
    min_score: float
    start_tag: float
    submitted: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Detections | None = None
    error: BaseException | None = None


@dataclass
class StreamStats:
    served: int = 0
    wait_s_total: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=256))


class EngineStopped(RuntimeError):
    pass


class InferenceEngine:
    def __init__(
        self, detector: BatchDetector, name: str, max_batch: int = 8, parallel: int = 1
    ) -> None:
        self.detector = detector
        # Runs at once: each engine thread takes the next batch in fair order. On a 2-core
        # box with a hundred cameras one run at a time left a core to the readers and the
        # other idle between runs (issue 21); onnxruntime allows concurrent runs.
        self.parallel = max(1, parallel)
        self.name = name
        self.max_batch = max_batch if detector.dynamic_batch else 1
        self._cond = threading.Condition()
        self._pending: dict[str, _Request] = {}
        self._finish: dict[str, float] = {}
        self._weights: dict[str, float] = {}
        self._vtime = 0.0
        self._stopping = False
        self.runs = 0
        self.images = 0
        self.busy_s = 0.0
        self._busy: deque[tuple[float, float, int]] = deque(maxlen=4096)  # (end, s, images)
        self.streams: dict[str, StreamStats] = {}
        self.target_utilisation = 0.9
        self._demand: dict[str, tuple[float, float]] = {}  # stream -> (rate, weight)
        self._allowed: dict[str, float] = {}
        self._rebalanced = 0.0
        self.capacity: float | None = None  # images per second at the target utilisation
        self.threads = [
            threading.Thread(target=self._loop, name=f"engine-{name}-{i}", daemon=True)
            for i in range(self.parallel)
        ]
        for t in self.threads:
            t.start()

    # -- cameras' side ---------------------------------------------------------------------

    def register(self, stream: str, rate: float, weight: float = 1.0) -> None:
        """Declare (or change) the rate a stream wants, and its weight."""
        with self._cond:
            self._demand[stream] = (rate, weight)
            self._weights[stream] = weight
            self._rebalanced = 0.0

    def unregister(self, stream: str) -> None:
        with self._cond:
            self._demand.pop(stream, None)
            self._allowed.pop(stream, None)
            self._rebalanced = 0.0

    def allowed_rate(self, stream: str) -> float:
        """The rate this stream may ask at now (its wanted rate unless the model is short)."""
        now = time.monotonic()
        with self._cond:
            if now - self._rebalanced > 0.5:
                self._rebalance(now)
            wanted = self._demand.get(stream, (float("inf"), 1.0))[0]
            return self._allowed.get(stream, wanted)

    def _rebalance(self, now: float, window_s: float = 3.0) -> None:
        self._rebalanced = now
        runs = [(s, n) for end, s, n in self._busy if now - end <= window_s]
        busy = sum(s for s, _ in runs)
        images = sum(n for _, n in runs)
        if busy <= 0.05 or images < 5:
            self.capacity = None  # not enough evidence: nobody is throttled
            self._allowed = {k: r for k, (r, _) in self._demand.items()}
            return
        # busy is summed over the engine's threads: each can run at images / busy
        self.capacity = self.target_utilisation * self.parallel * images / busy
        self._allowed = water_fill(self._demand, self.capacity)

    def infer(
        self,
        stream: str,
        image: Any,
        weight: float = 1.0,
        min_score: float = 0.25,
        timeout: float | None = None,
    ) -> Detections:
        """Detections for ``image``, served fairly among all streams; blocks until done."""
        req = self._submit(stream, image, weight, min_score)
        if not req.done.wait(timeout):
            with self._cond:
                if self._pending.get(stream) is req:
                    del self._pending[stream]
            raise TimeoutError(f"inference on {self.name!r} took longer than {timeout}s")
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _submit(self, stream: str, image: Any, weight: float, min_score: float) -> _Request:
        with self._cond:
            if self._stopping:
                raise EngineStopped(self.name)
            if stream in self._pending:
                raise RuntimeError(f"stream {stream!r} already has a request waiting")
            self._weights[stream] = weight
            start = max(self._vtime, self._finish.get(stream, 0.0))
            self._finish[stream] = start + 1.0 / weight
            req = _Request(stream, image, min_score, start, time.monotonic())
            self._pending[stream] = req
            self.streams.setdefault(stream, StreamStats())
            self._cond.notify_all()
            return req

    # -- the engine thread -----------------------------------------------------------------

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for req in self._pending.values():
                req.error = EngineStopped(self.name)
                req.done.set()
            self._pending.clear()
            self._cond.notify_all()
        for t in self.threads:
            t.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or bool(self._pending))
                if self._stopping:
                    return
                batch = sorted(self._pending.values(), key=lambda r: (r.start_tag, r.submitted))
                batch = batch[: self.max_batch]
                for req in batch:
                    del self._pending[req.stream]
                self._vtime = batch[0].start_tag
            t0 = time.monotonic()
            try:
                results = self._run(batch)
                for req, res in zip(batch, results, strict=True):
                    req.result = res
            except Exception as exc:  # a failed run fails its requests, not the engine
                log.exception("inference failed", extra={"model": self.name})
                for req in batch:
                    req.error = exc
            t1 = time.monotonic()
            with self._cond:
                self.runs += 1
                self.images += len(batch)
                self.busy_s += t1 - t0
                self._busy.append((t1, t1 - t0, len(batch)))
                for req in batch:
                    st = self.streams[req.stream]
                    st.served += 1
                    st.wait_s_total += t0 - req.submitted
                    st.recent.append(t1)
            for req in batch:
                req.done.set()

    def _run(self, batch: list[_Request]) -> list[Detections]:
        scores = {r.min_score for r in batch}
        if len(scores) == 1:
            return self.detector.detect_batch([r.image for r in batch], scores.pop())
        floor = min(scores)
        dets = self.detector.detect_batch([r.image for r in batch], floor)
        return [d[d.confidence >= r.min_score] for d, r in zip(dets, batch, strict=True)]

    # -- figures ---------------------------------------------------------------------------

    def utilisation(self, window_s: float = 10.0) -> float:
        """Share of the last ``window_s`` the model was running."""
        now = time.monotonic()
        with self._cond:
            busy = sum(s for end, s, _ in self._busy if now - end <= window_s)
        return min(1.0, busy / window_s)

    def served_rate(self, stream: str, window_s: float = 10.0) -> float:
        now = time.monotonic()
        with self._cond:
            st = self.streams.get(stream)
            if st is None:
                return 0.0
            return sum(1 for t in st.recent if now - t <= window_s) / window_s


def water_fill(demand: dict[str, tuple[float, float]], capacity: float) -> dict[str, float]:
    """Weighted max-min fair rates: ``demand`` maps stream -> (wanted rate, weight)."""
    order = sorted(demand.items(), key=lambda kv: kv[1][0] / kv[1][1])
    left = capacity
    weight_left = sum(w for _, (_, w) in order)
    out: dict[str, float] = {}
    for name, (rate, weight) in order:
        share = left * weight / weight_left if weight_left > 0 else 0.0
        out[name] = max(min(rate, share), 1e-3)  # never zero: a stream is slowed, not starved
        left -= out[name]
        weight_left -= weight
    return out
