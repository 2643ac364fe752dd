"""The dispatcher: sends the queued deliveries, at least once, without one target holding
up another.

Merging, routing and escalation (:mod:`central.incidents`) only write rows to
``deliveries``, one per recipient and notification, in the ingest or API transaction; this
module is what turns those rows into attempts. Kept apart from them because it is the part
that does network I/O on threads of its own: each target (a webhook URL, a push endpoint,
an MQTT topic) has at most one attempt in flight, a :class:`CircuitBreaker` per target
defers the rows of one that keeps failing, and a failed attempt is retried with
exponential backoff and logged (its error scrubbed of URLs). What one attempt on one
channel is lives in :mod:`central.delivery.channels`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from central.config import Channel, HubConfig
from central.delivery.channels import _Refused, post_webhook, send_webpush
from central.delivery.redact import redact_url, scrub
from central.storage.models import DeliveryRow, PushSubscriptionRow

if TYPE_CHECKING:
    from central.incidents.manager import IncidentManager

__all__ = ["CircuitBreaker", "Dispatcher", "redact_url", "scrub"]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Circuit:
    failures: int = 0  # consecutive
    open_until: float = 0.0
    cooldown: float = 0.0


@dataclass
class CircuitBreaker:
    """One circuit per delivery target. ``failures`` consecutive failures open it: for
    ``open_s`` its deliveries are deferred without an attempt; then one attempt (the probe)
    goes through. A probe that fails reopens it for twice as long (up to ``max_open_s``), a
    success closes it. The dispatcher keeps at most one attempt per target in flight, so
    there is one probe at a time."""

    failures: int = 3
    open_s: float = 30.0
    max_open_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked_for(self, key: str) -> float:
        """Seconds until ``key`` may be tried again; 0 when it may be now."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None or c.failures < self.failures:
                return 0.0
            return max(0.0, c.open_until - self.clock())

    def consecutive_failures(self, key: str) -> int:
        with self._lock:
            c = self._circuits.get(key)
            return 0 if c is None else c.failures

    def record(self, key: str, ok: bool) -> str | None:
        """Count an attempt's outcome: ``"opened"`` when this failure opened (or reopened)
        the circuit, ``"closed"`` when this success closed an open one, else None."""
        with self._lock:
            c = self._circuits.get(key)
            if ok:
                if c is None:
                    return None
                del self._circuits[key]  # closed circuits are not kept
                return "closed" if c.failures >= self.failures else None
            if c is None:
                c = self._circuits[key] = _Circuit(cooldown=self.open_s)
            c.failures += 1
            if c.failures < self.failures:
                return None
            if c.failures > self.failures:  # a failed probe
                c.cooldown = min(self.max_open_s, c.cooldown * 2)
            c.open_until = self.clock() + c.cooldown
            return "opened"


