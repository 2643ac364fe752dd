from __future__ import annotations

from pathlib import Path

from edge.transport.spool import Message, Spool


def ev(i: int, size: int = 100) -> Message:
    return Message(f"t/events/{i}", b"e" * size, kind="event")


def snap(i: int, size: int = 1000) -> Message:
    return Message(f"t/snap/{i}", b"s" * size, kind="snapshot")


def test_order_ack_and_survives_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    seqs = sp.put(ev(1), snap(2), ev(3))
    assert seqs == sorted(seqs) and len(sp) == 3
    sp.ack(seqs[1])
    sp.ack(seqs[1])  # a second PUBACK for the same row is harmless
    assert [r.topic for r in sp.after(0, 10)] == ["t/events/1", "t/events/3"]
    assert [r.topic for r in sp.after(seqs[0], 10)] == ["t/events/3"]
    sp.close()
    again = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    assert [r.topic for r in again.after(0, 10)] == ["t/events/1", "t/events/3"]
    assert again.bytes == sum(len(r.payload) + len(r.topic) for r in again.after(0, 10))
    assert again.put(ev(4))[0] > seqs[-1]  # sequence numbers never go back


def test_drop_policy_snapshots_first_then_status_then_events(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=3000)
    sp.put(snap(1), ev(1), snap(2), ev(2))
    sp.put(Message("t/status", b"x" * 200, kind="status", retain=True))
    assert sp.dropped == {}
    sp.put(snap(3, size=1200))  # needs room: the oldest snapshot goes
    assert sp.dropped["snapshot"] == 1
    assert "t/snap/1" not in [r.topic for r in sp.after(0, 100)]
    sp.put(ev(3, size=2700))  # needs more: all snapshots, then the status
    assert sp.dropped == {"snapshot": 3, "status": 1}
    assert [r.topic for r in sp.after(0, 100)] == ["t/events/1", "t/events/2", "t/events/3"]
    sp.put(ev(4, size=2000))  # only events left: the oldest go first
    assert sp.dropped["event"] == 3
    assert [r.topic for r in sp.after(0, 100)] == ["t/events/4"]
    assert sp.bytes == 2010 <= 3000


def test_status_is_coalesced_per_topic(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_bytes=1 << 20)
    for state in (b"online", b"offline", b"online"):
        sp.put(Message("cam/status", state, kind="status", retain=True))
    sp.put(Message("cam2/status", b"online", kind="status", retain=True))
    rows = sp.after(0, 10)
    assert [(r.topic, r.payload) for r in rows] == [
        ("cam/status", b"online"),
        ("cam2/status", b"online"),
    ]
    assert rows[0].retain and sp.dropped == {}


def test_reconnect_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    from edge.ingest.reader import backoff_delay

    rng = random.Random(1)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (1000, 4.0)]:
        delays = [backoff_delay(attempt, 0.5, 4.0, rng) for _ in range(200)]
        assert cap / 2 <= min(delays) and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # jitter spreads reconnect storms
