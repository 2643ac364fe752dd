"""Fan-out of "this alert changed" notices to the dashboards' Server-Sent Event streams.

The MQTT consumer thread (and the API's actions) call ``publish`` after their
transaction committed; every open stream gets the notice on its own event loop. A
stream that falls behind (its queue full) is told to resync instead of blocking anyone.

With several hubs on one PostgreSQL (docs/cluster.md) a change committed on one hub must
reach the streams open on every other: :class:`PgFanout` sends each change as a
``NOTIFY edgewatch_live`` (a low-rate wake-up carrying ids only, batched) and every hub
LISTENs on a connection of its own and loads the alert from the database, as it does for
its own changes. A hub skips the notices it sent itself (its streams already had them).
The same channel carries a "kick": a watch-list or camera-config change saved on any hub
wakes the leader's retained delivery loops (``relay``).
A listener that lost its connection tells its streams to resync once it is back: the
notices sent meanwhile are gone (NOTIFY is not queued for absent listeners).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 1000
CHANNEL = "edgewatch_live"
MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
log = logging.getLogger(__name__)


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
        # Several hubs: also tell the others (PgFanout.send); None on a single hub.
        self.notify: Callable[[str, str | None], None] | None = None

    def event_changed(self, event_id: str) -> None:
        if self.notify is not None:
            self.notify("e", event_id)
        self.deliver_event(event_id)

    def sessions_changed(self) -> None:
        """A session ended or an account changed: every open stream re-checks its own
        credentials now instead of at its next periodic check."""
        if self.notify is not None:
            self.notify("s", None)
        self.deliver_sessions()

    def deliver_event(self, event_id: str) -> None:
        """To this hub's streams only (a change seen here or announced by another hub)."""
        if not self._subs:
            return
        doc = self.loader(event_id) if self.loader is not None else None
        self.publish({"type": "event", "id": event_id, "doc": doc})

    def deliver_sessions(self) -> None:
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


def notice_payloads(hub_id: str, kind: str, ids: list[str]) -> list[str]:
    """``"<hub> <kind> id,id,..."`` notices, each under PostgreSQL's payload limit."""
    head = f"{hub_id} {kind} "
    out: list[str] = []
    batch: list[str] = []
    size = len(head)
    for i in ids:
        if batch and size + len(i) + 1 > MAX_PAYLOAD:
            out.append(head + ",".join(batch))
            batch, size = [], len(head)
        batch.append(i)
        size += len(i) + 1
    if batch or kind != "e":
        out.append(head + ",".join(batch))
    return out


class PgFanout:
    """The cross-hub half of :class:`LiveBus` on PostgreSQL: a sender thread and a
    listener thread, each on a connection of its own (not the pool's: a LISTEN belongs to
    one session, and the sender must not hold a pooled connection per change).

    Sending never blocks the caller (the ingest thread): ids are collected and sent as a
    few NOTIFYs per ``batch_s``, the same id once. Events reach the other hubs' streams
    within about ``batch_s`` plus their own load of the alert."""

    def __init__(
        self, dsn: str, hub_id: str, bus: LiveBus, *, batch_s: float = 0.05, retry_s: float = 1.0
    ) -> None:
        self.dsn = dsn
        self.hub_id = hub_id
        self.bus = bus
        self.batch_s = batch_s
        self.retry_s = retry_s
        self.sent = 0  # notices sent
        self.received = 0  # notices from other hubs
        self._pending: dict[str, None] = {}  # event ids, in order, once each
        self._flags: set[str] = set()  # "s" (sessions), "k" (kick the delivery loops)
        self._relayed: list[Callable[[], None]] = []
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self.bus.notify = self.send
        self._threads = [
            threading.Thread(target=self._sender, name="live-notify", daemon=True),
            threading.Thread(target=self._listener, name="live-listen", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self.bus.notify = None
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def send(self, kind: str, event_id: str | None) -> None:
        with self._cv:
            if kind == "e" and event_id is not None:
                self._pending[event_id] = None
            else:
                self._flags.add(kind)
            self._cv.notify()

    def relay(self, local: Callable[[], None]) -> Callable[[], None]:
        """``local`` (a retained delivery loop's ``changed``), made to run on every hub:
        a watch-list change saved on a standby wakes the leader's loop at once instead
        of at its next resync."""
        self._relayed.append(local)

        def everywhere() -> None:
            local()
            self.send("k", None)

        return everywhere

    def _connect(self, name: str) -> Any:
        import psycopg

        from central.leader import CONNECT_ARGS

        return psycopg.connect(
            self.dsn, autocommit=True, application_name=f"edgewatch-{name} {self.hub_id}"[:63],
            **CONNECT_ARGS,
        )  # fmt: skip

    def _take(self) -> tuple[list[str], set[str]]:
        with self._cv:
            while not (self._pending or self._flags or self._stop.is_set()):
                self._cv.wait()
            ids, flags = list(self._pending), self._flags
            self._pending, self._flags = {}, set()
        return ids, flags

    def _sender(self) -> None:
        conn: Any = None
        while True:
            ids, flags = self._take()
            if not ids and not flags and self._stop.is_set():
                break
            payloads = notice_payloads(self.hub_id, "e", ids) if ids else []
            for flag in sorted(flags):
                payloads += notice_payloads(self.hub_id, flag, [])
            for _attempt in range(3):
                try:
                    if conn is None:
                        conn = self._connect("notify")
                    with conn.transaction():  # one commit for the lot
                        for p in payloads:
                            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, p))
                    self.sent += len(payloads)
                    break
                except Exception as exc:  # the database away: those notices are lost
                    log.warning("live notice not sent", extra={"error": str(exc)[:200]})
                    conn = _close(conn)
                    if self._stop.wait(self.retry_s):
                        break
            if self._stop.is_set():
                break
            self._stop.wait(self.batch_s)  # gather the next batch
        _close(conn)

    def _listener(self) -> None:
        conn: Any = None
        lost = False
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._connect("live")
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if lost:  # notices sent while we were away are gone
                        self.bus.publish({"type": "resync"})
                        lost = False
                for n in conn.notifies(timeout=1.0):
                    self._handle(n.payload)
                    if self._stop.is_set():
                        break
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("live listener lost its connection", extra={"error": str(exc)[:200]})
                self.listening.clear()
                conn = _close(conn)
                lost = True
                self._stop.wait(self.retry_s)
        self.listening.clear()
        _close(conn)

    def _handle(self, payload: str) -> None:
        hub, _, rest = payload.partition(" ")
        if hub == self.hub_id:
            return  # ours: our streams had it already
        kind, _, ids = rest.partition(" ")
        self.received += 1
        try:
            if kind == "e":
                for event_id in ids.split(","):
                    if event_id:
                        self.bus.deliver_event(event_id)
            elif kind == "s":
                self.bus.deliver_sessions()
            elif kind == "k":
                for local in self._relayed:
                    local()
        except Exception:  # one bad load must not end the listener
            log.exception("live notice failed", extra={"notice": payload[:100]})


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
    return None
