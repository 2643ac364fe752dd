"""Publishing from the spool to MQTT with QoS 1, in order, deleting only on PUBACK.

A pump thread hands spooled messages to paho in sequence order, at most ``window``
unacknowledged at a time. paho keeps those in its own session and sends them again,
in order, after a reconnect; messages not yet handed over stay on disk. On PUBACK the
row is deleted. After a restart every row still on disk is sent again (the hub
deduplicates by event id, so at-least-once delivery never double-counts).

The edge status topic is retained ``online`` on connect, with an LWT ``offline``.

No exception may end a thread here. paho re-raises an exception from a callback on its
network thread, which then dies: the broker drops the client for missed keepalives and
nothing reconnects (a full disk did this through the DELETE after PUBACK). So every
callback is guarded (logged, counted), the spool's ``ack`` never raises on a storage
error (it retries the DELETE itself), the pump runs under a ``Supervisor`` (restarted
after an exception) and restarts paho's network thread with ``loop_start()`` if it ever
ends while the publisher is running (counted as a death, so ``edge health`` sees it).
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt

from edge.supervisor import Supervisor, last_error
from edge.transport.spool import Message, Row, Spool
from edgewatch import contract
from edgewatch.mqtt import MqttSettings, connect_properties, make_client

log = logging.getLogger(__name__)


# What an edge account may read (edgewatch.brokerauth): the signal feeds and its config.
READABLE = (f"{contract.ROOT}/signals/", f"{contract.ROOT}/config/")

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(fn: F) -> F:
    """A paho callback that logs and counts its exceptions instead of raising them into
    paho's network thread (which would end it)."""

    @functools.wraps(fn)
    def wrapper(self: Publisher, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception:
            self.callback_errors += 1
            log.exception(
                "MQTT callback failed; the network thread goes on",
                extra={"callback": fn.__name__, "errors": self.callback_errors},
            )
            return None

    return wrapper  # type: ignore[return-value]


class Publisher:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        spool: Spool,
        status_topic: str,
        window: int = 100,
        on_state: Callable[[bool], None] | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.status_topic = status_topic
        self.window = window
        self.on_state = on_state
        self.supervisor = supervisor or Supervisor()
        self.published = 0  # PUBACKs received
        self.connects = 0
        self.callback_errors = 0
        self._paho_thread = f"paho-mqtt-client-{client_id}"  # the name paho gives it
        self._cond = threading.Condition()
        self._connected = False
        self._stopping = False
        self._handed_seq = 0  # highest spool seq handed to paho in this process
        # paho mid -> spool seq. Guarded by its own lock, which is never held while
        # calling into paho (paho calls on_publish holding its own message mutex).
        self._map_lock = threading.Lock()
        self._inflight: dict[int, int] = {}
        self._early_acks: set[int] = set()  # PUBACKs that beat the mid's registration
        self._own_mids: set[int] = set()  # status publishes made by this class
        # After a reconnect paho re-sends what was in flight, but only after on_connect
        # returns; new messages wait until those are acknowledged, to keep the order.
        self._resync = False
        self._client = make_client(settings, client_id, clean_session=True)
        self._client.max_inflight_messages_set(window)
        self._client.max_queued_messages_set(0)
        self._client.will_set(status_topic, b"offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subs: dict[str, Callable[[str, bytes], None]] = {}
        self._sub_mids: dict[int, str] = {}
        self._pump_thread = self.supervisor.thread("mqtt-pump", self._pump)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            **connect_properties(self.settings, clean_session=True),  # type: ignore[arg-type]
        )
        self._client.loop_start()
        self._pump_thread.start()
        log.info(
            "publisher started",
            extra={
                "broker": f"{self.settings.host}:{self.settings.port}",
                "spooled": len(self.spool),
            },
        )

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Publish ``offline``, give in-flight messages a moment, and disconnect."""
        with self._cond:
            self._cond.wait_for(lambda: not self._connected or not self._pending(), drain_timeout_s)
            self._stopping = True
            self._cond.notify_all()
        self._pump_thread.join(timeout=5)  # it watches the network thread: stop it first
        if self._connected:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    def _pending(self) -> bool:
        return self._inflight_count() > 0 or len(self.spool) > 0

    # -- writing ---------------------------------------------------------------------------

    def send(self, *messages: Message) -> list[int | None]:
        """Spool messages and wake the pump: ``Spool.put``'s result (None for a message the
        spool did not take, counted there); raises ``SpoolError`` when it took nothing."""
        seqs = self.spool.put(*messages)
        with self._cond:
            self._cond.notify_all()
        return seqs

    # -- paho callbacks (network thread) ---------------------------------------------------

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """Receive ``topic`` (e.g. a signal controller's state); subscribed on every connect.
        The callback runs on the MQTT thread: keep it short."""
        self._subs[topic] = callback
        if not topic.startswith(READABLE):
            # mosquitto grants such a subscription and then silently delivers nothing
            log.error(
                "subscription outside this edge's grants: the broker will deliver nothing",
                extra={
                    "topic": topic,
                    "hint": "an edge account reads only edgewatch/v1/signals/# and its own "
                    "config; publish signal feeds there (docs/security.md)",
                },
            )
        if self.connected:
            self._subscribe(self._client, topic)

    def _subscribe(self, client, topic: str) -> None:  # type: ignore[no-untyped-def]
        _rc, mid = client.subscribe(topic, qos=1)
        if mid is not None:
            self._sub_mids[mid] = topic

    @_guarded
    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # type: ignore[no-untyped-def]
        topic = self._sub_mids.pop(mid, "?")
        if any(rc.is_failure for rc in reason_codes):
            # The broker's ACL said no: this edge's account may not read that topic.
            log.error(
                "broker refused a subscription",
                extra={
                    "topic": topic,
                    "hint": "an edge account reads only edgewatch/v1/signals/# and its own "
                    "config; put signal feeds there (docs/security.md)",
                },
            )

    @_guarded
    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        for pattern, callback in list(self._subs.items()):
            if mqtt.topic_matches_sub(pattern, message.topic):
                try:
                    callback(message.topic, message.payload)
                except Exception:
                    log.exception("subscription handler failed", extra={"topic": pattern})

    @_guarded
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("broker refused connection", extra={"reason": str(reason_code)})
            return
        self.connects += 1
        for topic in list(self._subs):
            self._subscribe(client, topic)
        info = client.publish(self.status_topic, b"online", qos=1, retain=True)
        with self._map_lock:
            self._own_mids.add(info.mid)
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        log.info(
            "connected to broker", extra={"connects": self.connects, "spooled": len(self.spool)}
        )
        if self.on_state:
            self.on_state(True)

    @_guarded
    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        with self._map_lock:
            self._resync = bool(self._inflight)
        with self._cond:
            was = self._connected
            self._connected = False
            self._cond.notify_all()
        if was:
            log.warning(
                "disconnected from broker; spooling to disk",
                extra={"reason": str(reason_code), "spooled": len(self.spool)},
            )
            if self.on_state:
                self.on_state(False)

    @_guarded
    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        with self._map_lock:
            seq = self._inflight.pop(mid, None)
            if seq is None and mid not in self._own_mids:
                self._early_acks.add(mid)
            self._own_mids.discard(mid)
            if not self._inflight:
                self._resync = False
        if seq is not None:
            self.spool.ack(seq)
            self.published += 1
        with self._cond:
            self._cond.notify_all()

    # -- pump ------------------------------------------------------------------------------

    def _pump(self) -> None:
        while True:
            self._check_network()
            self.spool.flush()  # deletes that failed (disk full), reserve, WAL size
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or (self._connected and self._room() > 0),
                    timeout=1.0,
                )
                if self._stopping:
                    return
                if not self._connected or self._room() <= 0:
                    continue
            room = self._room()
            rows = self.spool.after(self._handed_seq, room) if room > 0 else []
            if not rows:
                with self._cond:
                    self._cond.wait(timeout=0.5)
                continue
            for row in rows:
                self._hand_over(row)

    def _check_network(self) -> None:
        """Start paho's network thread again if it ended while we run. ``loop_start()``
        refuses (MQTT_ERR_INVAL) while the thread is alive, so it is the liveness check."""
        if self._stopping or self._client.loop_start() != mqtt.MQTT_ERR_SUCCESS:
            return
        error = last_error(self._paho_thread) or "thread ended"
        deaths = self.supervisor.record_death("mqtt-network", error)
        log.error(
            "MQTT network thread died; started again, reconnecting",
            extra={"error": error, "deaths": deaths, "spooled": len(self.spool)},
        )
        # It may have died half-way through a packet (a PUBACK read and never applied):
        # drop the connection, so that paho reconnects and sends again what is in flight.
        sock = self._client.socket()
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
            except OSError:
                pass

    def _room(self) -> int:
        """How many more messages may be handed to paho now (0 while re-syncing)."""
        with self._map_lock:
            n = len(self._inflight)
            if self._resync and n:
                return 0
            self._resync = False
            return self.window - n

    def _inflight_count(self) -> int:
        with self._map_lock:
            return len(self._inflight)

    def _hand_over(self, row: Row) -> None:
        try:
            info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
        except ValueError as exc:  # oversized payload or bad topic: never deliverable
            log.error(
                "message cannot be published; dropped",
                extra={"topic": row.topic, "error": str(exc)},
            )
            self.spool.ack(row.seq)
            self._handed_seq = row.seq
            return
        with self._map_lock:
            acked = info.mid in self._early_acks
            if acked:
                self._early_acks.discard(info.mid)
            else:
                self._inflight[info.mid] = row.seq
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                self._resync = True  # queued inside paho: it goes first after reconnect
        self._handed_seq = row.seq
        if acked:
            self.spool.ack(row.seq)
            self.published += 1
