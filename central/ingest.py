"""From MQTT messages to rows: validation, idempotent upserts, and the consumer.

``Ingestor.handle`` never raises on bad input: a malformed, oversized, wrongly
shaped or unknown message is rejected, counted (``edgewatch_hub_messages_rejected``)
and logged, and the consumer carries on. Event messages are applied by event id and
sequence number, so replays, duplicates and late arrivals never double-count. Readings
(any analytic's measurements) are keyed by their series and time, so a replay is
absorbed the same way.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from central.config import HubConfig
from central.hotspots import Hotspot
from central.incidents import IncidentManager, is_fire_kind
from central.live import LiveBus
from central.metrics import HubMetrics
from central.storage.camera_config_models import (
    MAX_FRAME_BYTES,
    MAX_PREVIEW_BYTES,
    CameraConfigRow,
    CameraFrameRow,
)
from central.storage.db import as_utc
from central.storage.models import (
    CameraRow,
    EdgeRow,
    EventRow,
    EventUpdateRow,
    EvidenceFileRow,
    HotspotReadingRow,
    ReadingRow,
    SnapshotRow,
)
from edgewatch import contract
from edgewatch.contract import (
    CameraPreview,
    CameraStatus,
    EventMessage,
    HotspotReading,
    ReadingMessage,
)
from edgewatch.mqtt import connect_properties, make_client

log = logging.getLogger(__name__)

Outcome = Literal["stored", "duplicate", "rejected"]
M = TypeVar("M", bound=BaseModel)
# Not edge data: written by the hub itself or by signal controllers (see brokerauth).
HUB_OWNED = tuple(f"{contract.ROOT}/{ns}/" for ns in ("teams", "config", "signals"))


class _RejectedAt(Exception):
    """Inside a batch: message ``index`` was rejected (the batch is rolled back)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _now() -> datetime:
    return datetime.now(UTC)


def _json(payload: bytes, limit: int) -> object:
    """The payload as strict contract JSON (see ``contract.loads``), or Rejected."""
    try:
        return contract.loads(payload, limit)
    except contract.PayloadTooLarge as exc:
        raise Rejected("too_large", str(exc)) from None
    except contract.PayloadError as exc:
        raise Rejected("malformed", str(exc)) from None


def _schema_error(exc: ValidationError) -> Rejected:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(payload)"
    return Rejected("schema", f"{where}: {first['msg']} ({exc.error_count()} errors)")


def _parse(payload: bytes, limit: int, model: type[M]) -> M:
    """The payload as strict contract JSON validated against ``model``, or Rejected."""
    doc = _json(payload, limit)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise _schema_error(exc) from None


