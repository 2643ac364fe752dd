"""One ingest leader at a time among several hubs on one PostgreSQL database.

Why an advisory lock and not a cluster manager: PostgreSQL already is the one place every
hub must reach, and it frees a session's advisory lock the moment that session ends: a
hub killed with -9, a crashed host, a cut network (once TCP keepalive gives up). So the
leader is whoever holds ``pg_try_advisory_lock(cluster.lock_key)`` on a connection of its
own (not from the pool: a pooled connection is returned, reset and shared, and the lock
would go with it). A standby tries the lock every ``cluster.poll_s``; the holder checks
its connection as often (``SELECT 1``) and, the moment the check fails, stops its leader
duties before anyone else can take over: at worst both hubs run for the check's length,
which the duties tolerate (idempotent ingest, at-least-once deliveries).

The leader's duties are the services that must run once across hubs: the MQTT consumer
(every hub uses the same account and client id, so the new leader takes over the
persistent session and the broker hands it what it queued meanwhile), the retained
delivery loops that publish on the consumer's connection, the dispatcher (deliveries,
escalations, digests), the camera watchdog and retention. Each is started on gaining the
lock and stopped on losing it, so each must start again after a stop.

On SQLite (one hub) there is nothing to elect: the hub always leads, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

# A connection that stops answering must not hold the lock (nor keep us believing we
# hold it) for the kernel's default two hours: give up on it within seconds.
# The libpq settings tune the hub's end; the lock belongs to the server's backend, which
# notices a vanished hub (power lost, network cut) only by its own keepalives: set those
# too, for this session, longer than the hub's ~5 s, so the old leader has always stopped
# its duties before the server frees the lock (about 10 + 3 x 2 s).
CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
    "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=2 "
    "-c tcp_keepalives_count=3 -c tcp_user_timeout=16000",
}
APP_PREFIX = "edgewatch-leader "


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def libpq_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://u@h/db`` as libpq (psycopg.connect) takes it."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Leadership:
    """Runs ``services`` while this hub holds the leader lock (always, without a DSN).

    ``start`` makes one attempt at once (a lone hub leads before it serves its first
    request), then a thread keeps trying / checking every ``poll_s``."""

    def __init__(
        self,
        dsn: str | None,
        services: Sequence[Service],
        *,
        hub_id: str,
        lock_key: int,
        poll_s: float = 1.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.dsn = dsn
        self.services = list(services)
        self.hub_id = hub_id
        self.lock_key = lock_key
        self.poll_s = poll_s
        self.changes = 0  # how many times leadership was gained or lost
        self.since: float | None = None  # time.time() of the last gain, while leading
        self._leading = False
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # gain / lose never interleave
        self.gauge = Gauge(
            "edgewatch_hub_leader",
            "1 while this hub is the ingest leader (holds the cluster lock), else 0",
            registry=registry if registry is not None else CollectorRegistry(),
        )
        self.gauge.set(0)

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def clustered(self) -> bool:
        return self.dsn is not None

    def start(self) -> None:
        self._stop.clear()
        if self.dsn is None:
            self._gain()
            return
        self._step()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._lose("hub stopping")
        self._close()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._step()

    def _step(self) -> None:
        if self._leading:
            if not self._alive():
                self._lose("lost the database connection that holds the lock")
                self._close()
            return
        try:
            if self._conn is None:
                self._conn = self._connect()
            got = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (self.lock_key,)
            ).fetchone()[0]
        except Exception as exc:  # the database away: try again next period
            log.debug("leader lock not tried", extra={"error": str(exc)[:200]})
            self._close()
            return
        if got and not self._stop.is_set():
            self._gain()

    def _connect(self) -> Any:
        import psycopg

        assert self.dsn is not None
        return psycopg.connect(
            self.dsn,
            autocommit=True,
            application_name=(APP_PREFIX + self.hub_id)[:63],
            **CONNECT_ARGS,
        )

    def _alive(self) -> bool:
        """The lock connection answers, and still holds the lock (a ``SELECT 1`` that
        also asks ``pg_locks``: nobody ran ``pg_advisory_unlock_all`` on us)."""
        try:
            held = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND locktype = 'advisory' AND granted AND classid = 0 AND objid = %s "
                "AND objsubid = 1",
                (self.lock_key,),
            ).fetchone()[0]
        except Exception as exc:
            log.error("leader lock connection failed", extra={"error": str(exc)[:200]})
            return False
        if not held:
            log.error("leader lock no longer held", extra={"hub_id": self.hub_id})
        return bool(held)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # ends the session: PostgreSQL frees the lock
            except Exception:
                pass

    def _gain(self) -> None:
        with self._lock:
            if self._leading:
                return
            self._leading = True
            self.changes += 1
            self.since = time.time()
            self.gauge.set(1)
            log.warning(
                "hub is the ingest leader",
                extra={"hub_id": self.hub_id, "clustered": self.clustered},
            )
            for svc in self.services:
                try:
                    svc.start()
                except Exception:  # one broken duty must not keep the others down
                    log.exception("leader duty failed to start", extra={"duty": _name(svc)})

    def _lose(self, why: str) -> None:
        with self._lock:
            if not self._leading:
                return
            self._leading = False
            self.changes += 1
            self.since = None
            self.gauge.set(0)
            log.warning(
                "hub is no longer the ingest leader", extra={"hub_id": self.hub_id, "why": why}
            )
            for svc in reversed(self.services):
                try:
                    svc.stop()
                except Exception:
                    log.exception("leader duty failed to stop", extra={"duty": _name(svc)})


def _name(svc: object) -> str:
    return type(svc).__name__


def cluster_state(engine: Any, lock_key: int) -> dict[str, Any]:
    """Who holds the lock and which hubs are connected, as PostgreSQL sees it: every hub
    of the cluster keeps a connection named after its hub id (the leader lock's or the
    live listener's)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        leader = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 "
                "AND l.objid = :key AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": lock_key},
        ).scalar()
        names = conn.execute(
            text(
                "SELECT DISTINCT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'edgewatch-%'"
            )
        ).scalars()
        hubs = sorted({n.split(" ", 1)[1] for n in names if " " in n})
    return {
        "leader_hub_id": leader.split(" ", 1)[1] if leader and " " in leader else None,
        "hubs": hubs,
    }
