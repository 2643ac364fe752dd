"""The edge worker: wires cameras -> detector -> rules -> events -> spool -> MQTT."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from edge.analytics.objects import ObjectsRule, Transition
from edge.config import CameraConfig, EdgeConfig, ObjectsAnalytic
from edge.events.messages import EventEncoder
from edge.events.snapshot import render_snapshot
from edge.inference.registry import Registry
from edge.inference.yolox import YoloxDetector
from edge.ingest.reader import CameraReader, Frame
from edge.transport.publisher import Publisher
from edge.transport.spool import Message, Spool
from edgewatch import contract

log = logging.getLogger(__name__)


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_analysed = Counter(
            "edgewatch_frames_analysed", "Frames run through analytics", ["camera"], registry=r
        )
        self.events = Counter(
            "edgewatch_event_messages", "Event messages spooled", ["camera", "type"], registry=r
        )
        self.inference_seconds = Counter(
            "edgewatch_inference_seconds", "Time spent in the detector", ["model"], registry=r
        )
        self.spool_messages = Gauge(
            "edgewatch_spool_messages", "Messages waiting in the spool", registry=r
        )
        self.spool_bytes = Gauge("edgewatch_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.spool_dropped = Gauge(
            "edgewatch_spool_dropped",
            "Messages dropped by the spool's size bound",
            ["kind"],
            registry=r,
        )
        self.camera_fps = Gauge(
            "edgewatch_camera_fps", "Decoded frames per second", ["camera"], registry=r
        )
        self.camera_reconnects = Gauge(
            "edgewatch_camera_reconnects", "Reconnects", ["camera"], registry=r
        )
        self.broker_connected = Gauge("edgewatch_broker_connected", "1 when connected", registry=r)


@dataclass
class _Analytic:
    cfg: ObjectsAnalytic
    rule: ObjectsRule
    detector: YoloxDetector
    period_s: float
    next_due: float = 0.0


@dataclass
class _Camera:
    cfg: CameraConfig
    reader: CameraReader
    analytics: list[_Analytic]
    thread: threading.Thread | None = None
    last_state: str | None = None
    last_status_sent: float = 0.0
    last_index: int = field(default=0)


class EdgeWorker:
    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        self.metrics = EdgeMetrics()
        self._stop = threading.Event()
        registry = Registry(cfg.models.dir, cfg.models.manifest)
        self._detectors: dict[str, YoloxDetector] = {}
        self.cameras: list[_Camera] = []
        for cam in cfg.cameras:
            if not cam.enabled:
                continue
            analytics = []
            for a in cam.analytics:
                det = self._detector(registry, a.model)
                analytics.append(_Analytic(a, ObjectsRule(a, det.class_names), det, 1.0 / a.fps))
            self.cameras.append(_Camera(cam, CameraReader(cam), analytics))
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
        )
        self._status_thread = threading.Thread(target=self._status_loop, name="status", daemon=True)

    def _detector(self, registry: Registry, model_id: str) -> YoloxDetector:
        if model_id not in self._detectors:
            self._detectors[model_id] = YoloxDetector(
                registry.spec(model_id),
                registry.resolve(model_id),
                providers=self.cfg.models.providers,
                threads=self.cfg.models.threads,
            )
        return self._detectors[model_id]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.cfg.metrics_port:
            start_http_server(self.cfg.metrics_port, registry=self.metrics.registry)
        self.publisher.start()
        for cam in self.cameras:
            cam.reader.start()
            cam.thread = threading.Thread(
                target=self._analyse, args=(cam,), name=f"analyse-{cam.cfg.id}", daemon=True
            )
            cam.thread.start()
        self._status_thread.start()
        log.info(
            "edge worker started",
            extra={
                "edge_id": self.cfg.edge_id,
                "site": self.cfg.site,
                "cameras": [c.cfg.id for c in self.cameras],
            },
        )

    def stop(self) -> None:
        self._stop.set()
        for cam in self.cameras:
            cam.reader.stop()
            if cam.thread:
                cam.thread.join(timeout=10)
        now = contract.utcnow()
        for cam in self.cameras:  # close open events so none stays open forever at the hub
            for a in cam.analytics:
                self._emit(cam, a, a.rule.close(now), frame=None)
            self._send_status(cam, force_state="offline")
        self._status_thread.join(timeout=5)
        self.publisher.stop()
        self.spool.close()
        log.info("edge worker stopped", extra={"edge_id": self.cfg.edge_id})

    def run_until(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    # -- per camera ------------------------------------------------------------------------

    def _analyse(self, cam: _Camera) -> None:
        if not cam.analytics:
            return
        while not self._stop.is_set():
            frame = cam.reader.next_frame(cam.last_index, timeout=1.0)
            if frame is None:
                continue
            now = time.monotonic()
            due = [a for a in cam.analytics if now >= a.next_due]
            if not due:
                wait = min(a.next_due for a in cam.analytics) - now
                self._stop.wait(max(0.0, wait))
                continue
            cam.last_index = frame.index
            try:
                self._run_analytics(cam, due, frame, now)
            except Exception:  # one bad frame must not stop the camera
                log.exception("analytics failed on a frame", extra={"camera": cam.cfg.id})

    def _run_analytics(self, cam: _Camera, due: list[_Analytic], frame: Frame, now: float) -> None:
        image = frame.bgr()
        self.metrics.frames_analysed.labels(cam.cfg.id).inc()
        for a in due:
            a.next_due = max(a.next_due + a.period_s, now)
            t0 = time.perf_counter()
            dets = a.detector.detect(image, min_score=a.cfg.min_score)
            self.metrics.inference_seconds.labels(a.cfg.model).inc(time.perf_counter() - t0)
            transitions = a.rule.update(dets, (frame.width, frame.height), frame.time)
            self._emit(cam, a, transitions, frame=image)

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
                zone=a.cfg.zone_name,
                location=cam.cfg.location,
                jpeg=jpeg,
            )
            self.publisher.send(*msgs)
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

    # -- status ----------------------------------------------------------------------------

    def _status_loop(self) -> None:
        while not self._stop.wait(1.0):
            for cam in self.cameras:
                self._send_status(cam)
            self.metrics.spool_messages.set(len(self.spool))
            self.metrics.spool_bytes.set(self.spool.bytes)
            for kind, n in self.spool.dropped.items():
                self.metrics.spool_dropped.labels(kind).set(n)

    def _send_status(self, cam: _Camera, force_state: str | None = None) -> None:
        stats = cam.reader.stats()
        state = force_state or stats.state
        now = time.monotonic()
        if (
            state == cam.last_state
            and force_state is None
            and now - cam.last_status_sent < self.cfg.status_interval_s
        ):
            return
        if state != cam.last_state:
            log.info(
                "camera state", extra={"camera": cam.cfg.id, "state": state, "error": stats.error}
            )
        cam.last_state, cam.last_status_sent = state, now
        self.metrics.camera_fps.labels(cam.cfg.id).set(stats.fps)
        self.metrics.camera_reconnects.labels(cam.cfg.id).set(stats.reconnects)
        payload = contract.CameraStatus(
            camera_id=cam.cfg.id,
            state=state,  # type: ignore[arg-type]
            fps=stats.fps,
            last_frame_time=stats.last_frame_time,
            reconnects=stats.reconnects,
            error=stats.error,
            location=cam.cfg.location,
            updated_at=contract.utcnow(),
        )
        topic = contract.camera_status_topic(self.cfg.site, self.cfg.edge_id, cam.cfg.id)
        self.publisher.send(
            Message(
                topic,
                payload.model_dump_json(exclude_none=True).encode(),
                kind="status",
                retain=True,
            )
        )