class Ingestor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cfg: HubConfig,
        metrics: HubMetrics,
        incidents: IncidentManager | None = None,
        live: LiveBus | None = None,
        hotspots: list[Hotspot] | None = None,
    ):
        self.sessions = sessions
        self.limits = cfg.limits
        self.hotspots = {h.id: h for h in hotspots or []}
        self.review_kinds = frozenset(cfg.alerts.review_kinds)
        self.metrics = metrics
        self.incidents = incidents
        self.live = live
        self._changed: str | None = None
        # (camera, analytic) pairs each (site, edge) has sent readings for: bounds the
        # series one edge can open (limits.max_reading_series_per_edge). Loaded from the
        # table on an edge's first reading; approximate when several hubs share a database.
        self._series: dict[tuple[str, str], set[tuple[str, str]]] = {}
        # topic kind -> its handler; any other contract kind is an edge's own status
        self._handlers: dict[str, Callable[[Session, contract.Topic, bytes], Outcome]] = {
            "event": self._event,
            "snapshot": self._snapshot,
            "camera_status": self._camera,
            "hotspot": self._hotspot,
            "evidence": self._evidence,
            "reading": self._reading,
            "frame": self._frame,
            "preview": self._preview,
        }

    def handle_batch(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Several messages in one transaction: one commit (one flush of the write-ahead
        log) for the lot instead of one per message, which is what let the ingest leader
        keep up with a city's 130 statuses/s and drain a replay burst (issue 20).

        The outcome of each message is the one ``handle`` would give. A message that is
        rejected rolls the batch back: the messages before it are written again as a batch
        of their own, the rejected one goes through ``handle`` alone (counted and logged
        once), and the rest go on as a batch. Nothing is counted before its commit. Storage
        errors propagate, and the consumer retries the batch.
        """
        if len(items) <= 1:
            return [self.handle(t, p) for t, p in items]
        try:
            return self._batch(items)
        except _RejectedAt as exc:
            i = exc.index
        before = self.handle_batch(items[:i]) if i else []
        return [*before, self.handle(*items[i]), *self.handle_batch(items[i + 1 :])]

    def _batch(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        done: list[tuple[Outcome, str | None]] = []
        changed: list[str] = []
        with self.sessions.begin() as session:
            for i, (topic, payload) in enumerate(items):
                if topic.startswith(HUB_OWNED):
                    done.append(("duplicate", None))
                    continue
                parsed = contract.parse_topic(topic)
                if parsed is None:
                    raise _RejectedAt(i)
                self._changed = None
                try:
                    outcome = self._handlers.get(parsed.kind, self._edge)(session, parsed, payload)
                except Rejected:
                    raise _RejectedAt(i) from None
                done.append((outcome, parsed.kind))
                if self._changed is not None:
                    changed.append(self._changed)
        for outcome, kind in done:
            if kind is None:
                continue
            self.metrics.received.labels(kind).inc()
            if outcome == "duplicate":
                self.metrics.duplicates.inc()
            else:
                self.metrics.stored.labels(kind).inc()
        if self.incidents is not None:
            self.incidents.committed()
        if self.live is not None:
            for key in dict.fromkeys(changed):
                self.live.event_changed(key)
        return [outcome for outcome, _ in done]

    def handle(self, topic: str, payload: bytes) -> Outcome:
        if topic.startswith(HUB_OWNED):
            return "duplicate"  # the hub's own team / config topics, or signal feeds
        parsed = contract.parse_topic(topic)
        kind = parsed.kind if parsed else "unknown"
        self.metrics.received.labels(kind).inc()
        try:
            if parsed is None:
                raise Rejected("unknown_topic", "not part of the edgewatch/v1 contract")
            self._changed = None
            handler = self._handlers.get(parsed.kind, self._edge)
            with self.sessions.begin() as session:
                outcome = handler(session, parsed, payload)
            if self.incidents is not None:
                self.incidents.committed()  # deliveries are visible now: send them
            if self.live is not None and self._changed is not None:
                self.live.event_changed(self._changed)
        except Rejected as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            log.warning(
                "message rejected",
                extra={
                    "topic": topic[:200],
                    "reason": exc.reason,
                    "detail": str(exc)[:300],
                    "bytes": len(payload),
                },
            )
            return "rejected"
        if outcome == "duplicate":
            self.metrics.duplicates.inc()
        else:
            self.metrics.stored.labels(kind).inc()
        return outcome

    # -- per kind --------------------------------------------------------------------------

    def _event(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        msg = _parse(payload, self.limits.max_event_bytes, EventMessage)
        if (msg.site, msg.edge_id) != (topic.site, topic.edge_id):
            raise Rejected("schema", "site/edge_id in payload differ from the topic")
        now = _now()
        row = session.get(EventRow, str(msg.id), with_for_update=True)
        if row is not None and (row.site, row.edge_id) != (topic.site, topic.edge_id):
            # an event belongs to the edge that first sent it: no other may touch it
            raise Rejected("foreign_edge", f"event {msg.id} belongs to another edge")
        step = self.limits.max_seq_step
        if msg.seq > (row.last_seq if row is not None else 0) + step:
            raise Rejected("seq_jump", f"seq {msg.seq} jumps more than {step}")
        fields = dict(
            state="ended" if msg.type == "end" else "active",
            end_time=msg.end_time,
            frame_time=msg.frame_time,
            score=msg.score,
            box=list(msg.box) if msg.box else None,
            snapshot_sha256=msg.snapshot.sha256 if msg.snapshot else None,
            attributes=dict(msg.attributes),
            last_seq=msg.seq,
            updated_at=now,
        )
        if row is None:
            row = EventRow(
                id=str(msg.id),
                status="new",
                review="pending" if msg.kind in self.review_kinds else None,
                site=msg.site,
                edge_id=msg.edge_id,
                camera_id=msg.camera_id,
                kind=msg.kind,
                analytic=msg.analytic,
                label=msg.label,
                start_time=msg.start_time,
                zone=msg.zone,
                lat=msg.location.lat if msg.location else None,
                lon=msg.location.lon if msg.location else None,
                messages=1,
                first_received_at=now,
                **fields,
            )
            session.add(row)
            self._timeline(session, msg, now)
            if self.incidents is not None and is_fire_kind(msg.kind):
                bearing = msg.attributes.get("target_bearing_deg")
                session.flush()
                self.incidents.on_event(
                    session, row, float(bearing) if isinstance(bearing, int | float) else None
                )
            return "stored"
        if msg.seq <= row.last_seq:
            return "duplicate"  # a replay, or older than what is stored
        if row.state == "ended" and msg.type != "end":
            fields["state"] = "ended"  # an end seen earlier stays final
        for key, value in fields.items():
            if value is not None or key in ("box",):
                setattr(row, key, value)
        self._prune_snapshots(session, row)
        row.messages += 1
        self._timeline(session, msg, now)
        return "stored"

    def _timeline(self, session: Session, msg: EventMessage, now: datetime) -> None:
        session.add(
            EventUpdateRow(
                event_id=str(msg.id),
                seq=msg.seq,
                type=msg.type,
                frame_time=msg.frame_time,
                score=msg.score,
                received_at=now,
            )
        )
        self._changed = str(msg.id)

    def _snapshot(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        if len(payload) > self.limits.max_snapshot_bytes:
            raise Rejected(
                "too_large", f"{len(payload)} bytes > limit {self.limits.max_snapshot_bytes}"
            )
        if not payload.startswith(b"\xff\xd8\xff"):
            raise Rejected("malformed", "snapshot is not a JPEG")
        key = str(topic.event_id)
        event = session.get(EventRow, key)
        if event is not None and (event.site, event.edge_id) != (topic.site, topic.edge_id):
            raise Rejected("foreign_edge", f"event {key} belongs to another edge")
        digest = hashlib.sha256(payload).hexdigest()
        if session.get(SnapshotRow, (key, digest)) is not None:
            return "duplicate"
        # Kept: the one the event announced, and this newer one (its update may follow).
        # Anything else of this event is superseded. Snapshots of events that never
        # arrive expire (Limits.orphan_snapshot_ttl_s).
        keep = [digest] + ([event.snapshot_sha256] if event and event.snapshot_sha256 else [])
        session.execute(
            delete(SnapshotRow).where(
                SnapshotRow.event_id == key,
                SnapshotRow.site == topic.site,
                SnapshotRow.edge_id == topic.edge_id,
                SnapshotRow.sha256.not_in(keep),
            )
        )
        session.add(
            SnapshotRow(
                event_id=key,
                sha256=digest,
                site=topic.site,
                edge_id=topic.edge_id,
                jpeg=payload,
                received_at=_now(),
            )
        )
        if event is not None and event.snapshot_sha256 == digest:
            self._changed = key
        return "stored"

    def _prune_snapshots(self, session: Session, row: EventRow) -> None:
        """After an event announced its snapshot: drop the superseded ones of its edge."""
        if row.snapshot_sha256:
            session.execute(
                delete(SnapshotRow).where(
                    SnapshotRow.event_id == row.id,
                    SnapshotRow.sha256 != row.snapshot_sha256,
                    SnapshotRow.received_at < _now() - timedelta(seconds=60),
                )
            )

    def _evidence(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        if len(payload) > self.limits.max_evidence_bytes:
            raise Rejected(
                "too_large", f"{len(payload)} bytes > limit {self.limits.max_evidence_bytes}"
            )
        name = topic.name or ""
        ctype = contract.EVIDENCE_FILES[name]
        if ctype == "image/jpeg" and not payload.startswith(b"\xff\xd8\xff"):
            raise Rejected("malformed", f"{name} is not a JPEG")
        if ctype == "application/json":
            _json(payload, self.limits.max_evidence_bytes)
        if ctype == "video/mp4" and payload[4:8] != b"ftyp":
            raise Rejected("malformed", f"{name} is not an MP4")
        event_id = str(topic.event_id)
        event = session.get(EventRow, event_id)
        if event is not None and (event.site, event.edge_id) != (topic.site, topic.edge_id):
            raise Rejected("foreign_edge", f"event {event_id} belongs to another edge")
        key = (event_id, topic.site, topic.edge_id, name)
        digest = hashlib.sha256(payload).hexdigest()
        row = session.get(EvidenceFileRow, key)
        if row is not None:
            # evidence is written once: a different file under the same name is refused
            if row.sha256 == digest:
                return "duplicate"
            raise Rejected("conflict", f"{name} of {event_id} already stored with another hash")
        session.add(
            EvidenceFileRow(
                event_id=event_id,
                site=topic.site,
                edge_id=topic.edge_id,
                name=name,
                data=payload,
                sha256=digest,
                content_type=ctype,
                received_at=_now(),
            )
        )
        self._changed = event_id
        return "stored"

    def _camera(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        msg = _parse(payload, self.limits.max_status_bytes, CameraStatus)
        if msg.camera_id != topic.camera_id:
            raise Rejected("schema", "camera_id in payload differs from the topic")
        key = (topic.site, topic.edge_id, msg.camera_id)
        row = session.get(CameraRow, key)
        now = _now()
        if row is None:
            known = session.scalar(
                select(func.count())
                .select_from(CameraRow)
                .where(CameraRow.site == topic.site, CameraRow.edge_id == topic.edge_id)
            )
            if (known or 0) >= self.limits.max_cameras_per_edge:
                raise Rejected(
                    "too_many_cameras",
                    f"{topic.edge_id} already has {known} cameras "
                    f"(limits.max_cameras_per_edge = {self.limits.max_cameras_per_edge})",
                )
        skew = (msg.updated_at - now).total_seconds()
        self._clock(session, topic, skew, now)
        # A status timed in the future (a fast edge clock) is taken as of now: it must not
        # freeze the camera (later statuses would all look older) nor fake its freshness.
        updated_at = min(msg.updated_at, now)
        values = dict(
            state=msg.state,
            fps=msg.fps,
            last_frame_time=msg.last_frame_time,
            reconnects=msg.reconnects,
            error=msg.error,
            lat=msg.location.lat if msg.location else None,
            lon=msg.location.lon if msg.location else None,
            updated_at=updated_at,
            received_at=now,
            pipeline=msg.pipeline.model_dump(mode="json") if msg.pipeline else None,
            degraded_reason=msg.degraded_reason,
            config_version=msg.config_version,
            config_error=msg.config_error,
        )
        if row is None:
            session.add(CameraRow(site=key[0], edge_id=key[1], camera_id=key[2], **values))
            return "stored"
        stored_at = as_utc(row.updated_at)
        if stored_at is not None and updated_at < stored_at:
            return "duplicate"  # an older status arriving late
        for k, v in values.items():
            setattr(row, k, v)
        return "stored"

    def _clock(self, session: Session, topic: contract.Topic, skew: float, now: datetime) -> None:
        """Keep the edge's clock offset (its status time minus hub time) and flag it."""
        row = session.get(EdgeRow, (topic.site, topic.edge_id))
        if row is None:
            row = EdgeRow(site=topic.site, edge_id=topic.edge_id, state="online", updated_at=now)
            session.add(row)
        limit = self.limits.max_clock_skew_s
        was_off = row.clock_skew_s is not None and abs(row.clock_skew_s) > limit
        row.clock_skew_s, row.clock_checked_at = round(skew, 3), now
        off = abs(skew) > limit
        self.metrics.clock_skew.labels(topic.site, topic.edge_id).set(skew)
        if off and not was_off:
            log.warning(
                "edge clock is off",
                extra={"site": topic.site, "edge": topic.edge_id, "skew_s": round(skew, 1)},
            )

    def _hotspot(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        msg = _parse(payload, self.limits.max_status_bytes, HotspotReading)
        if msg.hotspot_id != topic.hotspot_id:
            raise Rejected("schema", "hotspot_id in payload differs from the topic")
        # The public flood feed believes only the camera the hotspot is configured with.
        spot = self.hotspots.get(msg.hotspot_id)
        if spot is None:
            raise Rejected("unknown_hotspot", f"no hotspot {msg.hotspot_id!r} is configured")
        link = spot.camera
        if link is None or (link.site, link.edge_id, link.camera_id) != (
            topic.site,
            topic.edge_id,
            msg.camera_id,
        ):
            raise Rejected(
                "wrong_camera",
                f"hotspot {spot.id} is not configured with {topic.site}/{topic.edge_id}/"
                f"{msg.camera_id}",
            )
        names = {lv.name for lv in spot.levels}
        if msg.state not in names | {"normal", "unknown"}:
            raise Rejected("schema", f"state {msg.state!r} is not a level of {spot.id}")
        if msg.level_state not in names | {"normal"}:
            raise Rejected("schema", f"level_state {msg.level_state!r} is not a level of {spot.id}")
        now = _now()
        ahead = (msg.time - now).total_seconds()
        if ahead > self.limits.max_clock_skew_s:
            raise Rejected(
                "clock_skew",
                f"reading time {ahead:.0f} s ahead of hub time "
                f"(limits.max_clock_skew_s = {self.limits.max_clock_skew_s:g})",
            )
        exists = session.execute(
            select(HotspotReadingRow.id).where(
                HotspotReadingRow.hotspot_id == msg.hotspot_id,
                HotspotReadingRow.time == msg.time,
            )
        ).first()
        if exists is not None:
            return "duplicate"  # a replay (retained copy, redelivery)
        session.add(
            HotspotReadingRow(
                hotspot_id=msg.hotspot_id,
                time=msg.time,
                site=topic.site,
                edge_id=topic.edge_id,
                camera_id=msg.camera_id,
                state=msg.state,
                level_state=msg.level_state,
                level_cm=msg.level_cm,
                reason=msg.reason,
                period_s=msg.period_s,
                doc=msg.model_dump(mode="json", exclude_none=True),
                received_at=now,
            )
        )
        return "stored"

    def _reading(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        """A generic reading, bound to the (site, edge, camera, analytic) of its topic."""
        msg = _parse(payload, self.limits.max_status_bytes, ReadingMessage)
        if msg.camera_id != topic.camera_id:
            raise Rejected("schema", "camera_id in payload differs from the topic")
        if msg.analytic != topic.name:
            raise Rejected("schema", "analytic in payload differs from the topic")
        now = _now()
        ahead = (msg.time - now).total_seconds()
        if ahead > self.limits.max_clock_skew_s:
            # a reading from the future would stand as the latest one until then
            raise Rejected(
                "clock_skew",
                f"reading time {ahead:.0f} s ahead of hub time "
                f"(limits.max_clock_skew_s = {self.limits.max_clock_skew_s:g})",
            )
        edge = (topic.site, topic.edge_id)
        series = (msg.camera_id, msg.analytic)
        known = self._known_series(session, edge)
        if series not in known:
            cap = self.limits.max_reading_series_per_edge
            if len(known) >= cap:
                raise Rejected(
                    "too_many_series",
                    f"{topic.edge_id} already sends readings for {len(known)} "
                    f"(camera, analytic) pairs (limits.max_reading_series_per_edge = {cap})",
                )
        exists = session.execute(
            select(ReadingRow.id).where(
                ReadingRow.site == topic.site,
                ReadingRow.edge_id == topic.edge_id,
                ReadingRow.camera_id == msg.camera_id,
                ReadingRow.analytic == msg.analytic,
                ReadingRow.time == msg.time,
            )
        ).first()
        if exists is not None:
            return "duplicate"  # a replay (spool after an outage, broker redelivery)
        session.add(
            ReadingRow(
                site=topic.site,
                edge_id=topic.edge_id,
                camera_id=msg.camera_id,
                analytic=msg.analytic,
                analytic_type=msg.analytic_type,
                time=msg.time,
                received_at=now,
                period_s=msg.period_s,
                state=msg.state,
                values=dict(msg.values),
                units=dict(msg.units),
            )
        )
        known.add(series)
        return "stored"

    def _frame_row(self, session: Session, topic: contract.Topic) -> CameraFrameRow:
        """The camera's frame row, for a camera the hub knows on this very edge (it reported
        a status from it, or the hub configured it there): frames of made-up cameras, each
        up to a megabyte, are not kept."""
        key = (topic.site, topic.edge_id, str(topic.camera_id))
        row = session.get(CameraFrameRow, key)
        if row is not None:
            return row
        if session.get(CameraRow, key) is None:
            cfg = session.get(CameraConfigRow, key[2])
            if cfg is None or (cfg.site, cfg.edge_id) != key[:2]:
                raise Rejected("unknown_camera", f"{key[2]} is not a camera of {key[1]}")
        row = CameraFrameRow(site=key[0], edge_id=key[1], camera_id=key[2])
        session.add(row)
        return row

    def _frame(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        """The camera's latest JPEG, for the set-up page (bound to the topic's edge)."""
        if len(payload) > MAX_FRAME_BYTES:
            raise Rejected("too_large", f"{len(payload)} bytes > limit {MAX_FRAME_BYTES}")
        if not payload.startswith(b"\xff\xd8\xff"):
            raise Rejected("malformed", "frame is not a JPEG")
        digest = hashlib.sha256(payload).hexdigest()
        row = self._frame_row(session, topic)
        if row.sha256 == digest:
            return "duplicate"  # the retained copy again
        row.jpeg, row.sha256, row.received_at = payload, digest, _now()
        return "stored"

    def _preview(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        """What the camera's analytics see now (detections, readings), beside its frame."""
        msg = _parse(payload, MAX_PREVIEW_BYTES, CameraPreview)
        if msg.camera_id != topic.camera_id:
            raise Rejected("schema", "camera_id in payload differs from the topic")
        row = self._frame_row(session, topic)
        stored = msg.model_dump(mode="json")
        if row.preview == stored:
            return "duplicate"
        row.preview, row.preview_at = stored, _now()
        return "stored"

    def _known_series(self, session: Session, edge: tuple[str, str]) -> set[tuple[str, str]]:
        known = self._series.get(edge)
        if known is None:
            rows = session.execute(
                select(ReadingRow.camera_id, ReadingRow.analytic)
                .where(ReadingRow.site == edge[0], ReadingRow.edge_id == edge[1])
                .distinct()
            )
            known = self._series[edge] = {(c, a) for c, a in rows}
        return known

    def _edge(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        state = payload.decode("utf-8", "replace").strip()
        if state not in ("online", "offline"):
            raise Rejected("schema", "edge status must be 'online' or 'offline'")
        row = session.get(EdgeRow, (topic.site, topic.edge_id))
        if row is None:
            session.add(
                EdgeRow(site=topic.site, edge_id=topic.edge_id, state=state, updated_at=_now())
            )
        else:
            row.state, row.updated_at = state, _now()
        return "stored"


class MqttConsumer:
    """Subscribes with a persistent session (clean start off) and feeds the Ingestor.

    Messages are acknowledged (PUBACK) only after they are stored or definitively
    rejected, so a hub that dies mid-write gets the message again.
    """

    def __init__(self, cfg: HubConfig, ingestor: Ingestor, metrics: HubMetrics) -> None:
        self.cfg = cfg
        self.ingestor = ingestor
        self.metrics = metrics
        self.connected = threading.Event()
        self._ever_connected = False
        self._disconnects: list[float] = []  # monotonic times of recent disconnects
        self._client = self._new_client()
        self._used = False  # whether _client was started (a fresh one is made to restart)
        # (client, message) from paho's thread to the writer; bounded in practice by the
        # broker's in-flight window (max_inflight_messages), since nothing is acked unread
        self._inbox: queue.Queue[tuple[mqtt.Client, mqtt.MQTTMessage]] = queue.Queue()
        self._writer_stop = threading.Event()

    def _new_client(self) -> mqtt.Client:
        client = make_client(self.cfg.mqtt, self.cfg.mqtt_client_id, clean_session=False)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect (again, after a ``stop``: a hub that regains the ingest leadership of a
        cluster takes over the same persistent session, see docs/cluster.md)."""
        if self._used:
            self._client = self._new_client()
        self._used = True
        self._writer_stop = threading.Event()
        threading.Thread(
            target=self._writer, args=(self._writer_stop,), name="ingest-writer", daemon=True
        ).start()
        self._client.connect_async(
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            keepalive=self.cfg.mqtt.keepalive_s,
            **connect_properties(self.cfg.mqtt, clean_session=False),  # type: ignore[arg-type]
        )
        self._client.loop_start()

    def stop(self) -> None:
        # A deliberate disconnect is no flap: cleared first, _on_disconnect counts nothing.
        # Messages received but not yet acknowledged are delivered again, to whoever holds
        # the session next.
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        self._client.disconnect()
        self._client.loop_stop()
        self._writer_stop.set()
        # What was received and not written is dropped unacknowledged: the next holder of
        # the session (this hub again, or another) gets it from the broker.
        while True:
            try:
                self._inbox.get_nowait()
            except queue.Empty:
                break

    def publish(self, topic: str, payload: bytes, timeout_s: float = 5.0) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK; raise when it does not come."""
        if not self.connected.is_set():
            raise RuntimeError("hub not connected to the broker")
        info = self._client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise RuntimeError("broker did not acknowledge the publish")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("broker refused the hub", extra={"reason": str(reason_code)})
            return
        client.subscribe(contract.SUBSCRIPTION, qos=1)
        if self._ever_connected and not flags.session_present:
            # The broker forgot our persistent session (restarted without persistence, or
            # the session expired): whatever it queued for us while we were away is gone.
            self.metrics.sessions_lost.inc()
            log.error(
                "broker lost the hub's session; messages queued while disconnected are lost",
                extra={"hint": "enable broker persistence (mosquitto: persistence true)"},
            )
        self._ever_connected = True
        self.connected.set()
        self.metrics.mqtt_connected.set(1)
        log.info("hub connected to broker", extra={"session_present": flags.session_present})

    FLAP_WINDOW_S = 300.0
    FLAP_COUNT = 3

    def flapping(self) -> bool:
        """Three or more disconnects in five minutes: someone else may hold our account."""
        cutoff = time.monotonic() - self.FLAP_WINDOW_S
        self._disconnects = [t for t in self._disconnects if t > cutoff]
        flapping = len(self._disconnects) >= self.FLAP_COUNT
        self.metrics.mqtt_flapping.set(1 if flapping else 0)
        return flapping

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        was = self.connected.is_set()
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        if was:
            self.metrics.mqtt_disconnects.inc()
            self._disconnects.append(time.monotonic())
        if self.flapping():
            log.error(
                "hub broker connection is flapping",
                extra={
                    "reason": str(reason_code),
                    "disconnects": len(self._disconnects),
                    "window_s": self.FLAP_WINDOW_S,
                    "hint": "another client may be using the hub's account (client id); "
                    "rotate its password",
                },
            )
        else:
            log.warning("hub disconnected from broker", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        # paho's network thread only queues: the writer commits in batches, and the
        # network loop keeps answering the broker (pings) while the database is slow.
        self._inbox.put((client, message))

    BATCH_MAX = 200  # at most this many messages per transaction (the broker sends <= 100)

    def _writer(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.BATCH_MAX:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            self.process(batch)

    def process(self, batch: list[tuple[mqtt.Client | None, mqtt.MQTTMessage]]) -> None:
        """Store a batch in one transaction, then acknowledge each message, in order.

        A storage error (database restarting, a racing writer) is retried with a growing
        delay; when it persists the batch is left unacknowledged, and the broker delivers
        it again to whoever holds the session next. Any other failure of the batch sends
        its messages through one at a time, so that only the message that fails is lost.
        """
        items = []
        for _client, message in batch:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = "<invalid utf-8>"
            items.append((topic, message.payload))
        delay = 0.2
        for _attempt in range(8):
            try:
                self.ingestor.handle_batch(items)
                break
            except (OperationalError, IntegrityError) as exc:
                self.metrics.db_errors.inc()
                log.error(
                    "storage error; retrying",
                    extra={"error": str(exc)[:300], "messages": len(items)},
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # never let one message stop the consumer
                if len(items) > 1:
                    log.exception("batch failed; storing its messages one by one")
                    for one in batch:
                        self.process([one])
                    return
                self.metrics.rejected.labels("internal").inc()
                log.exception("message handling failed", extra={"topic": items[0][0][:200]})
                break
        else:
            return
        for client, message in batch:
            if message.qos > 0 and client is not None:
                client.ack(message.mid, message.qos)
