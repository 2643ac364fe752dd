"""#16: the edge keeps alerts first through a full disk, and its threads through faults.

The disk is real: a tmpfs of 4 MiB mounted for the test (root is needed; CI runs as root),
filled by the spool during a broker outage and to the last page by ballast files. The
broker (secured mosquitto) and the hub are real processes. Every event the edge accepted
must reach the hub exactly once; what is dropped must be snapshots and clips, counted.
The figures go to docs/benchmarks/disk_full.json.

Also here: thread supervision (a thread that keeps dying fails ``edgewatch edge health``;
paho's network thread is started again), and the metrics server's default address.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from edge.analytics.objects import Transition
from edge.events.messages import EventEncoder
from edge.events.snapshot import render_snapshot
from edge.supervisor import Supervisor
from edge.transport.publisher import Publisher
from edge.transport.spool import Message, Spool, SpoolError
from edgewatch import contract, procs
from edgewatch.broker import free_port
from tests.helpers import Hub, Mosquitto, wait_for

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
FIGURES = ROOT / "docs" / "benchmarks" / "disk_full.json"
DISK_MIB = 4


# -- a small real disk -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.fail("the disk-full tests mount a tmpfs and need root (CI runs them as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a {DISK_MIB} MiB tmpfs at {mnt}: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_disk(path: Path, name: str = "ballast") -> list[Path]:
    """Write files until the file system has not one page left."""
    files: list[Path] = []
    for chunk in (1 << 20, 64 << 10, 4 << 10):
        while True:
            p = path / f"{name}-{len(files)}"
            try:
                with open(p, "wb") as fh:
                    fh.write(b"\0" * chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError:
                p.unlink(missing_ok=True)
                break
            files.append(p)
    assert free_bytes(path) < 4096
    return files


def ev(i: int, size: int = 900) -> Message:
    return Message("edgewatch/v1/hue/e/events", (b"%06d" % i) + b"e" * (size - 6), "event")


def db_totals(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages").fetchone()
    finally:
        db.close()
    return count, size


def test_a_full_disk_fails_puts_cleanly_and_nothing_accepted_is_lost(small_disk: Path) -> None:
    """#16: put reported "cannot rollback - no transaction is active", the totals drifted,
    and with the disk free again 10 real events were dropped."""
    other = small_disk / "other-data"
    other.write_bytes(b"\0" * (1 << 20))
    sp = Spool(small_disk / "spool.sqlite3", max_bytes=2 << 20)
    assert sp.reserve_path.exists()
    before = list(range(50))
    assert None not in sp.put(*(ev(i) for i in before))
    assert sp.checkpoint()
    ballast = fill_disk(small_disk)  # something else filled the disk
    during: list[int] = []
    error: SpoolError | None = None
    for i in range(50, 5000):
        try:
            seq = sp.put(ev(i))[0]
        except SpoolError as exc:
            error = exc
            break
        assert seq is not None
        during.append(i)
    assert error is not None, "the disk never filled"
    assert "full" in str(error) and "no transaction is active" not in str(error), error
    assert sp.reserve_released == 1 and during, "the reserve kept events coming for a while"
    assert db_totals(sp.path) == (len(sp), sp.bytes), "in-memory totals re-read after the fault"
    assert sp.failed == {"event": 1} and sp.dropped == {}
    # A snapshot has nothing of lower value to free: it is given up, counted, not raised
    # into the caller's thread as anything but SpoolError.
    with pytest.raises(SpoolError):
        sp.put(Message("edgewatch/v1/hue/e/events/x/snapshot", os.urandom(20_000), "snapshot"))
    assert sp.failed == {"event": 1, "snapshot": 1}

    for p in [*ballast, other]:  # the disk is free again
        p.unlink()
    after = list(range(5000, 5010))
    assert None not in sp.put(*(ev(i) for i in after))
    wait_for(lambda: sp.flush() or sp.reserve_path.exists(), 10, what="the reserve made again")
    want = [b"%06d" % i for i in before + during + after]
    assert [r.payload[:6] for r in sp.after(0, 100_000)] == want
    assert sp.dropped == {} and db_totals(sp.path) == (len(sp), sp.bytes)
    sp.close()
    again = Spool(small_disk / "spool.sqlite3", max_bytes=2 << 20)
    assert [r.payload[:6] for r in again.after(0, 100_000)] == want
    again.close()


# -- broker outage on a full disk, end to end ---------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, broker: Mosquitto, uid: str) -> Iterator[Hub]:
    h = Hub(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}", broker, f"hub-{uid}")
    h.start()
    yield h
    h.stop()


class FaultEmitter:
    """Real spool and publisher emitting incidents: a snapshot with the new event, the end
    event, some clips (evidence), flood readings and camera statuses."""

    def __init__(self, disk: Path, broker: Mosquitto, uid: str, max_bytes: int) -> None:
        self.site, self.edge_id = "hue", f"edge-{uid}"
        self.spool = Spool(disk / "spool.sqlite3", max_bytes=max_bytes)
        self.publisher = Publisher(
            broker.settings(self.edge_id, "edge", site="hue"),
            self.edge_id,
            self.spool,
            contract.edge_status_topic(self.site, self.edge_id),
        )
        self.encoder = EventEncoder(self.site, self.edge_id)
        self.rng = np.random.default_rng(16)
        self.jpegs = [
            render_snapshot(
                self.rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (10, 10, 60, 60), "car"
            )
            for _ in range(4)
        ]
        self.accepted: Counter[str] = Counter()  # messages stored, by kind
        self.not_stored: Counter[str] = Counter()
        self.event_messages: dict[str, int] = {}  # event id -> its event messages stored
        self.order: list[str] = []  # event ids in the order their first message was stored
        self.phase_of: dict[str, str] = {}
        self.n = 0

    def send(self, *msgs: Message) -> list[int | None]:
        try:
            seqs = self.publisher.send(*msgs)
        except SpoolError:
            seqs = [None] * len(msgs)
        for m, s in zip(msgs, seqs, strict=True):
            (self.not_stored if s is None else self.accepted)[m.kind] += 1
        return seqs

    def incident(self, phase: str) -> None:
        i, self.n = self.n, self.n + 1
        eid = uuid.uuid4()
        start = datetime.now(UTC) + timedelta(milliseconds=i)
        common: dict[str, Any] = dict(
            event_id=eid,
            label="car",
            start_time=start,
            score=0.9,
            box=(0.1, 0.1, 0.4, 0.4),
            box_px=(10, 10, 60, 60),
        )
        kw: dict[str, Any] = dict(
            kind="object", analytic="test", camera_id="cam", zone=None, location=None
        )
        new = Transition(type="new", seq=0, frame_time=start, snapshot=True, **common)
        end = Transition(type="end", seq=1, frame_time=start, end_time=start, **common)
        stored = self.send(*self.encoder.encode(new, jpeg=self.jpegs[i % 4], **kw))[-1:]
        if i % 4 == 0:
            topic = contract.evidence_topic(self.site, self.edge_id, eid, "clip.mp4")
            self.send(Message(topic, self.rng.bytes(250_000), "evidence"))
        stored += self.send(*self.encoder.encode(end, **kw))
        n = sum(s is not None for s in stored)
        if n:
            self.event_messages[str(eid)] = n
            self.order.append(str(eid))
            self.phase_of[str(eid)] = phase
        if i % 2 == 0:
            topic = contract.hotspot_topic(self.site, self.edge_id, "bridge")
            self.send(Message(topic, b'{"state": "dry", "n": %d}' % i, "reading", retain=True))
        topic = contract.camera_status_topic(self.site, self.edge_id, "cam")
        self.send(Message(topic, b'{"state": "online", "n": %d}' % i, "status", retain=True))


def test_broker_outage_on_a_full_disk_keeps_every_event(
    tmp_path: Path, small_disk: Path, broker: Mosquitto, hub: Hub, uid: str
) -> None:
    other = small_disk / "other-data"  # the disk is shared: 2 MiB are someone else's
    other.write_bytes(b"\0" * (2 << 20))
    cap = 3 << 20  # more than is free: the disk fills before the bound
    em = FaultEmitter(small_disk, broker, uid, cap)
    em.publisher.start()
    ballast: list[Path] = []
    dup_before = hub.metric("edgewatch_hub_duplicate_messages")
    try:
        wait_for(lambda: em.publisher.connected, 15, what="edge connected")
        for _ in range(5):
            em.incident("before_outage")
        wait_for(lambda: len(em.spool) == 0, 20, what="first incidents delivered")

        # 1. Broker outage: the spool fills the disk.
        broker.stop()
        while em.spool.storage_errors["put"] == 0:
            em.incident("before_fault")
            assert em.n < 2000, "the disk never filled"
        fault_at = em.n - 1  # this incident met the full disk: it counts as during the fault
        if em.order and em.phase_of[em.order[-1]] == "before_fault":
            em.phase_of[em.order[-1]] = "fault"
        for _ in range(40):
            em.incident("fault")
        # 2. Something else takes the last page too.
        em.spool.checkpoint()
        ballast += fill_disk(small_disk, "ballast-a")
        for _ in range(20):
            em.incident("fault")
        # 3. The broker is back while the disk is still full: the DELETE after PUBACK
        #    fails (the WAL was truncated and there is no page to grow it).
        em.spool.checkpoint()
        ballast += fill_disk(small_disk, "ballast-b")
        acks_failed_before = em.spool.storage_errors["ack"]
        broker.start()
        t_back = time.monotonic()
        wait_for(
            lambda: em.spool.storage_errors["ack"] > acks_failed_before,
            30,
            what="a failed delete after PUBACK",
        )
        wait_for(lambda: len(em.spool) == 0, 60, what="spool drained on the full disk")
        drained_s = time.monotonic() - t_back
        # 4. The disk is freed; the edge goes on by itself.
        for p in [*ballast, other]:
            p.unlink()
        t_free = time.monotonic()
        for _ in range(10):
            em.incident("after")
        wait_for(
            lambda: len(em.spool) == 0 and em.spool.pending_deletes == 0,
            30,
            what="spool empty after the disk was freed",
        )
        reserve_back = wait_for(
            lambda: em.spool.flush() or em.spool.reserve_path.exists(), 10, what="reserve back"
        )

        # Every event whose message the edge accepted reached the hub exactly once.
        def complete() -> list[dict] | None:
            got = hub.all_events(camera="cam", order="asc", sort="received_at")
            have = {e["id"] for e in got}
            return got if all(e in have for e in em.order) else None

        try:
            events = wait_for(complete, 90, interval=1.0, what="every accepted event at the hub")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; hub log: {hub.log_text()[-2000:]}") from None
        recovered_s = time.monotonic() - t_free
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)) == len(em.order), "each event once"
        assert ids == em.order, "in the order accepted"
        applied = {e["id"]: e["messages"] for e in events}
        twice = [e for e in em.order if applied[e] != em.event_messages[e]]
        assert not twice, f"messages applied != messages accepted: {twice[:5]}"
        duplicates = hub.metric("edgewatch_hub_duplicate_messages") - dup_before
    finally:
        em.publisher.stop(drain_timeout_s=0)
        em.spool.close()

    sp = em.spool
    # Alerts first: no event dropped, refused or given up; what went is snapshots and clips.
    assert sp.dropped["event"] == sp.refused["event"] == sp.failed["event"] == 0
    assert em.not_stored["event"] == 0
    lost = sp.dropped + sp.refused + sp.failed
    assert set(lost) <= {"snapshot", "evidence"}, lost
    assert lost["snapshot"] > 0 and lost["evidence"] > 0
    # Every message accepted is delivered or counted as dropped (statuses: or superseded).
    by_kind = {}
    for kind in ("event", "reading", "status", "snapshot", "evidence"):
        row = {
            "accepted": em.accepted[kind],
            "delivered": sp.acked[kind],
            "evicted": sp.dropped[kind],
            "superseded": sp.superseded[kind],
            "not_stored": em.not_stored[kind],
            "refused": sp.refused[kind],
            "failed": sp.failed[kind],
        }
        assert row["accepted"] == row["delivered"] + row["evicted"] + row["superseded"], (
            kind,
            row,
        )
        assert row["not_stored"] == row["refused"] + row["failed"], (kind, row)
        by_kind[kind] = row
    deaths = {s.name: s.deaths for s in em.publisher.supervisor.states() if s.deaths}
    assert deaths == {} and em.publisher.callback_errors == 0, "no thread died"
    phases = Counter(em.phase_of.values())
    figures = {
        "test": "tests/test_disk_full.py::test_broker_outage_on_a_full_disk_keeps_every_event",
        "setup": {
            "disk": f"tmpfs {DISK_MIB} MiB, 2 MiB of it other data",
            "spool_max_bytes": cap,
            "incident": f"snapshot (JPEG ~{len(em.jpegs[0]) // 1000} KB) + new event, end "
            "event; a 250 KB clip every 4th; a flood reading every 2nd; a camera status each",
            "sequence": "broker down; spool fills the disk; 40 incidents; ballast takes the "
            "last page; 20 incidents; WAL truncated, ballast again; broker up on the full "
            "disk; drained; disk freed; 10 incidents",
        },
        "events": {
            "accepted_before_fault": phases["before_outage"] + phases["before_fault"],
            "accepted_during_fault": phases["fault"],
            "accepted_after_disk_freed": phases["after"],
            "accepted": len(em.order),
            "delivered_to_hub": len(ids),
            "duplicated_at_hub": len(ids) - len(set(ids)),
            "lost": len([e for e in em.order if e not in set(ids)]),
            "not_stored": em.not_stored["event"],
        },
        "hub_duplicate_messages_absorbed": duplicates,
        "first_full_disk_at_incident": fault_at,
        "by_kind": by_kind,
        "storage_errors": dict(sp.storage_errors),
        "reserve_released": sp.reserve_released,
        "reserve_restored": reserve_back,
        "thread_deaths": deaths,
        "drained_on_full_disk_s": round(drained_s, 2),
        "all_at_hub_after_disk_freed_s": round(recovered_s, 2),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2) + "\n"
    (ARTIFACTS / "disk_full.json").write_text(text)
    FIGURES.write_text(text)
    print(f"\ndisk_full: {json.dumps(figures)}")


# -- thread supervision ------------------------------------------------------------------


def edge_health(url: str) -> tuple[int, str]:
    done = subprocess.run(
        procs.edgewatch_cmd("edge", "health", "--url", url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_thread_that_keeps_dying_is_restarted_and_fails_edge_health() -> None:
    registry = CollectorRegistry()
    beat = Gauge("edgewatch_worker_heartbeat_timestamp_seconds", "heartbeat", registry=registry)
    stop = threading.Event()
    sup = Supervisor(stop, window_s=3.0, max_deaths=3, backoff_s=0.01, backoff_max_s=0.05)
    registry.register(sup.collector())
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{port}/metrics"
    faults = {"left": 6}
    runs: list[int] = []

    def status_loop() -> None:  # fails six times, then works
        runs.append(1)
        while not stop.is_set():
            beat.set_to_current_time()
            if faults["left"] > 0:
                faults["left"] -= 1
                raise RuntimeError("status loop fault")
            stop.wait(0.05)

    try:
        beat.set_to_current_time()
        assert edge_health(url)[0] == 0
        t = sup.thread("status", status_loop)
        t.start()
        wait_for(lambda: sup.failing("status"), 10, what="the thread marked failing")
        code, out = edge_health(url)
        assert code == 1 and "keep dying: status (" in out, out
        # It stops dying: restarted in place, and healthy once the window has passed.
        wait_for(lambda: edge_health(url)[0] == 0, 30, interval=0.5, what="healthy again")
        assert t.is_alive() and len(runs) == 7
        (st,) = sup.states()
        assert (st.deaths, st.restarts) == (6, 6) and "status loop fault" in (st.last_error or "")

        # A thread made elsewhere (an inference engine's) is watched and started again.
        box: dict[str, threading.Thread] = {}

        def engine_loop() -> None:
            stop.wait()

        box["t"] = threading.Thread(target=lambda: 1 / 0, name="engine-m", daemon=True)
        box["t"].start()
        box["t"].join()

        def restart() -> None:
            box["t"] = sup.thread("engine-m", engine_loop)
            box["t"].start()

        sup.watch("engine-m", lambda: box["t"].is_alive(), restart)
        sup.check()
        engine = next(s for s in sup.states() if s.name == "engine-m")
        assert engine.deaths == 1 and "ZeroDivisionError" in (engine.last_error or "")
        assert box["t"].is_alive()
    finally:
        stop.set()
        server.shutdown()


def test_the_mqtt_network_thread_is_started_again(
    tmp_path: Path, broker: Mosquitto, uid: str
) -> None:
    """#16: an exception in a paho callback ended the network thread for good; the broker
    dropped the client and it never reconnected."""
    sp = Spool(tmp_path / "spool.sqlite3", max_bytes=1 << 20)
    pub = Publisher(
        broker.settings(f"edge-{uid}", "edge", site="hue"),
        f"edge-{uid}",
        sp,
        contract.edge_status_topic("hue", f"edge-{uid}"),
    )
    pub.start()
    try:
        wait_for(lambda: pub.connected, 15, what="connected")
        topic = contract.events_topic("hue", f"edge-{uid}")
        pub.send(Message(topic, b"{}", "event"))
        wait_for(lambda: len(sp) == 0, 15, what="first message delivered")
        # The #16 fault: an exception escaping on_publish (there, the DELETE after PUBACK on
        # a full disk) inside paho's network thread, which paho re-raises and dies of.
        guarded = pub._client.on_publish
        armed = threading.Event()
        armed.set()

        def on_publish(*args: Any) -> None:
            if armed.is_set():
                armed.clear()
                raise sqlite3.OperationalError("database or disk is full")
            guarded(*args)

        pub._client.on_publish = on_publish
        for i in range(20):
            pub.send(Message(topic, b'{"i": %d}' % i, "event"))
        wait_for(
            lambda: any(s.name == "mqtt-network" and s.deaths for s in pub.supervisor.states()),
            15,
            what="the network thread's death seen",
        )
        wait_for(lambda: len(sp) == 0, 30, what="everything delivered after the restart")
        (st,) = [s for s in pub.supervisor.states() if s.name == "mqtt-network"]
        assert st.deaths == 1 and "disk is full" in (st.last_error or "")
        assert pub.connects >= 2 and sp.acked["event"] == 21
    finally:
        pub.stop(drain_timeout_s=0)
        sp.close()


def test_the_worker_serves_metrics_on_loopback_and_is_healthy(
    tmp_path: Path, broker: Mosquitto, uid: str
) -> None:
    from edge.config import EdgeConfig
    from edge.worker import EdgeWorker

    port = free_port()
    cfg = EdgeConfig.model_validate(
        {
            "edge_id": f"edge-{uid}",
            "site": "hue",
            "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
            "spool_dir": str(tmp_path / "spool"),
            "metrics_port": port,
        }
    )
    assert cfg.metrics_host == "127.0.0.1"
    worker = EdgeWorker(cfg)
    worker.start()
    try:
        listening = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # LISTEN
                    listening.add(local.rsplit(":", 1)[0])
        assert listening == {"0100007F"}, listening  # 127.0.0.1 only, not 0.0.0.0
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: edge_health(url)[0] == 0, 20, what="the worker healthy")
        text = edge_health(url)[1]
        assert text.startswith("healthy")
    finally:
        worker.stop()
