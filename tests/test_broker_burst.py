"""A spool replay is a burst: 5,000 QoS 1 messages sent while the hub is away arrive, all.

After an outage an edge's spool sends everything it kept, as fast as the broker takes it,
often while the hub is itself restarting. mosquitto queues QoS 1 messages for the hub's
persistent session while it is offline, but by default only 1,000 of them
(``max_queued_messages``): the rest are dropped silently, after the edge got its PUBACK
and deleted them from its spool. The broker config that ``edgewatch broker init`` writes
(``BrokerDir.mosquitto_conf``, which the ``own_broker`` fixture runs) raises that limit,
bounds the bytes instead, and persists the queue; here a real mosquitto with that config
gets the burst, is restarted in the middle (the queue must survive), and a paho client
logged in as a hub counts what reaches it. A second broker with mosquitto's defaults for
the queue shows that the test can fail: it loses most of the burst.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgewatch.mqtt import make_client
from tests.helpers import Mosquitto

N = 5000
SITE, EDGE = "burst", "burst-edge"


class Consumer:
    """A hub's persistent session (clean_session false, QoS 1), counting distinct messages."""

    def __init__(self, broker: Mosquitto, username: str) -> None:
        self.settings = broker.settings(username, "hub")
        self.username = username
        self.seen: set[int] = set()
        self.lock = threading.Lock()
        self.client: mqtt.Client | None = None

    def connect(self, subscribe: bool) -> None:
        c = make_client(self.settings, self.username, clean_session=False)
        ready = threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
            if subscribe:
                client.subscribe(f"edgewatch/v1/{SITE}/#", qos=1)
            else:
                ready.set()

        def on_message(client, userdata, m: mqtt.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
            with self.lock:
                self.seen.add(json.loads(m.payload)["n"])

        c.on_connect = on_connect
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = on_message
        c.connect(self.settings.host, self.settings.port, keepalive=30)
        c.loop_start()
        assert ready.wait(10), f"{self.username} could not connect/subscribe"
        self.client = c

    def disconnect(self) -> None:
        assert self.client is not None
        self.client.disconnect()
        self.client.loop_stop()
        self.client = None

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


def burst(broker: Mosquitto, n: int = N) -> None:
    """``n`` QoS 1 messages from an edge, each acknowledged by the broker (as the spool
    waits for a PUBACK before it deletes a message)."""
    pub = broker.client(EDGE, "edge", site=SITE)
    try:
        infos = []
        for i in range(n):
            payload = json.dumps({"n": i, "pad": "x" * 200}).encode()
            infos.append(pub.publish(f"edgewatch/v1/{SITE}/{EDGE}/events/{i}", payload, qos=1))
        deadline = time.monotonic() + 60
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        assert all(info.is_published() for info in infos), "the broker did not ack the burst"
    finally:
        pub.disconnect()
        pub.loop_stop()


def settle(consumer: Consumer, want: int, timeout: float = 60) -> int:
    """The count once it reached ``want`` or stopped growing for 3 s."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        got = consumer.count()
        if got >= want:
            return got
        if got != last:
            last, since = got, time.monotonic()
        elif time.monotonic() - since > 3:
            return got
        time.sleep(0.2)
    return consumer.count()


def test_project_broker_config_has_the_burst_settings(own_broker: Mosquitto) -> None:
    text = own_broker.conf.read_text()
    for line in ("max_queued_messages 100000", "max_queued_bytes 536870912", "persistence true"):
        assert line in text.splitlines(), line


def test_burst_to_an_offline_hub_arrives_complete(own_broker: Mosquitto) -> None:
    hub = Consumer(own_broker, f"burst-hub-{uuid.uuid4().hex[:6]}")
    hub.connect(subscribe=True)
    hub.disconnect()  # the hub goes away; its session and subscription stay
    burst(own_broker)
    own_broker.stop()  # and the broker restarts before the hub is back: persistence
    own_broker.start()
    hub.connect(subscribe=False)  # the session is resumed, nothing subscribed anew
    try:
        got = settle(hub, N)
    finally:
        hub.disconnect()
    assert got == N, f"{got} of {N} messages reached the hub"


def test_mosquittos_default_queue_loses_the_burst(tmp_path: Path) -> None:
    try:
        broker = Mosquitto(tmp_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    lines = broker.conf.read_text().splitlines()
    broker.conf.write_text("\n".join(ln for ln in lines if not ln.startswith("max_queued_")) + "\n")
    broker.start()
    try:
        hub = Consumer(broker, "default-hub")
        hub.connect(subscribe=True)
        hub.disconnect()
        burst(broker)
        hub.connect(subscribe=False)
        got = settle(hub, N, timeout=30)
        hub.disconnect()
    finally:
        broker.stop()
    assert got < N / 2, f"with mosquitto's default queue {got} of {N} arrived"
