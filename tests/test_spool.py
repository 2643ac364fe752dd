"""The spool on an ordinary disk: order, acks, reopen, the value-ordered drop policy, and
the bound measured on the file system (database + WAL + payload files + reserve)."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from edge.transport.spool import MIN_BYTES, Message, Spool

TOPIC = "edgewatch/v1/hue/edge-1/events"


def ev(i: int, size: int = 900) -> Message:
    return Message(TOPIC, (b"%06d" % i) + b"e" * (size - 6), kind="event")


def snap(i: int, size: int = 30_000) -> Message:
    return Message(f"edgewatch/v1/hue/edge-1/events/{i}/snapshot", os.urandom(size), "snapshot")


def clip(i: int, size: int = 200_000) -> Message:
    return Message(
        f"edgewatch/v1/hue/edge-1/events/{i}/evidence/clip.mp4", os.urandom(size), "evidence"
    )


def reading(i: int) -> Message:
    return Message(f"edgewatch/v1/hue/edge-1/hotspots/h{i}/reading", b"r" * 700, "reading")


def status(cam: str, state: bytes = b"online") -> Message:
    return Message(f"edgewatch/v1/hue/edge-1/cameras/{cam}/status", state, "status", retain=True)


def fill_with_events(sp: Spool) -> int:
    """Small events until one evicts (then no other kind fits); returns how many.
    In batches (one transaction each): a put per event would fsync thousands of times."""
    n = 0
    while not sp.dropped:
        sp.put(*(ev(n + i, 120) for i in range(100)))
        n += 100
    return n


def test_order_ack_and_survives_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    seqs = sp.put(ev(1), snap(2), ev(3))
    assert None not in seqs and seqs == sorted(seqs) and len(sp) == 3  # type: ignore[type-var]
    assert [r.payload for r in sp.after(0, 10)][1] == sp.after(seqs[0], 1)[0].payload  # type: ignore[arg-type]
    sp.ack(seqs[1])  # type: ignore[arg-type]
    sp.ack(seqs[1])  # type: ignore[arg-type]  # a second PUBACK for the same row is harmless
    assert [r.topic for r in sp.after(0, 10)] == [TOPIC, TOPIC]
    assert os.listdir(sp.files_dir) == []  # the snapshot's payload file went with its row
    assert sp.acked == {"snapshot": 1}
    sp.close()
    again = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    rows = again.after(0, 10)
    assert [r.payload[:6] for r in rows] == [b"000001", b"000003"]
    assert again.bytes == sum(len(r.payload) + len(r.topic) for r in rows)
    assert again.put(ev(4))[0] > seqs[-1]  # type: ignore[operator]  # seq numbers never go back


def test_large_payloads_are_files_and_come_back_intact(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=4 << 20)
    big_event = Message(TOPIC, os.urandom(40_000), "event")  # over INLINE_MAX: a file too
    msgs = [snap(1), clip(1), big_event, ev(2)]
    sp.put(*msgs)
    assert len(os.listdir(sp.files_dir)) == 3
    assert [(r.topic, r.payload, r.kind) for r in sp.after(0, 10)] == [
        (m.topic, m.payload, m.kind) for m in msgs
    ]
    sp.close()
    # A crash between writing a payload file and committing its row leaves an orphan;
    # a row whose file is gone (unlinked on PUBACK, DELETE not yet done) is removed.
    (sp.files_dir / "orphan").write_bytes(b"x" * 10)
    first = sorted(sp.files_dir.iterdir())[0]
    with sqlite3.connect(tmp_path / "s.db") as db:
        (seq,) = db.execute("SELECT seq FROM messages WHERE file = ?", (first.name,)).fetchone()
    first.unlink()
    again = Spool(tmp_path / "s.db", max_bytes=4 << 20)
    assert "orphan" not in os.listdir(again.files_dir)
    assert seq not in [r.seq for r in again.after(0, 10)] and len(again) == 3


def test_the_issue_cases_a_newcomer_evicts_only_lower_or_equal_value(tmp_path: Path) -> None:
    """#16: one 100 KB snapshot evicted 93 events, one reading 16; a 3 MiB clip with a
    1 MiB cap evicted all 200 events and was stored anyway, over the cap."""
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    n = fill_with_events(sp)
    evicted = sp.dropped["event"]
    assert n > 200 and sp.dropped == {"event": evicted}
    events = len(sp)
    assert sp.put(snap(1, 100_000)) == [None]
    assert sp.put(reading(1)) == [None]
    assert sp.put(clip(1, 3 << 20)) == [None]  # larger than the whole bound
    assert sp.dropped == {"event": evicted} and len(sp) == events  # not one event evicted
    assert sp.refused == {"snapshot": 1, "reading": 1, "evidence": 1}
    assert os.listdir(sp.files_dir) == []  # the refused payloads' files are gone
    assert sp.disk_bytes(exact=True) <= sp.max_bytes
    seq = sp.put(ev(n + 1))[0]  # an event of equal value: the oldest events make room
    assert seq is not None and sp.dropped["event"] > evicted
    assert sp.after(0, 1)[0].payload[:6] == b"%06d" % sp.dropped["event"]  # oldest first


def test_drop_order_least_valuable_first_oldest_first(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    sp.put(clip(1, 50_000), snap(1, 20_000), status("a"), reading(1))
    sp.put(clip(2, 50_000), snap(2, 20_000), status("b"), reading(2))
    n = 0
    while not sp.dropped:  # batches of 20 events until the first eviction
        sp.put(*(ev(n + i) for i in range(20)))
        n += 20
    assert sp.dropped == {"evidence": 1}  # the oldest clip went first, and alone
    kinds = [r.kind for r in sp.after(0, 7)]
    assert kinds == ["snapshot", "status", "reading", "evidence", "snapshot", "status", "reading"]
    while "event" not in sp.dropped:
        sp.put(*(ev(n + i) for i in range(20)))
        n += 20
    # Events were evicted only once nothing of lower value was left.
    assert {k: sp.dropped[k] for k in ("evidence", "snapshot", "status", "reading")} == {
        "evidence": 2,
        "snapshot": 2,
        "status": 2,
        "reading": 2,
    }
    assert {r.kind for r in sp.after(0, 10_000)} == {"event"}
    # A snapshot may evict only evidence and snapshots: with events alone it is refused.
    assert sp.put(snap(9)) == [None] and sp.refused == {"snapshot": 1}


def test_a_batch_stores_what_fits_and_a_refused_member_evicts_nothing(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    fill_with_events(sp)
    events = len(sp)
    # The snapshot is refused (only events to evict); its event goes in by evicting the
    # oldest event. Evictions of the refused member are rolled back (savepoint).
    evicted = sp.dropped["event"]
    seqs = sp.put(snap(1, 200_000), ev(10_000, 120))
    assert seqs[0] is None and seqs[1] is not None
    assert len(sp) == events and sp.dropped == {"event": evicted + 1}
    assert sp.refused == {"snapshot": 1}


def test_status_is_coalesced_per_topic(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    for state in (b"online", b"offline", b"online"):
        sp.put(status("cam", state))
    sp.put(status("cam2"))
    rows = sp.after(0, 10)
    assert [(r.topic.split("/")[-2], r.payload) for r in rows] == [
        ("cam", b"online"),
        ("cam2", b"online"),
    ]
    assert rows[0].retain and sp.dropped == {} and sp.superseded == {"status": 2}


def test_the_bound_holds_on_the_file_system(tmp_path: Path) -> None:
    """Mixed traffic through a 2 MiB spool: database, WAL, WAL index, payload files and the
    reserve together never pass the bound (#16: the WAL alone reached 7 MB under 1 MB)."""
    cap = 2 << 20
    sp = Spool(tmp_path / "s.db", max_bytes=cap)
    rng = random.Random(16)
    worst = 0
    for i in range(400):
        batch = []
        for j in range(rng.randint(1, 4)):
            pick, k = rng.random(), 4 * i + j
            if pick < 0.45:
                batch.append(Message(TOPIC, b"e" * rng.randint(300, 3000), "event"))
            elif pick < 0.6:
                batch.append(status(f"c{k % 40}", b"s" * rng.randint(200, 1500)))
            elif pick < 0.75:
                batch.append(reading(k % 9))
            elif pick < 0.95:
                batch.append(snap(k, rng.randint(2_000, 80_000)))
            else:
                batch.append(clip(k, rng.randint(50_000, 600_000)))
        sp.put(*batch)
        if rng.random() < 0.03:  # a little gets delivered
            for row in sp.after(0, rng.randint(1, 10)):
                sp.ack(row.seq)
        worst = max(worst, sp.disk_bytes(exact=True))
    assert worst <= cap, f"{worst} bytes on disk > bound {cap}"
    assert sp.dropped and sp.refused  # the bound was reached, often
    # The WAL is kept to its share of the bound.
    assert os.path.getsize(f"{sp.path}-wal") <= 2 * sp.wal_limit
    # The in-memory totals equal the database's.
    with sqlite3.connect(sp.path) as db:
        count, size = db.execute("SELECT COUNT(*), SUM(size) FROM messages").fetchone()
    assert (count, size) == (len(sp), sp.bytes)


def test_an_older_spool_is_converted(tmp_path: Path) -> None:
    """A spool written by the previous version (no payload files, no costs) opens."""
    path = tmp_path / "s.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
        " kind TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL)"
    )
    db.execute("CREATE INDEX messages_topic ON messages(topic)")
    for m in (ev(1), snap(1, 5000), ev(2)):
        db.execute(
            "INSERT INTO messages (topic, payload, qos, retain, kind, size, created)"
            " VALUES (?, ?, 1, 0, ?, ?, 0)",
            (m.topic, m.payload, m.kind, len(m.payload) + len(m.topic)),
        )
    db.close()
    sp = Spool(path, max_bytes=1 << 20)
    assert [r.kind for r in sp.after(0, 10)] == ["event", "snapshot", "event"]
    assert sp.cost > 0 and sp._pragma("auto_vacuum") == 1
    sp.put(ev(3))
    assert len(sp) == 4


def test_a_bound_below_the_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="below the minimum"):
        Spool(tmp_path / "s.db", max_bytes=MIN_BYTES - 1)


def test_reconnect_backoff_is_capped_exponential_with_jitter() -> None:
    from edge.ingest.reader import backoff_delay

    rng = random.Random(1)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (1000, 4.0)]:
        delays = [backoff_delay(attempt, 0.5, 4.0, rng) for _ in range(200)]
        assert cap / 2 <= min(delays) and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # jitter spreads reconnect storms
