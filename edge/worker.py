"""The edge worker: wires cameras -> detector -> analytics -> events -> spool -> MQTT.

The worker knows the analytic plugin protocol (``edge/analytics/base.py``), not the
analytics: each camera's analytics are built through the registry, grouped by the model
whose detections they need (one inference per due sample, on the box's shared fair
engine), fed ``Sample``s at their schedules, ticked about once a second (frames or not),
and what they return is published: event transitions (with a snapshot when asked),
readings, the messages a plugin makes itself, and observations routed to the camera's
analytics that consume them.

Every thread runs under ``edge.supervisor``: the camera readers, the analysis threads,
the status loop and the publisher's pump are restarted after an exception, the inference
engines' threads and paho's network thread are watched and started again. A thread that
keeps dying shows on /metrics and fails ``edgewatch edge health``. Messages the spool
cannot store (a full disk) are logged and counted, never raised into these threads. An
analytic that fails on a sample is logged and counted; the camera's others go on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from edge import hubconfig
from edge.analytics import registry as analytics_registry
from edge.analytics.base import (
    Analytic,
    AnalyticConfig,
    AnalyticPlugin,
    CameraContext,
    Observation,
    Outputs,
    Sample,
    Transition,
)
from edge.config import CameraConfig, EdgeConfig
from edge.events.evidence import PacketRing
from edge.events.messages import EventEncoder
from edge.events.snapshot import render_snapshot
from edge.inference.detections import Detections
from edge.inference.detector import Detector
from edge.inference.engine import EngineStopped, InferenceEngine
from edge.inference.registry import Registry
from edge.ingest.pool import ReaderPool, RemoteReader
from edge.ingest.reader import FAULTS, CameraReader, Frame, choose_policy
from edge.memory import pin_mmap_threshold
from edge.supervisor import Supervisor
from edge.transport.publisher import Publisher
from edge.transport.spool import Message, Spool, SpoolError
from edgewatch import contract

log = logging.getLogger(__name__)

DEGRADED_SHARE = 0.8  # below this share of due samples analysed, a camera is degraded
TICK_S = 1.0  # analytics' tick period


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
        self.analytic_errors = Counter(
            "edgewatch_analytic_errors",
            "Samples or ticks an analytic failed on (logged with the traceback)",
            ["camera", "analytic"],
            registry=r,
        )
        self.readings = Counter(
            "edgewatch_reading_messages", "Readings spooled", ["camera", "analytic"], registry=r
        )
        self.heartbeat = Gauge(
            "edgewatch_worker_heartbeat_timestamp_seconds",
            "Unix time the worker's status loop last ran (health checks read it)",
            registry=r,
        )


@dataclass
class _Run:
    """One analytic on one camera: its config, manifest and runtime object."""

    cfg: AnalyticConfig
    plugin: AnalyticPlugin
    rt: Analytic


@dataclass
class _Group:
    """A camera's analytics that share one model: one inference per due sample. An
    analytic that needs no model (flood) is a group of its own with no engine."""

    model: str | None
    engine: InferenceEngine | None
    analytics: list[_Run]
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
class _Camera:
    cfg: CameraConfig
    reader: CameraReader | RemoteReader
    groups: list[_Group]
    ctx: CameraContext
    thread: threading.Thread | None = None
    last_state: str | None = None
    last_status_sent: float = 0.0
    last_index: int = 0
    online_since: float | None = None
    decoder_labels: tuple[str, str, str] | None = None
    ring: PacketRing | None = None  # when an analytic keeps video for evidence clips
    recorder: CameraReader | None = None  # feeds the ring from the record stream
    last_tick: float = 0.0
    version: str = ""  # the configuration it runs (config_hash)
    doc: dict[str, Any] | None = None  # as the hub sent it (kept as the last good)
    config_error: str | None = None  # why the wanted configuration was refused
    subs: list[tuple[str, Any]] = field(default_factory=list)  # its analytics' topics
    stop: threading.Event = field(default_factory=threading.Event)
    next_preview: float = 0.0
    latest_readings: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def runs(self) -> list[_Run]:
        return [r for g in self.groups for r in g.analytics]


def _fan_out(callbacks: list[Any]) -> Any:
    """One MQTT callback calling each analytic's; one failing does not stop the others."""
    if len(callbacks) == 1:
        return callbacks[0]

    def on_message(topic: str, payload: bytes) -> None:
        for cb in callbacks:
            try:
                cb(topic, payload)
            except Exception:
                log.exception("subscription callback failed", extra={"topic": topic})

    return on_message


