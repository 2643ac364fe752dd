"""Fan-out of "this alert changed" notices to the dashboards' Server-Sent Event streams.

The MQTT consumer thread (and the API's actions) call ``publish`` after their
transaction committed; every open stream gets the notice on its own event loop. A
stream that falls behind (its queue full) is told to resync instead of blocking anyone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def _put(self, item: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(QUEUE_SIZE)
            self.queue.put_nowait({"type": "resync"})
            self.overflowed = False


class LiveBus:
    """``loader(event_id)`` gives the alert's full document; it runs once per change, in
    the publishing thread, and only while someone is watching. Streams then only redact
    it for their role, so a hundred open dashboards cost one query, not a hundred."""

    def __init__(self, loader: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.published = 0
        self.loader = loader

    def event_changed(self, event_id: str) -> None:
        if not self._subs:
            return
        doc = self.loader(event_id) if self.loader is not None else None
        self.publish({"type": "event", "id": event_id, "doc": doc})

    def sessions_changed(self) -> None:
        """A session ended or an account changed: every open stream re-checks its own
        credentials now instead of at its next periodic check."""
        if self._subs:
            self.publish({"type": "sessions"})

    def subscribe(self) -> Subscriber:
        sub = Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, item: dict[str, Any]) -> None:
        """Thread-safe; never blocks the caller."""
        with self._lock:
            subs = list(self._subs)
            self.published += 1
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub._put, item)
            except RuntimeError:  # that loop is closed: the stream is gone
                self.unsubscribe(sub)
