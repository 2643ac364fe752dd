"""The edge worker: wires cameras -> detector -> rules -> events -> spool -> MQTT.

Every thread runs under ``edge.supervisor``: the camera readers, the analysis threads,
the status loop and the publisher's pump are restarted after an exception, the inference
engines' threads and paho's network thread are watched and started again. A thread that
keeps dying shows on /metrics and fails ``edgewatch edge health``. Messages the spool
cannot store (a full disk) are logged and counted, never raised into these threads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from edge.analytics.fire import FireRule
from edge.analytics.flood import FloodOutput, FloodRule
from edge.analytics.objects import ObjectsRule, Transition
from edge.analytics.signal import SignalReader, signal_state
from edge.analytics.traffic import SignalState
from edge.analytics.traffic_monitor import TrafficMonitor
from edge.config import (
    CameraConfig,
    EdgeConfig,
    FireAnalytic,
    FloodAnalytic,
    ObjectsAnalytic,
    TrafficAnalytic,
)
from edge.events.evidence import PacketRing
from edge.events.messages import EventEncoder
from edge.events.snapshot import render_snapshot
from edge.inference.detections import Detections
from edge.inference.detector import Detector
from edge.inference.engine import EngineStopped, InferenceEngine
from edge.inference.registry import Registry
from edge.ingest.reader import FAULTS, CameraReader, Frame
from edge.supervisor import Supervisor
from edge.transport.publisher import Publisher
from edge.transport.spool import Message, Spool, SpoolError
from edgewatch import contract

log = logging.getLogger(__name__)

DEGRADED_SHARE = 0.8  # below this share of due samples analysed, a camera is degraded


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        cam = ["camera"]
        self.frames_analysed = Counter(
            "edgewatch_frames_analysed", "Samples run through analytics", cam, registry=r
        )
        self.events = Counter(
            "edgewatch_event_messages", "Event messages spooled", ["camera", "type"], registry=r
        )
        self.inference_seconds = Counter(
            "edgewatch_inference_seconds",
            "Time cameras spent waiting for and in the detector",
            ["model"],
            registry=r,
        )
        self.spool_messages = Gauge(
            "edgewatch_spool_messages", "Messages waiting in the spool", registry=r
        )
        self.spool_bytes = Gauge("edgewatch_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.spool_dropped = Gauge(
            "edgewatch_spool_dropped",
            "Messages evicted from the spool for a newcomer of higher or equal value",
            ["kind"],
            registry=r,
        )
        self.spool_refused = Gauge(
            "edgewatch_spool_refused",
            "Newcomers the spool's bound refused (too large, or only higher value to evict)",
            ["kind"],
            registry=r,
        )
        self.spool_failed = Gauge(
            "edgewatch_spool_failed",
            "Newcomers not stored because the disk was full or failing",
            ["kind"],
            registry=r,
        )
        self.spool_storage_errors = Gauge(
            "edgewatch_spool_storage_errors",
            "Spool writes that failed (and were retried or given up), by operation",
            ["op"],
            registry=r,
        )
        self.spool_disk_bytes = Gauge(
            "edgewatch_spool_disk_bytes",
            "Disk the spool takes: database, WAL, payload files and reserve",
            registry=r,
        )
        self.camera_fps = Gauge(
            "edgewatch_camera_fps", "Decoded frames per second", cam, registry=r
        )
        self.analysed_fps = Gauge(
            "edgewatch_camera_analysed_fps", "Samples analysed per second", cam, registry=r
        )
        self.requested_fps = Gauge(
            "edgewatch_camera_requested_fps", "Samples per second asked for", cam, registry=r
        )
        self.dropped = Counter(
            "edgewatch_camera_dropped_samples",
            "Due samples missed because analysis was busy",
            cam,
            registry=r,
        )
        self.skipped = Gauge(
            "edgewatch_camera_skipped_frames",
            "Decoded frames replaced before analysis",
            cam,
            registry=r,
        )
        self.motion_skipped = Counter(
            "edgewatch_camera_motion_skipped",
            "Samples not inferred because nothing moved in the zone",
            cam,
            registry=r,
        )
        self.lag = Histogram(
            "edgewatch_camera_lag_seconds",
            "Capture to analysis result",
            cam,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.camera_reconnects = Gauge("edgewatch_camera_reconnects", "Reconnects", cam, registry=r)
        self.faults = Gauge(
            "edgewatch_camera_stream_faults",
            "Stream faults survived, by kind",
            ["camera", "fault"],
            registry=r,
        )
        self.decoder = Gauge(
            "edgewatch_camera_decoder",
            "1 for the decoder and decode policy in use",
            ["camera", "decoder", "policy"],
            registry=r,
        )
        self.degraded = Gauge(
            "edgewatch_camera_degraded", "1 when the camera misses its rate", cam, registry=r
        )
        self.engine_utilisation = Gauge(
            "edgewatch_engine_utilisation",
            "Share of the last 10 s the model was running",
            ["model"],
            registry=r,
        )
        self.broker_connected = Gauge("edgewatch_broker_connected", "1 when connected", registry=r)
        self.heartbeat = Gauge(
            "edgewatch_worker_heartbeat_timestamp_seconds",
            "Unix time the worker's status loop last ran (health checks read it)",
            registry=r,
        )


@dataclass
class _Analytic:
    cfg: ObjectsAnalytic | FireAnalytic | TrafficAnalytic
    rule: ObjectsRule | FireRule | TrafficMonitor
    signal_next: float = 0.0  # traffic with a signal model: next look at the signal head


@dataclass
class _Group:
    """A camera's analytics that share one model: one inference per due sample."""

    model: str
    engine: InferenceEngine
    analytics: list[_Analytic]
    period_s: float
    weight: float
    min_score: float
    motion_gating: bool
    motion_threshold: float
    stream: str = ""
    next_due: float = 0.0
    last_served: float | None = None
    effective_period_s: float = 0.0
    analysed: int = 0
    dropped: int = 0
    motion_skipped: int = 0
    last_thumb: np.ndarray | None = None
    last_dets: Detections | None = None
    zone_mask: np.ndarray | None = None
    done: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=512))

    def window_s(self) -> float:
        return max(10.0, 3 * self.period_s)

    def achieved(self, now: float) -> tuple[float, float]:
        """(analysed per second, share of due samples analysed) over the recent window."""
        w = self.window_s()
        got = missed = 0
        for t, n in self.done:
            if now - t <= w:
                if n == 0:
                    got += 1
                else:
                    missed += n
        total = got + missed
        return got / w, (got / total if total else 1.0)


