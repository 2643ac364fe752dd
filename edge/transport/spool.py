"""The on-disk store-and-forward spool (SQLite in WAL mode).

Every outgoing message is written here first and deleted only when the broker has
acknowledged it (PUBACK), so nothing is lost to a broker outage, a network cut or a
restart of the worker: what is left is sent again, oldest first.

The spool is bounded (``max_bytes``). When a new message would pass the bound, the
drop policy makes room in this order, oldest first within each class:
1. snapshots (evidence is worth less than the alert it belongs to),
2. status messages (a newer one supersedes them),
3. readings (flood levels: each is kept for the hub's series, but worth less than alerts),
4. evidence files of traffic violations (large; the package also stays in the edge's
   ``evidence.dir``, from where it can be fetched),
5. events.
Every dropped message is counted by kind (``dropped``) and logged.
Retained status messages are coalesced: a new status replaces the queued ones of
the same topic, so a long outage does not fill the spool with stale states.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Kind = Literal["event", "snapshot", "status", "reading", "evidence"]
DROP_ORDER: tuple[Kind, ...] = ("snapshot", "status", "reading", "evidence", "event")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    kind: Kind
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str


class Spool:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.dropped: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # survive power loss, not just a crash
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " qos INTEGER NOT NULL, retain INTEGER NOT NULL, kind TEXT NOT NULL,"
            " size INTEGER NOT NULL, created REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_kind ON messages(kind, seq)")
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_topic ON messages(topic)")
        self._bytes, self._count = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages"
        ).fetchone()

    # -- writing ---------------------------------------------------------------------------

    def put(self, *messages: Message) -> list[int]:
        """Store messages atomically, in order; returns their sequence numbers."""
        seqs: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for m in messages:
                    if m.kind == "status" and m.retain:
                        self._coalesce_status(m.topic)
                    size = len(m.payload) + len(m.topic)
                    self._make_room(size)
                    cur = self._db.execute(
                        "INSERT INTO messages (topic, payload, qos, retain, kind, size, created)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (m.topic, m.payload, m.qos, int(m.retain), m.kind, size, time.time()),
                    )
                    seqs.append(int(cur.lastrowid or 0))
                    self._bytes += size
                    self._count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload_totals()
                raise
        return seqs

    def _coalesce_status(self, topic: str) -> None:
        old = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages"
            " WHERE topic = ? AND kind = 'status'",
            (topic,),
        ).fetchone()
        self._db.execute("DELETE FROM messages WHERE topic = ? AND kind = 'status'", (topic,))
        self._bytes -= old[0]
        self._count -= old[1]

    def _make_room(self, size: int) -> None:
        for kind in DROP_ORDER:
            while self._bytes + size > self.max_bytes:
                row = self._db.execute(
                    "SELECT seq, size, topic FROM messages WHERE kind = ? ORDER BY seq LIMIT 1",
                    (kind,),
                ).fetchone()
                if row is None:
                    break
                self._db.execute("DELETE FROM messages WHERE seq = ?", (row[0],))
                self._bytes -= row[1]
                self._count -= 1
                self.dropped[kind] += 1
                log.warning(
                    "spool full: dropped oldest message",
                    extra={"kind": kind, "topic": row[2], "spool_bytes": self._bytes},
                )

    def _reload_totals(self) -> None:
        self._bytes, self._count = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages"
        ).fetchone()

    # -- reading and acknowledging ----------------------------------------------------------

    def after(self, seq: int, limit: int) -> list[Row]:
        """Up to ``limit`` messages with a sequence number above ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, retain, kind FROM messages"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [Row(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def ack(self, seq: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT size FROM messages WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            self._bytes -= row[0]
            self._count -= 1

    def __len__(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        with self._lock:
            self._db.close()
