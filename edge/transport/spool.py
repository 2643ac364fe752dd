"""The on-disk store-and-forward spool (SQLite in WAL mode, large payloads as files).

Every outgoing message is written here first and deleted only when the broker has
acknowledged it (PUBACK), so nothing is lost to a broker outage, a network cut or a
restart of the worker: what is left is sent again, oldest first.

**Value order.** Messages are worth, from most to least: events > readings > statuses >
snapshots > evidence (an alert matters more than a flood level, a level more than a
camera's state, the state more than the pictures of an alert). A newcomer may evict only
messages of lower or equal value, the least valuable first and the oldest first within a
kind. When that does not make room, the newcomer is *refused* and counted (``refused``):
one snapshot no longer evicts 93 events. A message larger than the whole bound is refused
at once and never stored over it. Evictions are counted by kind (``dropped``) and logged.
Retained status messages are coalesced: a new status replaces the queued ones of the
same topic, so a long outage does not fill the spool with stale states.

**The bound counts the disk.** ``max_bytes`` covers the database, its WAL and WAL index,
the payload files and the emergency reserve: the WAL is checkpointed when it passes its
share (``wal_limit``) and truncated back to it, and the database is created with
``auto_vacuum=FULL`` so that freed pages go back to the file system at each commit.
Each row is charged an estimate of the pages it takes (``cost``: payload, index entries,
the page space it leaves unusable), so the figures the tests measure on the file system
stay under the bound. Snapshots, evidence and any payload over ``INLINE_MAX`` are stored
as files beside the database: they do not pass through the WAL, and unlinking one frees
disk space at once, without the write a DELETE needs.

**A full disk.** A put that fails for lack of space releases the spool's reserve file
(kept for events and readings), then unlinks payload files of *lower* value than the
batch (evidence, then snapshots), and tries again; if the batch still does not fit, its
least valuable members are given up (``failed``) before its alerts. Nothing accepted
before the fault is evicted for it. A failed transaction is rolled back only when one is
still open (SQLite rolls back by itself on SQLITE_FULL; a second ROLLBACK used to mask the
real error) and the in-memory totals are re-read from the database. ``put`` raises
``SpoolError`` only when nothing of the batch could be stored.
A delete after PUBACK that fails is not an error for the caller (it runs on paho's
network thread): the row is marked delivered in memory, never handed out again, its
payload file is unlinked (freeing space), and the DELETE is retried (``flush``). After a
restart such a row is sent again: the hub deduplicates by event id.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Kind = Literal["event", "snapshot", "status", "reading", "evidence"]
DROP_ORDER: tuple[Kind, ...] = ("evidence", "snapshot", "status", "reading", "event")
VALUE: dict[str, int] = {kind: rank for rank, kind in enumerate(DROP_ORDER)}
FILE_KINDS = frozenset({"snapshot", "evidence"})
INLINE_MAX = 16 * 1024  # larger payloads of any kind are stored as files too
MIN_BYTES = 256 * 1024
PAGE = 4096
SHM_BYTES = 32 * 1024  # the WAL index: one region covers a 16 MiB WAL
_FULL_CODES = (13, 10)  # SQLITE_FULL, SQLITE_IOERR (primary codes)
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class SpoolError(OSError):
    """Nothing of a batch could be stored (the disk is full or failing)."""


class _Full(Exception):
    """Internal: a write failed for lack of space; the caller may free some and retry."""


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


@dataclass(frozen=True)
class _Victim:
    seq: int
    kind: str
    topic: str
    size: int
    cost: int
    file: str | None
    file_bytes: int


def _clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, x))


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def row_cost(inline_bytes: int, topic: str, kind: str, file_bytes: int = 0) -> int:
    """Bytes of disk a row takes: its share of a table page (or its overflow pages), its
    index entries at two-thirds fill, and its payload file; deliberately conservative."""
    cell = inline_bytes + len(topic.encode()) + 48  # record header, rowid, other columns
    if cell + 4 <= PAGE - 8:
        table = PAGE // ((PAGE - 8) // (cell + 4))  # whole pages: what a row leaves unused
    else:
        table = (-(-cell // (PAGE - 4)) + 1) * PAGE  # overflow chain plus the local part
    index = 2 * (len(kind) + 16)
    if kind == "status":
        index += 2 * (len(topic.encode()) + 16)
    return int((table + index) * 1.03) + file_bytes  # interior pages


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return (code & 0xFF) in _FULL_CODES
        return "full" in str(exc) or "disk I/O" in str(exc)
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


class Spool:
    def __init__(self, path: Path, max_bytes: int) -> None:
        if max_bytes < MIN_BYTES:
            raise ValueError(f"spool bound {max_bytes} bytes is below the minimum {MIN_BYTES}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.files_dir = self.path.with_name(self.path.name + ".files")
        self.files_dir.mkdir(exist_ok=True)
        self.reserve_path = self.path.with_name(self.path.name + ".reserve")
        self.max_bytes = max_bytes
        self.wal_limit = _clamp(max_bytes // 16, 64 * 1024, 4 * 1024 * 1024)
        self.reserve_bytes = _clamp(max_bytes // 32, 32 * 1024, 1024 * 1024)
        self.dropped: Counter[str] = Counter()  # evicted to make room, by kind
        self.refused: Counter[str] = Counter()  # newcomers not stored (bound), by kind
        self.failed: Counter[str] = Counter()  # newcomers not stored (storage), by kind
        self.acked: Counter[str] = Counter()  # delivered (PUBACK), by kind
        self.superseded: Counter[str] = Counter()  # statuses replaced by a newer one
        self.storage_errors: Counter[str] = Counter()  # by operation: put, ack, flush
        self.reserve_released = 0
        self._lock = threading.Lock()
        self._gone: set[int] = set()  # delivered or evicted; their DELETE is still due
        self._reserve_checked = 0.0
        self._last_warning: dict[str, float] = {}
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._open()
        base = self._pragma("page_count") * PAGE
        self.capacity = max_bytes - self.wal_limit - SHM_BYTES - self.reserve_bytes - base
        self._count = self._bytes = self._cost = self._file_bytes = 0
        self._reload_totals()
        self._maintain_reserve(force=True)
        log.info(
            "spool opened",
            extra={
                "path": str(self.path),
                "messages": self._count,
                "max_bytes": max_bytes,
                "capacity": self.capacity,
                "wal_limit": self.wal_limit,
            },
        )

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> None:
        db = self._db
        db.execute(f"PRAGMA page_size={PAGE}")  # new databases only
        db.execute("PRAGMA auto_vacuum=FULL")  # new databases only (else VACUUM below)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # survive power loss, not just a crash
        db.execute("PRAGMA temp_store=MEMORY")  # no temporary files on a full disk
        db.execute(f"PRAGMA journal_size_limit={self.wal_limit}")
        db.execute(f"PRAGMA wal_autocheckpoint={max(8, self.wal_limit // PAGE // 2)}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " qos INTEGER NOT NULL, retain INTEGER NOT NULL, kind TEXT NOT NULL,"
            " size INTEGER NOT NULL, created REAL NOT NULL, file TEXT,"
            " file_bytes INTEGER NOT NULL DEFAULT 0, cost INTEGER NOT NULL DEFAULT 0)"
        )
        columns = {r[1] for r in db.execute("PRAGMA table_info(messages)")}
        for name, decl in (
            ("file", "TEXT"),
            ("file_bytes", "INTEGER NOT NULL DEFAULT 0"),
            ("cost", "INTEGER NOT NULL DEFAULT 0"),
        ):
            if name not in columns:  # a spool written by an older version
                db.execute(f"ALTER TABLE messages ADD COLUMN {name} {decl}")
        db.execute("DROP INDEX IF EXISTS messages_topic")
        db.execute("CREATE INDEX IF NOT EXISTS messages_kind ON messages(kind, seq)")
        db.execute(
            "CREATE INDEX IF NOT EXISTS messages_status_topic ON messages(topic)"
            " WHERE kind = 'status'"
        )
        if self._pragma("auto_vacuum") != 1:
            try:
                db.execute("VACUUM")  # an older spool: switch to auto_vacuum=FULL once
            except sqlite3.Error as exc:
                log.warning("spool not converted to auto_vacuum", extra={"error": str(exc)})
        try:
            self._recover()
        except sqlite3.Error as exc:
            log.warning("spool recovery postponed", extra={"error": str(exc)})

    def _recover(self) -> None:
        """Costs for old rows; rows whose payload file is gone; files no row names."""
        db = self._db
        for seq, topic, kind, payload_len in db.execute(
            "SELECT seq, topic, kind, length(payload) FROM messages WHERE cost = 0"
        ).fetchall():
            db.execute(
                "UPDATE messages SET cost = ? WHERE seq = ?",
                (row_cost(payload_len, topic, kind), seq),
            )
        named = dict(db.execute("SELECT file, seq FROM messages WHERE file IS NOT NULL"))
        present = {p.name for p in self.files_dir.iterdir()}
        missing = [seq for name, seq in named.items() if name not in present]
        if missing:
            # Delivered (the file is unlinked on PUBACK) or evicted before a restart left
            # the row's DELETE undone.
            db.executemany("DELETE FROM messages WHERE seq = ?", [(s,) for s in missing])
            log.info("spool rows without their payload file removed", extra={"rows": len(missing)})
        orphans = present - named.keys()
        for name in orphans:  # written before a crash, or unlinked after its row's DELETE
            (self.files_dir / name).unlink(missing_ok=True)
        if orphans:
            log.info("spool payload files without a row removed", extra={"files": len(orphans)})

    def _pragma(self, name: str) -> int:
        return int(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    # -- writing ---------------------------------------------------------------------------

    def put(self, *messages: Message) -> list[int | None]:
        """Store messages in order; one sequence number per message, ``None`` for one not
        stored (refused by the bound, or given up on a full disk; both counted by kind).
        The stored ones are stored atomically. Raises ``SpoolError`` when nothing could be
        stored because the storage failed."""
        result: list[int | None] = [None] * len(messages)
        todo = list(range(len(messages)))
        error: BaseException | None = None
        for _ in range(8):
            if not todo:
                break
            batch = [messages[i] for i in todo]
            try:
                seqs = self._put_once(batch)
            except _Full as exc:
                error = exc.__cause__ or exc
                top = max(VALUE.get(m.kind, 0) for m in batch)
                need = sum(self._file_cost(m) for m in batch) + 2 * PAGE  # + the WAL
                with self._lock:
                    self.storage_errors["put"] += 1
                    freed = self._free_space(need, below=top, reserve=top >= VALUE["reading"])
                if freed:
                    continue
                low = min(VALUE.get(m.kind, 0) for m in batch)
                if low == top:
                    break
                for i in todo:  # give up the least valuable members, keep the alerts
                    if VALUE.get(messages[i].kind, 0) == low:
                        self._give_up(messages[i], error)
                todo = [i for i in todo if VALUE.get(messages[i].kind, 0) != low]
                continue
            except (sqlite3.Error, SpoolError) as exc:  # not for lack of space: no retry
                with self._lock:
                    self.storage_errors["put"] += 1
                    for i in todo:
                        self.failed[messages[i].kind] += 1
                if isinstance(exc, SpoolError):
                    raise
                raise SpoolError(f"spool write failed: {exc}") from exc
            for i, seq in zip(todo, seqs, strict=True):
                result[i] = seq
            todo = []
        if todo:
            for i in todo:
                self._give_up(messages[i], error)
            if all(r is None for r in result):
                raise SpoolError(f"spool full: nothing could be stored ({error})") from error
        return result

    def _give_up(self, m: Message, error: BaseException | None) -> None:
        with self._lock:
            self.failed[m.kind] += 1
        self._warn(
            "put",
            "disk full: message not stored",
            {"kind": m.kind, "topic": m.topic, "bytes": len(m.payload), "error": str(error)},
        )

    @staticmethod
    def _stored_as_file(m: Message) -> bool:
        return m.kind in FILE_KINDS or len(m.payload) > INLINE_MAX

    def _file_cost(self, m: Message) -> int:
        return _round_up(len(m.payload), PAGE) if self._stored_as_file(m) else 0

    def _write_files(self, batch: list[Message]) -> dict[int, str]:
        names: dict[int, str] = {}
        try:
            for i, m in enumerate(batch):
                if not self._stored_as_file(m):
                    continue
                name = uuid.uuid4().hex
                names[i] = name
                with open(self.files_dir / name, "xb") as fh:
                    fh.write(m.payload)
                    fh.flush()
                    os.fsync(fh.fileno())
            if names:
                fd = os.open(self.files_dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            self._unlink(names.values())
            if exc.errno in _FULL_ERRNOS:
                raise _Full() from exc
            raise SpoolError(f"spool payload file not written: {exc}") from exc
        return names

    def _put_once(self, batch: list[Message]) -> list[int | None]:
        files = self._write_files(batch)
        unlink: list[str] = []
        try:
            with self._lock:
                self._flush_gone()
                seqs, unlink = self._insert(batch, files)
        except sqlite3.Error as exc:
            self._unlink(files.values())
            if _is_full(exc):
                raise _Full() from exc
            raise
        self._unlink(unlink)
        self._after_write()
        return seqs

    def _insert(
        self, batch: list[Message], files: dict[int, str]
    ) -> tuple[list[int | None], list[str]]:
        """One transaction; a savepoint per message so that a refused one evicts nothing."""
        db = self._db
        seqs: list[int | None] = []
        unlink: list[str] = []  # evicted payload files, and those of refused newcomers
        dropped: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        superseded = 0
        d_count = d_bytes = d_cost = d_files = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for i, m in enumerate(batch):
                name = files.get(i)
                file_bytes = self._file_cost(m) if name else 0
                inline = b"" if name else m.payload
                size = len(m.payload) + len(m.topic)
                cost = row_cost(len(inline), m.topic, m.kind, file_bytes)
                db.execute("SAVEPOINT msg")
                m_count = m_bytes = m_cost = m_files = 0
                evicted: list[_Victim] = []
                replaced: list[str] = []  # payload files of coalesced statuses
                replaced_seqs: list[int] = []
                if m.kind == "status" and m.retain:
                    for v in self._rows("WHERE topic = ? AND kind = 'status'", (m.topic,)):
                        db.execute("DELETE FROM messages WHERE seq = ?", (v.seq,))
                        m_count, m_bytes, m_cost = m_count - 1, m_bytes - v.size, m_cost - v.cost
                        m_files -= v.file_bytes
                        replaced_seqs.append(v.seq)
                        if v.file:
                            replaced.append(v.file)
                fits = cost <= self.capacity
                while fits and self._cost + d_cost + m_cost + cost > self.capacity:
                    v = self._victim(VALUE.get(m.kind, 0))
                    if v is None:
                        fits = False
                        break
                    db.execute("DELETE FROM messages WHERE seq = ?", (v.seq,))
                    m_count, m_bytes, m_cost = m_count - 1, m_bytes - v.size, m_cost - v.cost
                    m_files -= v.file_bytes
                    evicted.append(v)
                if not fits:
                    db.execute("ROLLBACK TO msg")
                    db.execute("RELEASE msg")
                    refused[m.kind] += 1
                    if name:
                        unlink.append(name)
                    seqs.append(None)
                    continue
                cur = db.execute(
                    "INSERT INTO messages (topic, payload, qos, retain, kind, size, created,"
                    " file, file_bytes, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        m.topic,
                        inline,
                        m.qos,
                        int(m.retain),
                        m.kind,
                        size,
                        time.time(),
                        name,
                        file_bytes,
                        cost,
                    ),
                )
                db.execute("RELEASE msg")
                seqs.append(int(cur.lastrowid or 0))
                unlink += replaced
                superseded += len(replaced_seqs)
                for v in evicted:
                    if v.file:
                        unlink.append(v.file)
                    dropped[v.kind] += 1
                    self._warn(
                        "evicted",
                        "spool full: evicted a message of lower or equal value",
                        {
                            "kind": v.kind,
                            "topic": v.topic,
                            "for_kind": m.kind,
                            "dropped": dict(self.dropped + dropped),
                        },
                    )
                d_count += m_count + 1
                d_bytes += m_bytes + size
                d_cost += m_cost + cost
                d_files += m_files + file_bytes
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._reload_totals()
            raise
        self._count += d_count
        self._bytes += d_bytes
        self._cost += d_cost
        self._file_bytes += d_files
        self.dropped.update(dropped)
        if superseded:
            self.superseded["status"] += superseded
        for kind, n in refused.items():
            self.refused[kind] += n
            self._warn(
                "refused",
                "spool full: newcomer refused (nothing of lower or equal value to evict, "
                "or larger than the bound)",
                {"kind": kind, "refused": self.refused[kind], "capacity": self.capacity},
            )
        return seqs, unlink

    def _rows(self, where: str, args: tuple[object, ...], limit: int = -1) -> list[_Victim]:
        """Rows (not already gone) matching ``where``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, kind, topic, size, cost, file, file_bytes FROM messages "  # noqa: S608 - where: this module's constants
            + where
            + " ORDER BY seq LIMIT ?",
            (*args, limit if limit < 0 else limit + len(self._gone)),
        ).fetchall()
        out = [_Victim(*r) for r in rows if r[0] not in self._gone]
        return out if limit < 0 else out[:limit]

    def _victim(self, value: int) -> _Victim | None:
        """The next message a newcomer of ``value`` may evict: least valuable, oldest."""
        for kind in DROP_ORDER:
            if VALUE[kind] > value:
                return None
            found = self._rows("WHERE kind = ?", (kind,), limit=1)
            if found:
                return found[0]
        return None

    def _rollback(self) -> None:
        """Roll back what is still open: SQLite may already have (SQLITE_FULL), and a
        second ROLLBACK would raise and hide the real error."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("spool rollback failed", extra={"error": str(exc)})

    def _reload_totals(self) -> None:
        gone = json.dumps(sorted(self._gone))
        count, size, cost, files = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(cost), 0),"
            " COALESCE(SUM(CASE WHEN file IS NULL THEN 0 ELSE file_bytes END), 0)"
            " FROM messages WHERE seq NOT IN (SELECT value FROM json_each(?))",
            (gone,),
        ).fetchone()
        self._count, self._bytes, self._cost, self._file_bytes = count, size, cost, files

    # -- a full disk ------------------------------------------------------------------------

    def _free_space(self, need: int, below: int, reserve: bool) -> int:
        """Free disk space for a batch whose most valuable member is ``below``: the reserve
        (for events and readings), then payload files of strictly lower value, then rows
        of strictly lower value. Returns the bytes freed (0: nothing more to free)."""
        freed = 0
        if reserve and self.reserve_path.exists():
            self.reserve_path.unlink(missing_ok=True)
            self.reserve_released += 1
            freed += self.reserve_bytes
            log.warning(
                "disk full: released the spool's reserve for alerts",
                extra={"bytes": self.reserve_bytes, "path": str(self.reserve_path)},
            )
        inline: list[_Victim] = []  # rows whose space comes back only if their DELETE commits
        while freed < need:
            v = self._victim(below - 1) if below > 0 else None
            if v is None:
                break
            if v.file:
                self._unlink_one(self.files_dir / v.file)  # frees the space at once
                freed += v.file_bytes
            else:
                inline.append(v)
                freed += v.cost
            self._evict_now(v, +1)
        if not self._flush_gone() and inline:
            for v in inline:  # nothing was freed by them: keep them
                self._evict_now(v, -1)
                freed -= v.cost
        return max(freed, 0)

    def _evict_now(self, v: _Victim, sign: int) -> None:
        """Mark ``v`` evicted (+1; handed out no more, its DELETE done by ``_flush_gone``)
        or take that back (-1)."""
        if sign > 0:
            self._gone.add(v.seq)
        else:
            self._gone.discard(v.seq)
        self._count -= sign
        self._bytes -= sign * v.size
        self._cost -= sign * v.cost
        self._file_bytes -= sign * v.file_bytes
        self.dropped[v.kind] += sign
        if self.dropped[v.kind] <= 0:
            del self.dropped[v.kind]
        if sign > 0:
            self._warn(
                "freed",
                "disk full: evicted a message of lower value",
                {"kind": v.kind, "topic": v.topic, "dropped": dict(self.dropped)},
            )

    def _flush_gone(self) -> bool:
        """Delete the rows already delivered or evicted whose DELETE failed before."""
        if not self._gone:
            return True
        gone = sorted(self._gone)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "DELETE FROM messages WHERE seq IN (SELECT value FROM json_each(?))",
                (json.dumps(gone),),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self.storage_errors["flush"] += 1
            self._warn("flush", "spool delete still failing; retrying", {"error": str(exc)})
            return False
        self._gone.difference_update(gone)
        return True

    def _maintain_reserve(self, force: bool = False) -> None:
        """Keep a reserve file, released on a full disk so alerts can still be stored."""
        now = time.monotonic()
        if self.reserve_path.exists() or (not force and now - self._reserve_checked < 1.0):
            return
        self._reserve_checked = now
        try:
            st = os.statvfs(self.path.parent)
            if st.f_bavail * st.f_frsize < 4 * self.reserve_bytes:
                return
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
        except FileExistsError:
            return
        except OSError as exc:
            self.reserve_path.unlink(missing_ok=True)
            log.warning("spool reserve not created", extra={"error": str(exc)})

    def _after_write(self) -> None:
        """Keep the WAL within its share of the bound."""
        try:
            wal = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        if wal > self.wal_limit:
            with self._lock:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    self._warn("checkpoint", "spool checkpoint failed", {"error": str(exc)})

    def _warn(self, key: str, msg: str, extra: dict[str, object]) -> None:
        """A warning at most once a second per kind of trouble (a full disk repeats)."""
        now = time.monotonic()
        if now - self._last_warning.get(key, 0.0) >= 1.0:
            self._last_warning[key] = now
            log.warning(msg, extra=extra)

    @staticmethod
    def _unlink_one(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("spool payload file not removed", extra={"error": str(exc)})

    def _unlink(self, names: object) -> None:
        for name in list(names):  # type: ignore[call-overload]
            self._unlink_one(self.files_dir / name)

    # -- reading and acknowledging ----------------------------------------------------------

    def after(self, seq: int, limit: int) -> list[Row]:
        """Up to ``limit`` messages with a sequence number above ``seq``, oldest first."""
        out: list[Row] = []
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, retain, kind, file FROM messages"
                " WHERE seq > ? AND seq NOT IN (SELECT value FROM json_each(?))"
                " ORDER BY seq LIMIT ?",
                (seq, json.dumps(sorted(self._gone)), limit),
            ).fetchall()
            for s, topic, payload, qos, retain, kind, name in rows:
                if name:
                    try:
                        payload = (self.files_dir / name).read_bytes()
                    except OSError as exc:
                        log.error(
                            "spool payload file unreadable; message dropped",
                            extra={"topic": topic, "kind": kind, "error": str(exc)},
                        )
                        self._forget(s, kind)
                        self.dropped[kind] += 1
                        continue
                out.append(Row(s, topic, bytes(payload), qos, bool(retain), kind))
        return out

    def ack(self, seq: int) -> None:
        """The broker has the message: delete it. Never raises on a storage error (this
        runs on paho's network thread); a failed DELETE is retried by ``flush``."""
        with self._lock:
            if seq in self._gone:
                return
            try:
                row = self._db.execute("SELECT kind FROM messages WHERE seq = ?", (seq,)).fetchone()
            except sqlite3.Error as exc:
                self.storage_errors["ack"] += 1
                self._warn("ack", "spool read failed after PUBACK", {"error": str(exc)})
                return
            if row is None:
                return  # evicted meanwhile, or a second PUBACK
            self.acked[row[0]] += 1
            self._forget(seq, row[0])

    def _forget(self, seq: int, kind: str) -> None:
        """Delete a row (delivered, or unreadable), or mark it for ``flush`` to delete."""
        found = self._rows("WHERE seq = ?", (seq,))
        if not found:
            return
        v = found[0]
        try:
            self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
        except sqlite3.Error as exc:
            self._rollback()
            self.storage_errors["ack"] += 1
            self._gone.add(seq)
            self._warn(
                "ack",
                "spool delete failed (disk full?); the message is delivered and its row "
                "will be deleted later",
                {"error": str(exc), "kind": kind, "pending_deletes": len(self._gone)},
            )
        self._count -= 1
        self._bytes -= v.size
        self._cost -= v.cost
        self._file_bytes -= v.file_bytes
        if v.file:
            self._unlink_one(self.files_dir / v.file)  # frees space even if the DELETE failed

    def flush(self) -> None:
        """Retry pending deletes, restore the reserve, keep the WAL small (call it often:
        it does nothing when all is well)."""
        with self._lock:
            self._flush_gone()
            self._maintain_reserve()
        self._after_write()

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it; False if that failed."""
        with self._lock:
            try:
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                self._warn("checkpoint", "spool checkpoint failed", {"error": str(exc)})
                return False
        return not busy

    # -- figures ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        """Payload and topic bytes of the messages waiting."""
        return self._bytes

    @property
    def cost(self) -> int:
        """What the messages waiting are charged against ``capacity``."""
        return self._cost

    @property
    def pending_deletes(self) -> int:
        return len(self._gone)

    def kinds(self) -> dict[str, int]:
        """Messages waiting, by kind."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, COUNT(*) FROM messages"
                " WHERE seq NOT IN (SELECT value FROM json_each(?)) GROUP BY kind",
                (json.dumps(sorted(self._gone)),),
            ).fetchall()
        return {k: n for k, n in rows}

    def disk_bytes(self, exact: bool = False) -> int:
        """Disk the spool takes: database, WAL, WAL index, reserve and payload files
        (``exact``: every payload file is stat'ed; else the tracked figure is used)."""
        total = 0
        for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"), self.reserve_path):
            try:
                total += os.stat(p).st_blocks * 512
            except OSError:
                pass
        if not exact:
            return total + self._file_bytes
        with os.scandir(self.files_dir) as it:
            for entry in it:
                try:
                    total += entry.stat().st_blocks * 512
                except OSError:
                    pass
        return total

    def close(self) -> None:
        with self._lock:
            self._flush_gone()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
