"""From MQTT messages to rows: validation, idempotent upserts, and the consumer.

``Ingestor.handle`` never raises on bad input: a malformed, oversized, wrongly
shaped or unknown message is rejected, counted (``edgewatch_hub_messages_rejected``)
and logged, and the consumer carries on. Event messages are applied by event id and
sequence number, so replays, duplicates and late arrivals never double-count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Literal

import paho.mqtt.client as mqtt
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from central.config import HubConfig
from central.incidents import IncidentManager, is_fire_kind
from central.live import LiveBus
from central.metrics import HubMetrics
from central.storage.db import as_utc
from central.storage.models import (
    CameraRow,
    EdgeRow,
    EventRow,
    EventUpdateRow,
    EvidenceFileRow,
    HotspotReadingRow,
    SnapshotRow,
)
from edgewatch import contract
from edgewatch.contract import CameraStatus, EventMessage, HotspotReading
from edgewatch.mqtt import connect_properties, make_client

log = logging.getLogger(__name__)

Outcome = Literal["stored", "duplicate", "rejected"]


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _now() -> datetime:
    return datetime.now(UTC)


def _json(payload: bytes, limit: int) -> object:
    if len(payload) > limit:
        raise Rejected("too_large", f"{len(payload)} bytes > limit {limit}")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("malformed", f"not JSON: {exc}") from None


def _schema_error(exc: ValidationError) -> Rejected:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(payload)"
    return Rejected("schema", f"{where}: {first['msg']} ({exc.error_count()} errors)")


class Ingestor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cfg: HubConfig,
        metrics: HubMetrics,
        incidents: IncidentManager | None = None,
        live: LiveBus | None = None,
    ):
        self.sessions = sessions
        self.limits = cfg.limits
        self.review_kinds = frozenset(cfg.alerts.review_kinds)
        self.metrics = metrics
        self.incidents = incidents
        self.live = live
        self._changed: str | None = None

    def handle(self, topic: str, payload: bytes) -> Outcome:
        parsed = contract.parse_topic(topic)
        kind = parsed.kind if parsed else "unknown"
        self.metrics.received.labels(kind).inc()
        try:
            if parsed is None:
                raise Rejected("unknown_topic", "not part of the edgewatch/v1 contract")
            self._changed = None
            with self.sessions.begin() as session:
                if parsed.kind == "event":
                    outcome = self._event(session, parsed, payload)
                elif parsed.kind == "snapshot":
                    outcome = self._snapshot(session, parsed, payload)
                elif parsed.kind == "camera_status":
                    outcome = self._camera(session, parsed, payload)
                elif parsed.kind == "hotspot":
                    outcome = self._hotspot(session, parsed, payload)
                elif parsed.kind == "evidence":
                    outcome = self._evidence(session, parsed, payload)
                else:
                    outcome = self._edge(session, parsed, payload)
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
        doc = _json(payload, self.limits.max_event_bytes)
        try:
            msg = EventMessage.model_validate(doc)
        except ValidationError as exc:
            raise _schema_error(exc) from None
        if (msg.site, msg.edge_id) != (topic.site, topic.edge_id):
            raise Rejected("schema", "site/edge_id in payload differ from the topic")
        now = _now()
        row = session.get(EventRow, str(msg.id), with_for_update=True)
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
        digest = hashlib.sha256(payload).hexdigest()
        key = str(topic.event_id)
        row = session.get(SnapshotRow, key)
        if row is not None and row.sha256 == digest:
            return "duplicate"
        if row is None:
            session.add(SnapshotRow(event_id=key, jpeg=payload, sha256=digest, received_at=_now()))
        else:
            row.jpeg, row.sha256, row.received_at = payload, digest, _now()
        return "stored"

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
        key = (str(topic.event_id), name)
        digest = hashlib.sha256(payload).hexdigest()
        row = session.get(EvidenceFileRow, key)
        if row is not None:
            # evidence is written once: a different file under the same name is refused
            if row.sha256 == digest:
                return "duplicate"
            raise Rejected("conflict", f"{name} of {key[0]} already stored with another hash")
        session.add(
            EvidenceFileRow(
                event_id=key[0],
                name=name,
                data=payload,
                sha256=digest,
                content_type=ctype,
                received_at=_now(),
            )
        )
        self._changed = key[0]
        return "stored"

    def _camera(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        doc = _json(payload, self.limits.max_status_bytes)
        try:
            msg = CameraStatus.model_validate(doc)
        except ValidationError as exc:
            raise _schema_error(exc) from None
        if msg.camera_id != topic.camera_id:
            raise Rejected("schema", "camera_id in payload differs from the topic")
        key = (topic.site, topic.edge_id, msg.camera_id)
        row = session.get(CameraRow, key)
        values = dict(
            state=msg.state,
            fps=msg.fps,
            last_frame_time=msg.last_frame_time,
            reconnects=msg.reconnects,
            error=msg.error,
            lat=msg.location.lat if msg.location else None,
            lon=msg.location.lon if msg.location else None,
            updated_at=msg.updated_at,
            received_at=_now(),
            pipeline=msg.pipeline.model_dump(mode="json") if msg.pipeline else None,
            degraded_reason=msg.degraded_reason,
        )
        if row is None:
            session.add(CameraRow(site=key[0], edge_id=key[1], camera_id=key[2], **values))
            return "stored"
        stored_at = as_utc(row.updated_at)
        if stored_at is not None and msg.updated_at < stored_at:
            return "duplicate"  # an older status arriving late
        for k, v in values.items():
            setattr(row, k, v)
        return "stored"

    def _hotspot(self, session: Session, topic: contract.Topic, payload: bytes) -> Outcome:
        doc = _json(payload, self.limits.max_status_bytes)
        try:
            msg = HotspotReading.model_validate(doc)
        except ValidationError as exc:
            raise _schema_error(exc) from None
        if msg.hotspot_id != topic.hotspot_id:
            raise Rejected("schema", "hotspot_id in payload differs from the topic")
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
                received_at=_now(),
            )
        )
        return "stored"

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
        self._client = make_client(cfg.mqtt, cfg.mqtt_client_id, clean_session=False)
        self._client.manual_ack_set(True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            keepalive=self.cfg.mqtt.keepalive_s,
            **connect_properties(self.cfg.mqtt, clean_session=False),  # type: ignore[arg-type]
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

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

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        log.warning("hub disconnected from broker", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<invalid utf-8>"
        delay = 0.2
        for _attempt in range(8):
            try:
                self.ingestor.handle(topic, message.payload)
                break
            except (OperationalError, IntegrityError) as exc:
                # Storage trouble (database restarting, a racing writer): retry, then
                # leave the message unacknowledged so the broker delivers it again.
                self.metrics.db_errors.inc()
                log.error("storage error; retrying", extra={"error": str(exc)[:300]})
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # never let one message stop the consumer
                self.metrics.rejected.labels("internal").inc()
                log.exception("message handling failed", extra={"topic": topic[:200]})
                break
        else:
            return
        if message.qos > 0:
            client.ack(message.mid, message.qos)