class EdgeWorker:
    def __init__(self, cfg: EdgeConfig) -> None:
        pin_mmap_threshold()  # decoded frames go back to the system (edge/memory.py)
        self.cfg = cfg
        self.metrics = EdgeMetrics()
        self._stop = threading.Event()
        self.supervisor = Supervisor(self._stop)
        self.metrics.registry.register(self.supervisor.collector())
        self._send_failed_logged = 0.0
        registry = Registry(cfg.models.dir, cfg.models.manifest)
        CameraReader.snapshot_slots = threading.BoundedSemaphore(cfg.snapshot_concurrency)
        # readers in child processes (edge/ingest/pool.py); started with the first camera
        self.reader_pool = (
            ReaderPool(cfg.reader_processes, cfg.log_level) if cfg.reader_processes else None
        )
        self.engines: dict[str, InferenceEngine] = {}
        self.cameras: list[_Camera] = []  # replaced whole (copy on write) when it changes
        self._detectors: dict[str, Detector] = {}
        self._plates: tuple[Any, str | None] | None = None
        self._registry = registry
        self._hub = cfg.config.source == "hub"
        self._state_dir = cfg.config.state_dir or Path(cfg.spool_dir) / "config"
        self._config_lock = threading.RLock()
        self._config_version = 0
        self._config_pending: bytes | None = None
        self._config_wake = threading.Event()
        try:
            if self._hub:
                # the last good configuration from the hub: the edge starts without it
                self._config_version, last = hubconfig.load(self._state_dir)
                for w in last:
                    assert w.cfg is not None
                    if not w.cfg.enabled:
                        continue
                    try:
                        self.cameras.append(self._camera(w.cfg, w.version, w.doc))
                    except Exception:
                        log.exception("last good camera cannot run", extra={"camera": w.camera_id})
                log.info(
                    "cameras from the last good hub configuration",
                    extra={"version": self._config_version, "cameras": len(self.cameras)},
                )
            else:
                for cam in cfg.cameras:
                    if cam.enabled:
                        self.cameras.append(self._camera(cam, hubconfig.version_of(cam)))
        except Exception:
            for engine in self.engines.values():
                engine.stop()
            if self.reader_pool is not None:
                self.reader_pool.stop()
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
        for topic in self._subscriptions():
            self._resubscribe(topic)
        if self._hub:
            self.publisher.subscribe(
                contract.edge_config_topic(cfg.site, cfg.edge_id), self._on_config
            )
        self._config_thread = self.supervisor.thread("config", self._config_loop)
        self._status_thread = self.supervisor.thread("status", self._status_loop)

    def _camera(
        self, cam: CameraConfig, version: str, doc: dict[str, Any] | None = None
    ) -> _Camera:
        """Build a camera's analytics through the registry and group them by model. Nothing
        runs yet (``_start_camera``): a camera that cannot be built disturbs nothing."""
        subs: list[tuple[str, Any]] = []
        ctx = CameraContext(
            camera=cam,
            site=self.cfg.site,
            edge_id=self.cfg.edge_id,
            class_names=lambda model: tuple(self._engine(model).detector.class_names),  # type: ignore[attr-defined]
            detector=self._detector,
            subscribe=lambda topic, cb: subs.append((topic, cb)),
            plate_reader=self._plate_reader,
            state_dir=Path(self.cfg.spool_dir) / "state",
        )
        groups: dict[str, _Group] = {}
        alone: list[_Group] = []
        for a in cam.analytics:
            plugin = analytics_registry.plugin_for(a)
            rt = plugin.build(a, ctx)  # a config it cannot run raises here, naming why
            sc = rt.schedule
            run = _Run(a, plugin, rt)
            if sc.model is None:
                alone.append(_Group(None, None, [run], sc.period_s, sc.priority, 0.0, False, 1.0))
                continue
            g = groups.get(sc.model)
            if g is None:
                g = groups[sc.model] = _Group(
                    sc.model,
                    self._engine(sc.model),
                    [],
                    sc.period_s,
                    sc.priority,
                    sc.min_score,
                    sc.motion_gating,
                    sc.motion_threshold,
                )
            g.analytics.append(run)
            g.period_s = min(g.period_s, sc.period_s)
            g.weight = max(g.weight, sc.priority)
            g.min_score = min(g.min_score, sc.min_score)
            g.motion_gating = g.motion_gating and sc.motion_gating
            g.motion_threshold = min(g.motion_threshold, sc.motion_threshold)
        for g in groups.values():
            g.stream = f"{cam.id}/{g.model}"
            g.effective_period_s = g.period_s
        for g in alone:
            g.stream = f"{cam.id}/{g.analytics[0].cfg.name}"
            g.effective_period_s = g.period_s
        all_groups = list(groups.values()) + alone
        schedules = [r.rt.schedule for g in all_groups for r in g.analytics]
        ring = None
        if any(sc.packets_s > 0 for sc in schedules):
            ring = PacketRing(
                seconds=max(sc.packets_s for sc in schedules),
                max_bytes=int(max(sc.packets_mb for sc in schedules) * 1024 * 1024),
            )
        ctx.ring = ring
        periods = [g.period_s for g in all_groups]
        period = min(periods, default=1.0)
        # Camera roles: the analytics read `url` (the detect stream); with a `record_url`
        # the evidence ring is fed from that stream instead, demuxed and never decoded.
        recorder = None
        if ring is not None and cam.record_url:
            rec = cam.model_copy(update={"url": cam.record_url, "record_url": None})
            recorder = CameraReader(rec, period_s=period, ring=ring, record_only=True)
            recorder._thread = self.supervisor.thread(f"recorder-{cam.id}", recorder._run)
        elif cam.record_url:
            log.info(
                "record stream not read: no analytic of this camera keeps evidence clips",
                extra={"camera": cam.id},
            )
        policy = choose_policy(cam.decode, period)
        own_ring = ring is not None and recorder is None
        reader: CameraReader | RemoteReader
        if self.reader_pool is not None and ReaderPool.takes(policy, own_ring):
            reader = self.reader_pool.reader(cam, period, policy)
        else:
            reader = CameraReader(
                cam, period_s=period, policy=policy, ring=ring if own_ring else None
            )
            # its reading loop under supervision (the thread is not started yet)
            reader._thread = self.supervisor.thread(f"reader-{cam.id}", reader._run)
        return _Camera(
            cam, reader, all_groups, ctx, ring=ring, version=version, doc=doc, subs=subs,
            recorder=recorder,
        )  # fmt: skip

    def _start_camera(self, cam: _Camera) -> None:
        for g in cam.groups:
            if g.engine is not None:
                g.engine.register(g.stream, 1.0 / g.period_s, g.weight)
        for topic, _ in cam.subs:
            self._resubscribe(topic, also=cam)
        if cam.recorder is not None:
            cam.recorder.start()
        cam.reader.start()
        cam.thread = self.supervisor.thread(f"analyse-{cam.cfg.id}", self._analyse, cam)
        cam.thread.start()

    def _stop_camera(self, cam: _Camera, final_state: str | None = "offline") -> None:
        """Stop one camera's pipeline; its open events end, as on a worker's stop."""
        cam.stop.set()
        cam.reader.stop()
        if cam.recorder is not None:
            cam.recorder.stop()
        if cam.thread is not None:
            cam.thread.join(timeout=10)
        now = contract.utcnow()
        for run in cam.runs:
            self._call(cam, run, "close", run.rt.close, now)
        for g in cam.groups:
            if g.engine is not None:
                g.engine.unregister(g.stream)
        if final_state is not None:
            self._send_status(cam, force_state=final_state)

    # -- configuration from the hub -------------------------------------------------------

    def _on_config(self, topic: str, payload: bytes) -> None:
        """On the MQTT thread: keep the newest message and wake the config thread."""
        self._config_pending = payload
        self._config_wake.set()

    def _config_loop(self) -> None:
        while not self._stop.is_set():
            if not self._config_wake.wait(1.0):
                continue
            self._config_wake.clear()
            payload, self._config_pending = self._config_pending, None
            if payload is not None:
                self.apply_config(payload)

    def apply_config(self, payload: bytes) -> hubconfig.Plan | None:
        """Apply the hub's configuration: restart only the cameras whose version changed;
        a camera whose wanted configuration is refused keeps running its last good one."""
        try:
            version, wanted = hubconfig.parse(payload, self._config_version)
        except hubconfig.ConfigRefused as exc:
            log.warning("hub configuration refused", extra={"error": str(exc)})
            return None
        with self._config_lock:
            if self._stop.is_set():  # stopping: the cameras are the worker's to close
                return None
            by_id = {c.cfg.id: c for c in self.cameras}
            p = hubconfig.plan({cid: c.version for cid, c in by_id.items()}, wanted)
            for w in p.refuse:
                self._refused(by_id.get(w.camera_id), w.camera_id, str(w.error))
            for cid in p.stop:
                self._stop_camera(by_id.pop(cid))
            for w in p.restart + p.start:
                assert w.cfg is not None
                old = by_id.get(w.camera_id)
                if not w.cfg.enabled:
                    if old is not None:
                        self._stop_camera(by_id.pop(w.camera_id))
                    continue
                try:
                    new = self._camera(w.cfg, w.version, w.doc)
                except Exception as exc:  # e.g. a class the model does not have
                    self._refused(old, w.camera_id, f"analytics: {str(exc)[:500]}")
                    continue
                if old is not None:
                    self._stop_camera(old, final_state=None)
                self._start_camera(new)
                by_id[w.camera_id] = new
            for cid in p.keep:
                by_id[cid].config_error = None
            self.cameras = list(by_id.values())
            self._config_version = version
            try:
                hubconfig.save(
                    self._state_dir,
                    version,
                    [(c.cfg.id, c.version, c.doc) for c in self.cameras if c.doc is not None],
                )
            except OSError as exc:
                log.error("last good configuration not saved", extra={"error": str(exc)})
        log.info(
            "hub configuration applied",
            extra={
                "version": version,
                "started": [w.camera_id for w in p.start],
                "restarted": [w.camera_id for w in p.restart],
                "stopped": p.stop,
                "refused": [w.camera_id for w in p.refuse],
                "kept": len(p.keep),
            },
        )
        for cam in self.cameras:
            self._send_status(cam, force_state=None, force=True)
        return p

    def _refused(self, cam: _Camera | None, camera_id: str, error: str) -> None:
        log.warning("camera configuration refused", extra={"camera": camera_id, "error": error})
        if cam is not None:
            cam.config_error = error  # it keeps running its last good configuration
            return
        payload = contract.CameraStatus(  # not running: say so, and why
            camera_id=camera_id,
            state="offline",
            fps=0.0,
            reconnects=0,
            error="not started: its configuration was refused",
            updated_at=contract.utcnow(),
            config_error=error[:1000],
        )
        topic = contract.camera_status_topic(self.cfg.site, self.cfg.edge_id, camera_id)
        body = payload.model_dump_json(exclude_none=True).encode()
        self._send(Message(topic, body, kind="status", retain=True))

    # -- what analytics may ask of the worker ---------------------------------------------

    def _subscriptions(self, also: _Camera | None = None) -> dict[str, list[Any]]:
        """Topics the running cameras' analytics subscribed to, each with every callback
        asking for it (two cameras may follow one signal controller or one watch list)."""
        out: dict[str, list[Any]] = {}
        cams = self.cameras + ([also] if also is not None and also not in self.cameras else [])
        for cam in cams:
            for topic, cb in cam.subs:
                out.setdefault(topic, []).append(cb)
        return out

    def _resubscribe(self, topic: str, also: _Camera | None = None) -> None:
        callbacks = self._subscriptions(also).get(topic, [])
        if callbacks:
            self.publisher.subscribe(topic, _fan_out(callbacks))

    def _detector(self, model_id: str) -> Detector:
        """A dedicated detector (one thread), for a model used on crops (a signal head)."""
        if model_id not in self._detectors:
            self._detectors[model_id] = Detector(
                self._registry.spec(model_id),
                self._registry.resolve(model_id),
                providers=self.cfg.models.providers,
                threads=1,
            )
        return self._detectors[model_id]

    def _plate_reader(self) -> Any:
        """The box's plate reader (built once), or None with the reason logged once."""
        if self._plates is None:
            from edge.analytics.plates import reader_or_reason

            self._plates = reader_or_reason()
            if self._plates[1]:
                log.warning("plates will not be read", extra={"reason": self._plates[1]})
        return self._plates[0]

    def _engine(self, model_id: str) -> InferenceEngine:
        """One engine per model per box, shared by every camera using it."""
        if model_id not in self.engines:
            registry = self._registry
            detector = Detector(
                registry.spec(model_id),
                registry.resolve(model_id),
                providers=self.cfg.models.providers,
                threads=self.cfg.models.threads,
            )
            engine = self.engines[model_id] = InferenceEngine(
                detector,
                model_id,
                max_batch=self.cfg.models.max_batch,
                parallel=self.cfg.models.parallel,
            )
            self._watch_engine(engine)
        return self.engines[model_id]

    def _watch_engine(self, engine: InferenceEngine) -> None:
        """The engine starts its own threads; the supervisor starts one again if it ends."""
        for i in range(len(engine.threads)):
            name = f"engine-{engine.name}-{i}" if engine.parallel > 1 else f"engine-{engine.name}"

            def restart(i: int = i, name: str = name) -> None:
                engine.threads[i] = self.supervisor.thread(name, engine._loop)
                engine.threads[i].start()

            self.supervisor.watch(name, lambda i=i: engine.threads[i].is_alive(), restart)

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
            self._start_camera(cam)
        self._config_thread.start()
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
        with self._config_lock:  # a configuration being applied finishes first
            pass
        for cam in self.cameras:
            cam.reader._stop.set()
        for engine in self.engines.values():
            engine.stop()
        t_engines = time.monotonic()
        for cam in self.cameras:
            cam.reader.stop()
            if cam.thread:
                cam.thread.join(timeout=10)
        if self.reader_pool is not None:
            self.reader_pool.stop()
        t_cameras = time.monotonic()
        now = contract.utcnow()
        for cam in self.cameras:  # close open events so none stays open forever at the hub
            for run in cam.runs:
                self._call(cam, run, "close", run.rt.close, now)
            self._send_status(cam, force_state="offline")
        self._status_thread.join(timeout=5)
        self._config_thread.join(timeout=5)
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
            # Wake twice a second rather than block: a blocking wait is woken by a signal
            # only when the kernel hands it to the main thread, and with decoder and
            # inference threads running it may hand it to any of them (SIGTERM ignored).
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()

    # -- per camera ------------------------------------------------------------------------

    def _analyse(self, cam: _Camera) -> None:
        if not cam.groups:
            return
        sampled = cam.reader.policy != "all"
        while not self._stop.is_set() and not cam.stop.is_set():
            self._tick(cam)
            now = time.monotonic()
            wait = min(g.next_due for g in cam.groups) - now
            if wait > 0 and not sampled:
                # Not due yet: let the reader replace frames meanwhile (latest-frame semantics).
                if self._stop.wait(min(wait, TICK_S)):
                    return
                if wait > TICK_S:
                    continue
            frame = cam.reader.next_frame(cam.last_index, timeout=TICK_S)
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
            frame = None  # do not hold a decoded frame while waiting for the next sample

    def _tick(self, cam: _Camera) -> None:
        """About once a second, frames or not: due evidence, a dead stream's readings."""
        mono = time.monotonic()
        if mono - cam.last_tick < TICK_S:
            return
        cam.last_tick = mono
        self._repace(cam)
        now = contract.utcnow()
        for run in cam.runs:
            self._call(cam, run, "tick", run.rt.tick, now)

    def _repace(self, cam: _Camera) -> None:
        """Once a second, follow the engine's fair share as it changes, not only at the
        next sample. A share that was small for a moment (the engine measured slow during
        a burst of connects) gave a long period; when the share grows again the next sample
        is brought forward. Without this, after the start-up of 128 fire cameras every
        camera went quiet for the rest of its long period (issue 21)."""
        for g in cam.groups:
            if g.engine is None or g.last_served is None:
                continue
            period = max(g.period_s, 1.0 / g.engine.allowed_rate(g.stream))
            if period < g.effective_period_s:
                g.next_due = min(g.next_due, g.last_served + period)
            g.effective_period_s = period
        if cam.groups:
            cam.reader.period_s = min(x.effective_period_s for x in cam.groups)

    def _call(self, cam: _Camera, run: _Run, what: str, fn: Any, arg: Any) -> None:
        """Run one hook of one analytic and publish its outputs; a failure is its own."""
        try:
            out = fn(arg)
        except EngineStopped:
            raise
        except Exception:
            self.metrics.analytic_errors.labels(cam.cfg.id, run.cfg.name).inc()
            log.exception(
                f"analytic failed on {what}",
                extra={"camera": cam.cfg.id, "analytic": run.cfg.name, "type": run.cfg.type},
            )
            return
        self._publish(cam, run, out, image=None)

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
        allowed = g.engine.allowed_rate(g.stream) if g.engine is not None else float("inf")
        period = max(g.period_s, 1.0 / allowed)
        g.effective_period_s = period
        if g.next_due <= 0:
            g.next_due = now + period
        else:
            g.next_due = max(g.next_due + period, now + period / 2)
        cam.reader.period_s = min(x.effective_period_s for x in cam.groups)
        dets: Detections | None = None
        if g.engine is not None:
            dets = self._detect(cam, g, frame)
        done = time.monotonic()
        g.analysed += 1
        g.done.append((done, 0))
        lag = done - frame.mono
        g.lags.append((done, lag))
        self.metrics.frames_analysed.labels(cam.cfg.id).inc()
        self.metrics.lag.labels(cam.cfg.id).observe(lag)
        cam.ctx.frame_wh = (frame.width, frame.height)
        sample = Sample(frame, frame.time, (frame.width, frame.height), dets, frame.mono)
        image: np.ndarray | None = None
        for run in g.analytics:
            try:
                out = run.rt.update(sample)
            except EngineStopped:
                raise
            except Exception:  # this analytic's failure; the others still run
                self.metrics.analytic_errors.labels(cam.cfg.id, run.cfg.name).inc()
                log.exception(
                    "analytic failed on a sample",
                    extra={"camera": cam.cfg.id, "analytic": run.cfg.name, "type": run.cfg.type},
                )
                continue
            if image is None and any(t.snapshot for t in out.transitions):
                image = frame.bgr()
            self._publish(cam, run, out, image=image)
        if self.cfg.frame_interval_s and time.monotonic() >= cam.next_preview:
            try:
                self._preview(cam, g, frame, dets)
            except Exception:  # the set-up page's picture must never cost a sample
                log.exception("preview failed", extra={"camera": cam.cfg.id})

    def _preview(self, cam: _Camera, g: _Group, frame: Frame, dets: Detections | None) -> None:
        """The latest frame (retained JPEG) and what the analytics see on it, for the hub's
        set-up page: the detections (fractions) and the latest readings."""
        cam.next_preview = time.monotonic() + self.cfg.frame_interval_s
        img, _ = frame.bgr_fit(960, 540)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
        if not ok:
            return
        jpeg = buf.tobytes()
        refs: list[contract.DetectionRef] = []
        if dets is not None and len(dets) and g.engine is not None:
            names = g.engine.detector.class_names  # type: ignore[attr-defined]
            keep = np.flatnonzero(dets.confidence >= max(g.min_score, 0.25))
            keep = keep[np.argsort(-dets.confidence[keep])][:300]
            scale = np.array([frame.width, frame.height] * 2, np.float32)
            boxes = np.clip(dets.xyxy[keep] / scale, 0.0, 1.0).round(4)
            for i, box in zip(keep.tolist(), boxes.tolist(), strict=True):
                refs.append(
                    contract.DetectionRef(
                        box=tuple(box),  # type: ignore[arg-type]
                        label=str(names[int(dets.class_id[i])])[:64],
                        score=round(float(dets.confidence[i]), 3),
                    )
                )
        preview = contract.CameraPreview(
            camera_id=cam.cfg.id,
            time=frame.time,
            width=frame.width,
            height=frame.height,
            sha256=hashlib.sha256(jpeg).hexdigest(),
            config_version=cam.version or None,
            detections=refs,
            readings=dict(list(cam.latest_readings.items())[:32]),
        )
        site, edge = self.cfg.site, self.cfg.edge_id
        self._send(
            Message(
                contract.camera_frame_topic(site, edge, cam.cfg.id), jpeg, "snapshot", retain=True
            ),
            Message(
                contract.camera_preview_topic(site, edge, cam.cfg.id),
                preview.model_dump_json(exclude_none=True).encode(),
                "snapshot",
                retain=True,
            ),
        )

    def _detect(self, cam: _Camera, g: _Group, frame: Frame) -> Detections:
        """The group's detections: inferred, or the last ones when nothing moved."""
        assert g.engine is not None and g.model is not None
        if g.motion_gating and g.last_dets is not None:
            thumb = frame.gray_thumb()
            if g.last_thumb is not None and thumb.shape == g.last_thumb.shape:
                changed = np.abs(thumb.astype(np.int16) - g.last_thumb) > 12
                mask = self._zone_mask(g, thumb.shape)
                share = changed[mask].mean() if mask is not None else changed.mean()
                if share < g.motion_threshold:
                    g.motion_skipped += 1
                    self.metrics.motion_skipped.labels(cam.cfg.id).inc()
                    return g.last_dets
            g.last_thumb = thumb.astype(np.int16)
        t0 = time.perf_counter()
        dets = g.engine.infer(g.stream, frame, weight=g.weight, min_score=g.min_score)
        self.metrics.inference_seconds.labels(g.model).inc(time.perf_counter() - t0)
        g.last_dets = dets
        return dets

    @staticmethod
    def _zone_mask(g: _Group, shape: tuple[int, ...]) -> np.ndarray | None:
        """Union of the group's motion zones on the thumbnail grid; None when one is the
        whole frame (an analytic without a zone, fire's land-use zones included)."""
        zones = [r.rt.schedule.motion_zone for r in g.analytics]
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

    # -- outputs -----------------------------------------------------------------------------

    def _publish(
        self, cam: _Camera, run: _Run, out: Outputs, image: np.ndarray | None, depth: int = 0
    ) -> None:
        """Send what an analytic returned: messages, readings, events; route observations."""
        if out.messages:
            self._send(*out.messages)
        for r in out.readings:
            self._reading(cam, run, r)
        if out.transitions:
            self._emit(cam, run, out.transitions, image)
        if depth == 0:  # observations of observations are not routed on (no cycles)
            for obs in out.observations:
                self._route(cam, run, obs)

    def _route(self, cam: _Camera, source: _Run, obs: Observation) -> None:
        for run in cam.runs:
            if run is source or obs.kind not in run.plugin.consumes:
                continue
            try:
                out = run.rt.observe(obs)
            except Exception:
                self.metrics.analytic_errors.labels(cam.cfg.id, run.cfg.name).inc()
                log.exception(
                    "analytic failed on an observation",
                    extra={"camera": cam.cfg.id, "analytic": run.cfg.name, "kind": obs.kind},
                )
                continue
            self._publish(cam, run, out, image=None, depth=1)

    def _reading(self, cam: _Camera, run: _Run, r: Any) -> None:
        msg = contract.ReadingMessage(
            camera_id=cam.cfg.id,
            analytic=run.cfg.name,
            analytic_type=run.cfg.type,
            time=r.time,
            period_s=r.period_s,
            state=r.state,
            values={k: (None if v is None else round(float(v), 6)) for k, v in r.values.items()},
            units=dict(r.units),
        )
        topic = contract.reading_topic(self.cfg.site, self.cfg.edge_id, cam.cfg.id, run.cfg.name)
        self._send(Message(topic, msg.model_dump_json(exclude_none=True).encode(), "reading"))
        self.metrics.readings.labels(cam.cfg.id, run.cfg.name).inc()
        cam.latest_readings[run.cfg.name] = dict(list(msg.values.items())[:64])

    def _emit(
        self, cam: _Camera, run: _Run, transitions: list[Transition], frame: np.ndarray | None
    ) -> None:
        for t in transitions:
            jpeg = None
            if t.snapshot and frame is not None:
                jpeg = render_snapshot(
                    frame, t.box_px, f"{t.label} {t.score:.2f}", self.cfg.snapshot_quality
                )
            msgs = self.encoder.encode(
                t,
                kind=t.kind or run.rt.kind,
                analytic=run.cfg.name,
                camera_id=cam.cfg.id,
                zone=t.zone or run.rt.zone,
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
                    "kind": t.kind or run.rt.kind,
                    "label": t.label,
                    "score": t.score,
                },
            )

    def _status_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.metrics.heartbeat.set_to_current_time()
            self.supervisor.check()  # engines' threads
            for cam in self.cameras:
                self._send_status(cam)
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
        # The figures are those of the groups that infer: a model-less analytic (flood,
        # once a minute) samples on its own clock and is judged by its readings.
        inferred = [g for g in cam.groups if g.engine is not None]
        requested = sum(1.0 / g.period_s for g in inferred)
        analysed = 0.0
        reason = None
        lags: list[float] = []
        for g in inferred:
            fps, share = g.achieved(now)
            analysed += fps
            lags += [lag for t, lag in g.lags if now - t <= g.window_s()]
            settled = cam.online_since is not None and now - cam.online_since >= g.window_s()
            if settled and share < DEGRADED_SHARE and reason is None:
                allowed = g.engine.allowed_rate(g.stream)  # type: ignore[union-attr]
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
            dropped=sum(g.dropped for g in inferred),
            skipped=stats.skipped,
            motion_skipped=sum(g.motion_skipped for g in inferred),
            gop_s=stats.gop_s,
            width=stats.width,
            height=stats.height,
            faults=stats.faults,
        )
        return pipe, reason

    def _send_status(
        self, cam: _Camera, force_state: str | None = None, force: bool = False
    ) -> None:
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
            and not force
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
            config_version=cam.version or None,
            config_error=cam.config_error,
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