@dataclass
class _Flood:
    """A flood analytic on one camera: no model, one reading per period."""

    cfg: FloodAnalytic
    rule: FloodRule
    next_due: float = 0.0
    last_reading: float = 0.0  # monotonic time of the last reading sent (frame or not)


@dataclass
class _Camera:
    cfg: CameraConfig
    reader: CameraReader
    groups: list[_Group]
    floods: list[_Flood] = field(default_factory=list)
    thread: threading.Thread | None = None
    last_state: str | None = None
    last_status_sent: float = 0.0
    last_index: int = 0
    online_since: float | None = None
    decoder_labels: tuple[str, str, str] | None = None
    ring: PacketRing | None = None  # traffic cameras: the last seconds of video, for clips
    frame_wh: tuple[int, int] = (0, 0)


class EdgeWorker:
    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        self.metrics = EdgeMetrics()
        self._stop = threading.Event()
        self.supervisor = Supervisor(self._stop)
        self.metrics.registry.register(self.supervisor.collector())
        self._send_failed_logged = 0.0
        registry = Registry(cfg.models.dir, cfg.models.manifest)
        CameraReader.snapshot_slots = threading.BoundedSemaphore(cfg.snapshot_concurrency)
        self.engines: dict[str, InferenceEngine] = {}
        self.cameras: list[_Camera] = []
        self._signal_subs: list[tuple[str, SignalState]] = []
        self._signal_detectors: dict[str, Detector] = {}
        self._plate_reader: Any = None
        self._plate_reason: str | None = None
        self._registry = registry
        try:
            for cam in cfg.cameras:
                if not cam.enabled:
                    continue
                groups: dict[str, _Group] = {}
                floods: list[_Flood] = []
                for a in cam.analytics:
                    if isinstance(a, FloodAnalytic):
                        floods.append(_Flood(a, FloodRule(a), last_reading=time.monotonic()))
                        continue
                    engine = self._engine(registry, a.model)
                    names = engine.detector.class_names  # type: ignore[attr-defined]
                    rule: ObjectsRule | FireRule | TrafficMonitor
                    if isinstance(a, FireAnalytic):
                        rule = FireRule(a, names, cam.bearing_deg, cam.hfov_deg)
                    elif isinstance(a, TrafficAnalytic):
                        rule = self._traffic(cam, a, names)
                    else:
                        rule = ObjectsRule(a, names)
                    min_score = rule.min_score if isinstance(rule, FireRule) else a.min_score
                    g = groups.get(a.model)
                    if g is None:
                        g = groups[a.model] = _Group(
                            a.model,
                            engine,
                            [],
                            1.0 / a.fps,
                            a.priority,
                            min_score,
                            a.motion_gating,
                            a.motion_threshold,
                        )
                    g.analytics.append(_Analytic(a, rule))
                    g.period_s = min(g.period_s, 1.0 / a.fps)
                    g.weight = max(g.weight, a.priority)
                    g.min_score = min(g.min_score, min_score)
                    g.motion_gating = g.motion_gating and a.motion_gating
                    g.motion_threshold = min(g.motion_threshold, a.motion_threshold)
                for g in groups.values():
                    g.stream = f"{cam.id}/{g.model}"
                    g.effective_period_s = g.period_s
                    g.engine.register(g.stream, 1.0 / g.period_s, g.weight)
                periods = [g.period_s for g in groups.values()] + [f.cfg.period_s for f in floods]
                traffic = [
                    a.cfg for g in groups.values() for a in g.analytics
                    if isinstance(a.cfg, TrafficAnalytic)
                ]  # fmt: skip
                ring = None
                if traffic:
                    ring = PacketRing(
                        seconds=max(t.evidence.ring_s for t in traffic),
                        max_bytes=int(max(t.evidence.ring_mb for t in traffic) * 1024 * 1024),
                    )
                reader = CameraReader(cam, period_s=min(periods, default=1.0), ring=ring)
                # its reading loop under supervision (the thread is not started yet)
                reader._thread = self.supervisor.thread(f"reader-{cam.id}", reader._run)
                self.cameras.append(_Camera(cam, reader, list(groups.values()), floods, ring=ring))
        except Exception:
            for engine in self.engines.values():
                engine.stop()
            raise
        self.spool = Spool(
            Path(cfg.spool_dir) / "spool.sqlite3", max_bytes=int(cfg.spool_max_mb * 1024 * 1024)
        )
        self.encoder = EventEncoder(cfg.site, cfg.edge_id)
        self.publisher = Publisher(
            cfg.mqtt,
            cfg.mqtt.client_id or f"edgewatch-edge-{cfg.site}-{cfg.edge_id}",
            self.spool,
            contract.edge_status_topic(cfg.site, cfg.edge_id),
            on_state=lambda up: self.metrics.broker_connected.set(1 if up else 0),
            supervisor=self.supervisor,
        )
        for topic, signal in self._signal_subs:
            self.publisher.subscribe(topic, self._signal_feed(signal))
        self._status_thread = self.supervisor.thread("status", self._status_loop)

    def _traffic(
        self, cam: CameraConfig, a: TrafficAnalytic, names: tuple[str, ...]
    ) -> TrafficMonitor:
        signal = signal_state(a.signal)  # a camera's: sure only between two looks that agree
        monitor = TrafficMonitor(a, names, cam.id, signal)  # RuleConfigError: cannot run
        if a.signal is not None and a.signal.source == "mqtt":
            self._signal_subs.append((a.signal.topic, signal))  # type: ignore[arg-type]
        if a.signal is not None and a.signal.source == "model":
            if a.signal.model not in self._signal_detectors:
                self._signal_detectors[a.signal.model] = Detector(
                    self._registry.spec(a.signal.model),
                    self._registry.resolve(a.signal.model),
                    providers=self.cfg.models.providers,
                    threads=1,
                )
        if a.signal is not None and a.signal.source in ("model", "lamps"):
            monitor.signal_reader = SignalReader(
                a.signal, signal, self._signal_detectors.get(a.signal.model)
            )
        if a.evidence.plates and self._plate_reader is None and self._plate_reason is None:
            from edge.analytics.plates import reader_or_reason

            self._plate_reader, self._plate_reason = reader_or_reason()
            if self._plate_reason:
                log.warning("plates will not be read", extra={"reason": self._plate_reason})
        return monitor

    @staticmethod
    def _signal_feed(signal: SignalState):  # type: ignore[no-untyped-def]
        """A signal controller's MQTT messages: {"state": "red", "time": ISO 8601}."""

        def on_message(topic: str, payload: bytes) -> None:
            try:
                doc = json.loads(payload)
                state = {"yellow": "amber"}.get(doc["state"], doc["state"])
                at = doc.get("time")
                t = datetime.fromisoformat(at).timestamp() if at else time.time()
                signal.set(t, state)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("bad signal message", extra={"topic": topic, "error": str(exc)[:200]})

        return on_message

    def _look_at_signal(self, a: _Analytic, frame: Frame) -> None:
        reader = a.rule.signal_reader  # type: ignore[union-attr]
        if reader is None or frame.mono < a.signal_next:
            return
        a.signal_next = frame.mono + reader.period_s
        reader.look(frame.time.timestamp(), frame.bgr())

    def _finalize_traffic(self, cam: _Camera, a: _Analytic, force: bool = False) -> None:
        monitor = a.rule
        assert isinstance(monitor, TrafficMonitor)
        if not monitor.pending:
            return
        done = monitor.finalize(
            time.time(), cam.ring, cam.frame_wh, self._plate_reader, force=force
        )
        for transitions, pkg in done:
            if pkg is not None:
                for name in pkg.files:
                    data = (pkg.folder / name).read_bytes()
                    topic = contract.evidence_topic(
                        self.cfg.site, self.cfg.edge_id, transitions[0].event_id, name
                    )
                    self._send(Message(topic, data, kind="evidence"))
            self._emit(cam, a, transitions, frame=None)

    def _engine(self, registry: Registry, model_id: str) -> InferenceEngine:
        """One engine per model per box, shared by every camera using it."""
        if model_id not in self.engines:
            detector = Detector(
                registry.spec(model_id),
                registry.resolve(model_id),
                providers=self.cfg.models.providers,
                threads=self.cfg.models.threads,
            )
            engine = self.engines[model_id] = InferenceEngine(
                detector, model_id, max_batch=self.cfg.models.max_batch
            )
            self._watch_engine(engine)
        return self.engines[model_id]

    def _watch_engine(self, engine: InferenceEngine) -> None:
        """The engine starts its own thread; the supervisor starts it again if it ends."""
        name = f"engine-{engine.name}"

        def restart() -> None:
            engine._thread = self.supervisor.thread(name, engine._loop)
            engine._thread.start()

        self.supervisor.watch(name, lambda: engine._thread.is_alive(), restart)

    def _send(self, *msgs: Message) -> list[int | None]:
        """Spool messages; a full or failing disk is logged (at most every 10 s) and
        counted by the spool, never raised into the camera or status threads."""
        try:
            return self.publisher.send(*msgs)
        except SpoolError as exc:
            now = time.monotonic()
            if now - self._send_failed_logged >= 10.0:
                self._send_failed_logged = now
                log.error(
                    "messages not stored: the spool's disk is full or failing",
                    extra={
                        "kinds": sorted({m.kind for m in msgs}),
                        "failed": dict(self.spool.failed),
                        "error": str(exc),
                    },
                )
            return [None] * len(msgs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.cfg.metrics_port:
            start_http_server(
                self.cfg.metrics_port, addr=self.cfg.metrics_host, registry=self.metrics.registry
            )
            log.info(
                "metrics served",
                extra={"addr": self.cfg.metrics_host, "port": self.cfg.metrics_port},
            )
        self.publisher.start()
        for cam in self.cameras:
            cam.reader.start()
            cam.thread = self.supervisor.thread(f"analyse-{cam.cfg.id}", self._analyse, cam)
            cam.thread.start()
        self._status_thread.start()
        log.info(
            "edge worker started",
            extra={
                "edge_id": self.cfg.edge_id,
                "site": self.cfg.site,
                "cameras": len(self.cameras),
                "policies": {c.cfg.id: c.reader.policy for c in self.cameras[:50]},
                "engines": {m: e.max_batch for m, e in self.engines.items()},
            },
        )

    def stop(self) -> None:
        t0 = time.monotonic()
        log.info("edge worker stopping", extra={"edge_id": self.cfg.edge_id})
        self._stop.set()
        for cam in self.cameras:
            cam.reader._stop.set()
        for engine in self.engines.values():
            engine.stop()
        t_engines = time.monotonic()
        for cam in self.cameras:
            cam.reader.stop()
            if cam.thread:
                cam.thread.join(timeout=10)
        t_cameras = time.monotonic()
        now = contract.utcnow()
        for cam in self.cameras:  # close open events so none stays open forever at the hub
            for g in cam.groups:
                for a in g.analytics:
                    if isinstance(a.rule, TrafficMonitor):
                        self._finalize_traffic(cam, a, force=True)
                    self._emit(cam, a, a.rule.close(now), frame=None)
            for f in cam.floods:
                self._emit(cam, _Analytic(f.cfg, f.rule), f.rule.close(now), frame=None)  # type: ignore[arg-type]
            self._send_status(cam, force_state="offline")
        self._status_thread.join(timeout=5)
        t_status = time.monotonic()
        self.publisher.stop()
        self.spool.close()
        log.info(
            "edge worker stopped",
            extra={
                "edge_id": self.cfg.edge_id,
                "engines_s": round(t_engines - t0, 2),
                "cameras_s": round(t_cameras - t_engines, 2),
                "status_s": round(t_status - t_cameras, 2),
                "publisher_s": round(time.monotonic() - t_status, 2),
            },
        )

    def run_until(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    # -- per camera ------------------------------------------------------------------------

    def _analyse(self, cam: _Camera) -> None:
        if not cam.groups and not cam.floods:
            return
        sampled = cam.reader.policy != "all"
        while not self._stop.is_set():
            now = time.monotonic()
            wait = min([g.next_due for g in cam.groups] + [f.next_due for f in cam.floods]) - now
            if wait > 0 and not sampled:
                # Not due yet: let the reader replace frames meanwhile (latest-frame semantics).
                if self._stop.wait(wait):
                    return
            frame = cam.reader.next_frame(cam.last_index, timeout=1.0)
            if frame is None:
                continue
            cam.last_index = frame.index
            now = time.monotonic()
            # A sampling reader (keyframes, snapshot) already decodes only when a sample is
            # due: analyse what it hands over at once, or its lag grows by the misalignment
            # of two clocks. Half a reader period of tolerance for slower groups.
            # Sampled frames are scheduled on their capture time (the reader's clock).
            ref = frame.mono if sampled else now
            slack = cam.reader.period_s / 2 if sampled else 0.0
            due = [g for g in cam.groups if ref + slack >= g.next_due]
            for g in due:
                try:
                    self._run_group(cam, g, frame, ref)
                except EngineStopped:
                    return
                except Exception:  # one bad frame must not stop the camera
                    log.exception("analytics failed on a frame", extra={"camera": cam.cfg.id})
            for f in cam.floods:
                if ref + slack >= f.next_due:
                    f.next_due = max(f.next_due + f.cfg.period_s, ref + f.cfg.period_s / 2)
                    try:
                        out = f.rule.update(frame.bgr(), frame.time)
                        self._flood_out(cam, f, out, frame.bgr())
                    except Exception:
                        log.exception("flood analytic failed", extra={"camera": cam.cfg.id})
            frame = None  # do not hold a decoded frame while waiting for the next sample

    def _run_group(self, cam: _Camera, g: _Group, frame: Frame, now: float) -> None:
        # Samples the analytics asked for but did not get since the last one (overload, or
        # a camera slower than asked): counted as dropped, never queued up.
        if g.last_served is not None:
            missed = max(0, round((now - g.last_served) / g.period_s) - 1)
            if missed:
                g.dropped += missed
                g.done.append((now, missed))
                self.metrics.dropped.labels(cam.cfg.id).inc(missed)
        g.last_served = now
        # Pace at what the shared engine can give this camera (its fair share under
        # overload), keeping the phase; after a stall at most one catch-up sample.
        allowed = g.engine.allowed_rate(g.stream)
        period = max(g.period_s, 1.0 / allowed)
        g.effective_period_s = period
        if g.next_due <= 0:
            g.next_due = now + period
        else:
            g.next_due = max(g.next_due + period, now + period / 2)
        cam.reader.period_s = min(x.effective_period_s for x in cam.groups)
        dets: Detections | None = None
        if g.motion_gating and g.last_dets is not None:
            thumb = frame.gray_thumb()
            if g.last_thumb is not None and thumb.shape == g.last_thumb.shape:
                changed = np.abs(thumb.astype(np.int16) - g.last_thumb) > 12
                mask = self._zone_mask(g, thumb.shape)
                share = changed[mask].mean() if mask is not None else changed.mean()
                if share < g.motion_threshold:
                    dets = g.last_dets
                    g.motion_skipped += 1
                    self.metrics.motion_skipped.labels(cam.cfg.id).inc()
            if dets is None:
                g.last_thumb = thumb.astype(np.int16)
        if dets is None:
            t0 = time.perf_counter()
            dets = g.engine.infer(g.stream, frame, weight=g.weight, min_score=g.min_score)
            self.metrics.inference_seconds.labels(g.model).inc(time.perf_counter() - t0)
            g.last_dets = dets
        done = time.monotonic()
        g.analysed += 1
        g.done.append((done, 0))
        lag = done - frame.mono
        g.lags.append((done, lag))
        self.metrics.frames_analysed.labels(cam.cfg.id).inc()
        self.metrics.lag.labels(cam.cfg.id).observe(lag)
        image: np.ndarray | None = None
        cam.frame_wh = (frame.width, frame.height)
        for a in g.analytics:
            if isinstance(a.rule, TrafficMonitor):
                self._look_at_signal(a, frame)
            transitions = a.rule.update(dets, (frame.width, frame.height), frame.time)
            if transitions and image is None and any(t.snapshot for t in transitions):
                image = frame.bgr()
            self._emit(cam, a, transitions, frame=image)
            if isinstance(a.rule, TrafficMonitor):
                self._finalize_traffic(cam, a)

    @staticmethod
    def _zone_mask(g: _Group, shape: tuple[int, ...]) -> np.ndarray | None:
        """Union of the group's zones on the thumbnail grid; None when one is the whole frame."""
        zones = [a.rule.zone.points for a in g.analytics]
        if any(z is None for z in zones):
            return None
        if g.zone_mask is None or g.zone_mask.shape != shape[:2]:
            h, w = shape[:2]
            mask = np.zeros((h, w), np.uint8)
            for z in zones:
                pts = (np.asarray(z) * [w - 1, h - 1]).round().astype(np.int32)
                cv2.fillPoly(mask, [pts], 1)
            g.zone_mask = mask.astype(bool)
        return g.zone_mask

    def _emit(self, cam: _Camera, a: _Analytic, transitions: list[Transition], frame) -> None:  # type: ignore[no-untyped-def]
        for t in transitions:
            jpeg = None
            if t.snapshot and frame is not None:
                jpeg = render_snapshot(
                    frame, t.box_px, f"{t.label} {t.score:.2f}", self.cfg.snapshot_quality
                )
            msgs = self.encoder.encode(
                t,
                kind=a.rule.kind,
                analytic=a.cfg.name,
                camera_id=cam.cfg.id,
                zone=t.zone
                or (a.cfg.zone_name if isinstance(a.cfg, ObjectsAnalytic) else a.rule.zone),  # type: ignore[attr-defined]
                location=cam.cfg.location,
                jpeg=jpeg,
            )
            self._send(*msgs)
            self.metrics.events.labels(cam.cfg.id, t.type).inc()
            log.info(
                "event",
                extra={
                    "camera": cam.cfg.id,
                    "event_id": str(t.event_id),
                    "type": t.type,
                    "label": t.label,
                    "score": t.score,
                },
            )

    def _flood_out(self, cam: _Camera, f: _Flood, out: FloodOutput, image) -> None:  # type: ignore[no-untyped-def]
        """Publish a flood reading (retained, every one kept) and its events."""
        f.last_reading = time.monotonic()
        r = out.reading
        msg = contract.HotspotReading(
            hotspot_id=f.cfg.hotspot,
            camera_id=cam.cfg.id,
            analytic=f.cfg.name,
            setup=f.cfg.setup,
            time=r.time,
            state=r.state,
            level_state=r.level_state,
            level_cm=None if r.level_cm is None else round(r.level_cm, 1),
            raw_cm=None if r.raw_cm is None else round(r.raw_cm, 1),
            reason=r.reason,
            trend_cm_per_h=r.trend_cm_per_h,
            next_level=r.next_level,
            eta_s=r.eta_s,
            confidence=r.confidence,
            cover=r.cover,
            depth_class=r.depth_class,
            period_s=f.cfg.period_s,
            levels=[contract.LevelRef(name=lv.name, level_cm=lv.level_cm) for lv in f.rule.levels],
        )
        topic = contract.hotspot_topic(self.cfg.site, self.cfg.edge_id, f.cfg.hotspot)
        self._send(
            Message(topic, msg.model_dump_json(exclude_none=True).encode(), "reading", retain=True)
        )
        if r.state == "unknown":
            log.info(
                "flood reading unknown",
                extra={"camera": cam.cfg.id, "hotspot": f.cfg.hotspot, "reason": r.reason},
            )
        self._emit(cam, _Analytic(f.cfg, f.rule), out.transitions, frame=image)  # type: ignore[arg-type]

    def _check_floods(self, cam: _Camera) -> None:
        """A dead or silent stream still gets a reading: unknown, no_frames."""
        now = time.monotonic()
        for f in cam.floods:
            if now - f.last_reading >= 3 * f.cfg.period_s:
                self._flood_out(cam, f, f.rule.missing(contract.utcnow()), None)

    # -- status ----------------------------------------------------------------------------

    def _status_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.metrics.heartbeat.set_to_current_time()
            self.supervisor.check()  # engines' threads
            for cam in self.cameras:
                self._send_status(cam)
                if cam.floods:
                    self._check_floods(cam)
            sp, m = self.spool, self.metrics
            m.spool_messages.set(len(sp))
            m.spool_bytes.set(sp.bytes)
            m.spool_disk_bytes.set(sp.disk_bytes())
            for gauge, counts in (
                (m.spool_dropped, sp.dropped),
                (m.spool_refused, sp.refused),
                (m.spool_failed, sp.failed),
                (m.spool_storage_errors, sp.storage_errors),
            ):
                for label, n in list(counts.items()):
                    gauge.labels(label).set(n)
            for model, engine in self.engines.items():
                self.metrics.engine_utilisation.labels(model).set(engine.utilisation())

    def pipeline(self, cam: _Camera) -> tuple[contract.Pipeline, str | None]:
        """The camera's pipeline figures and, when it misses its rate, why."""
        stats = cam.reader.stats()
        now = time.monotonic()
        requested = sum(1.0 / g.period_s for g in cam.groups)
        analysed = 0.0
        reason = None
        lags: list[float] = []
        for g in cam.groups:
            fps, share = g.achieved(now)
            analysed += fps
            lags += [lag for t, lag in g.lags if now - t <= g.window_s()]
            settled = cam.online_since is not None and now - cam.online_since >= g.window_s()
            if settled and share < DEGRADED_SHARE and reason is None:
                allowed = g.engine.allowed_rate(g.stream)
                why = (
                    f"inference overloaded, fair share {allowed:.2f}/s"
                    if allowed < 1 / g.period_s * 0.99
                    else "stream delivers fewer frames than asked"
                )
                reason = (
                    f"{g.model}: analysed {share:.0%} of due samples "
                    f"({fps:.2f}/s of {1 / g.period_s:.2f}/s requested); {why}"
                )
        pipe = contract.Pipeline(
            policy=stats.policy,
            decoder=stats.decoder,
            decode_fps=stats.fps,
            requested_fps=round(requested, 4),
            analysed_fps=round(analysed, 4),
            lag_ms=round(1000 * sum(lags) / len(lags), 1) if lags else None,
            lag_max_ms=round(1000 * max(lags), 1) if lags else None,
            dropped=sum(g.dropped for g in cam.groups),
            skipped=stats.skipped,
            motion_skipped=sum(g.motion_skipped for g in cam.groups),
            gop_s=stats.gop_s,
            width=stats.width,
            height=stats.height,
            faults=stats.faults,
        )
        return pipe, reason

    def _send_status(self, cam: _Camera, force_state: str | None = None) -> None:
        stats = cam.reader.stats()
        now = time.monotonic()
        if stats.state == "online":
            cam.online_since = cam.online_since or now
        else:
            cam.online_since = None
        pipe, reason = self.pipeline(cam)
        state = force_state or ("degraded" if stats.state == "online" and reason else stats.state)
        if (
            state == cam.last_state
            and force_state is None
            and now - cam.last_status_sent < self.cfg.status_interval_s
        ):
            return
        if state != cam.last_state:
            log.info(
                "camera state",
                extra={
                    "camera": cam.cfg.id,
                    "state": state,
                    "error": stats.error,
                    "reason": reason,
                },
            )
        cam.last_state, cam.last_status_sent = state, now
        m, cid = self.metrics, cam.cfg.id
        m.camera_fps.labels(cid).set(stats.fps)
        m.analysed_fps.labels(cid).set(pipe.analysed_fps)
        m.requested_fps.labels(cid).set(pipe.requested_fps)
        m.skipped.labels(cid).set(stats.skipped)
        m.camera_reconnects.labels(cid).set(stats.reconnects)
        m.degraded.labels(cid).set(1 if state == "degraded" else 0)
        for fault in FAULTS:
            m.faults.labels(cid, fault).set(stats.faults.get(fault, 0))
        labels = (cid, stats.decoder, stats.policy)
        previous = cam.decoder_labels
        if previous and previous != labels:
            m.decoder.remove(*previous)
        m.decoder.labels(*labels).set(1)
        cam.decoder_labels = labels
        payload = contract.CameraStatus(
            camera_id=cam.cfg.id,
            state=state,  # type: ignore[arg-type]
            fps=stats.fps,
            last_frame_time=stats.last_frame_time,
            reconnects=stats.reconnects,
            error=stats.error,
            location=cam.cfg.location,
            updated_at=contract.utcnow(),
            pipeline=pipe,
            degraded_reason=reason if state == "degraded" else None,
        )
        topic = contract.camera_status_topic(self.cfg.site, self.cfg.edge_id, cam.cfg.id)
        self._send(
            Message(
                topic,
                payload.model_dump_json(exclude_none=True).encode(),
                kind="status",
                retain=True,
            )
        )