class Dispatcher:
    """Sends due deliveries, at least once: success marks them sent, failure retries later.

    The loop thread only picks rows: each attempt runs in a thread of its own, at most one
    per target and ``incidents.max_parallel_deliveries`` in all, so a slow or hung target
    delays nobody else's notifications; rows of a target whose circuit is open are deferred
    without an attempt (see :class:`CircuitBreaker`)."""

    def __init__(
        self,
        cfg: HubConfig,
        sessions: sessionmaker[Session],
        manager: IncidentManager,
        mqtt_publish: Callable[[str, bytes], None] | None,
        vapid_key: Path | None,
        on_result: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.manager = manager
        self.mqtt_publish = mqtt_publish
        self.vapid_key = vapid_key
        self.on_result = on_result
        s = cfg.incidents
        self.breaker = CircuitBreaker(s.breaker_failures, s.breaker_open_s, s.breaker_max_open_s)
        self._busy: set[str] = set()  # targets with an attempt in flight
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick = 0.0

    def start(self) -> None:
        """Start picking rows (again after a ``stop``: a hub that becomes a cluster's
        leader, see central/leader.py)."""
        # a run's own event: a thread a slow stop left behind keeps its set one
        self._stop = run_stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(run_stop,), name="dispatcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops picking rows; attempts in flight are daemon threads, cut short at exit (an
        interrupted attempt's row stays pending and is sent again: at least once)."""
        self._stop.set()
        self.manager.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if time.monotonic() - self._last_tick >= 1.0:
                    self._last_tick = time.monotonic()
                    self.manager.tick()
                self.run_due()
            except Exception:  # never let the dispatcher die
                log.exception("dispatcher error")
            self.manager.wake.wait(0.25)
            self.manager.wake.clear()

    def in_flight(self) -> int:
        with self._busy_lock:
            return len(self._busy)

    def run_due(self, now: datetime | None = None) -> int:
        """Start an attempt for each due target that has none in flight: the number started."""
        now = now or _now()
        with self._busy_lock:
            busy = set(self._busy)
        free = self.cfg.incidents.max_parallel_deliveries - len(busy)
        if free <= 0:
            return 0
        query = select(DeliveryRow).where(
            DeliveryRow.state == "pending", DeliveryRow.next_attempt_at <= now
        )
        if busy:  # their rows wait for the attempt in flight; they must not fill the batch
            query = query.where(DeliveryRow.target.not_in(busy))
        with self.sessions() as session:
            rows = list(session.execute(query.order_by(DeliveryRow.id).limit(200)).scalars())
        started = 0
        deferred: dict[str, float] = {}
        for row in rows:
            key = row.target
            if key in busy or key in deferred:
                continue  # one attempt per target at a time, oldest row first
            wait = self.breaker.blocked_for(key)
            if wait > 0:
                deferred[key] = wait
                continue
            busy.add(key)
            with self._busy_lock:
                self._busy.add(key)
            threading.Thread(
                target=self._run, args=(row,), name=f"delivery-{row.id}", daemon=True
            ).start()
            started += 1
            if started >= free:
                break
        if deferred:
            self._defer(deferred, now)
        return started

    def _defer(self, deferred: dict[str, float], now: datetime) -> None:
        with self.sessions.begin() as session:
            for key, wait in deferred.items():
                n = self.breaker.consecutive_failures(key)
                session.execute(
                    update(DeliveryRow)
                    .where(
                        DeliveryRow.state == "pending",
                        DeliveryRow.target == key,
                        DeliveryRow.next_attempt_at <= now,
                    )
                    .values(
                        next_attempt_at=now + timedelta(seconds=wait),
                        last_error=f"circuit open after {n} consecutive failures of this "
                        f"target; next try in {wait:.0f} s",
                    )
                )

    def _run(self, row: DeliveryRow) -> None:
        try:
            self._attempt(row)
        except Exception:
            log.exception("delivery error", extra={"delivery": row.id})
        finally:
            with self._busy_lock:
                self._busy.discard(row.target)
            self.manager.wake.set()  # the target's next row may go now

    def _attempt(self, row: DeliveryRow) -> None:
        s = self.cfg.incidents
        error = None
        gone = False
        refused = False
        try:
            body = json.dumps(row.payload, separators=(",", ":")).encode()
            if row.channel == "webhook":
                self._webhook(row, body)
            elif row.channel == "mqtt":
                if self.mqtt_publish is None:
                    raise RuntimeError("no MQTT connection")
                self.mqtt_publish(row.target, body)
            elif row.channel == "webpush":
                gone = self._webpush(row, body)
            else:
                raise RuntimeError(f"unknown channel {row.channel}")
        except _Refused as exc:
            error, refused = str(exc), True
        except Exception as exc:  # every failure is retried
            error = scrub(f"{type(exc).__name__}: {exc}")[:500]
        transition = None if refused else self.breaker.record(row.target, error is None)
        with self.sessions.begin() as session:
            r = session.get(DeliveryRow, row.id)
            if r is None:
                return
            r.attempts += 1
            now = _now()
            if error is None and not gone:
                r.state, r.sent_at, r.last_error = "sent", now, None
            elif gone:
                r.state, r.last_error = "failed", "subscription gone (404/410)"
                session.execute(
                    PushSubscriptionRow.__table__.delete().where(
                        PushSubscriptionRow.endpoint == r.target
                    )
                )
            elif refused or r.attempts >= s.max_attempts:
                r.state, r.last_error = "failed", error
            else:
                delay = min(s.retry_max_s, s.retry_initial_s * 2 ** (r.attempts - 1))
                r.next_attempt_at, r.last_error = now + timedelta(seconds=delay), error
            ok = r.state == "sent"
            attempt = r.attempts
        target = row.target if row.channel == "mqtt" else redact_url(row.target)
        log.log(
            logging.INFO if ok else logging.WARNING,
            "delivery",
            extra={
                "delivery": row.id,
                "channel": row.channel,
                "team": row.team_id,
                "incident": row.incident_id,
                "target": target,
                "attempt": attempt,
                "ok": ok,
                "error": error,
            },
        )
        if transition == "opened":
            log.warning(
                "delivery circuit open",
                extra={
                    "channel": row.channel,
                    "target": target,
                    "failures": self.breaker.consecutive_failures(row.target),
                    "retry_in_s": round(self.breaker.blocked_for(row.target), 1),
                },
            )
        elif transition == "closed":
            log.info("delivery circuit closed", extra={"channel": row.channel, "target": target})
        if self.on_result:
            self.on_result(row.channel, ok)

    def _channel(self, row: DeliveryRow) -> Channel | None:
        team = self.cfg.team(row.team_id)
        if team is None:
            return None
        return next((c for c in team.channels if c.type == row.channel), None)

    def _webhook(self, row: DeliveryRow, body: bytes) -> None:
        ch = self._channel(row)
        if ch is None:
            raise RuntimeError("the team's webhook channel is no longer configured")
        post_webhook(row.target, body, row.id, ch.hmac_key(), self.cfg.incidents.delivery_timeout_s)

    def _webpush(self, row: DeliveryRow, body: bytes) -> bool:
        """True when the push service says the subscription is gone."""
        return send_webpush(
            self.sessions,
            row.target,
            body,
            self.vapid_key,
            self.cfg.push,
            self.cfg.incidents.delivery_timeout_s,
        )
