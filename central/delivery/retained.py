"""Retained per-edge messages (the watch list, camera configurations), kept current.

Why a reconcile loop and not a publish on each change: a broker that restarts without its
store, a hub that restarts, an edge that is new, all leave an edge without its message,
and nobody would change anything to send it again. So a thread knows the version it last
published to each edge and, on a change (``changed()``), on every (re)connection (the
broker may have lost its retained copies) and every ``resync_s``, publishes what each
edge lacks. What to publish is the service's ``sync()``; the loop is here, once.

The messages go on the hub's own connection (``hub_publisher``): its account is the only
writer of the config topics, and a second connection with the same account would unseat
the consumer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]


def hub_publisher(consumer: Any, timeout_s: float = 10.0) -> Publish:
    """QoS 1, **retained**, waiting for the broker's PUBACK, on the hub's connection.
    ``MqttConsumer.publish`` takes no retain flag yet; once it does this is
    ``consumer.publish(topic, payload, retain=True)``."""

    def publish(topic: str, payload: bytes) -> None:
        if not consumer.connected.is_set():
            raise RuntimeError("hub not connected to the broker")
        info = consumer._client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise RuntimeError("broker did not acknowledge the publish")

    return publish


class RetainedSync:
    """The delivery loop; a subclass gives ``sync()`` (publish what edges lack) and names
    its thread."""

    thread_name = "retained-sync"

    def __init__(
        self,
        publish: Publish | None,
        connected: Callable[[], bool],
        *,
        resync_s: float = 5.0,
        poll_s: float = 1.0,
    ) -> None:
        self.publish = publish
        self.connected = connected
        self.resync_s = resync_s
        self.poll_s = poll_s
        self._sent: dict[tuple[str, str], int] = {}  # (site, edge) -> version published
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> int:
        """Publish to each edge what it lacks; how many edges got a message."""
        raise NotImplementedError

    def sent(self) -> dict[tuple[str, str], int]:
        """The version this hub last published to each edge."""
        return dict(self._sent)

    def changed(self) -> None:
        """Publish now (something changed)."""
        self._kick.set()

    def start_loop(self) -> None:
        # a run's own event: a thread a slow stop left behind keeps its set one
        self._stop = run_stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(run_stop,), name=self.thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        was_up = False
        last_full = -float("inf")
        while not stop.is_set():
            kicked = self._kick.wait(self.poll_s)
            self._kick.clear()
            if stop.is_set():
                return
            if not self.connected():
                was_up = False
                continue
            if not was_up:
                # (re)connected: the broker may have lost its retained copies
                self._sent.clear()
                was_up = kicked = True
            if kicked or time.monotonic() - last_full >= self.resync_s:
                try:
                    self.sync()
                except Exception:  # a database hiccup must not end delivery for good
                    log.exception("retained delivery failed", extra={"loop": self.thread_name})
                last_full = time.monotonic()
