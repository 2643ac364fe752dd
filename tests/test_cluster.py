"""Several hubs on one PostgreSQL (docs/cluster.md), on real parts: two ``edgewatch hub
run`` processes on one database with the same hub account and client id, the tests'
mosquitto, webhook receivers on loopback.

What is checked is what the issue asks: one leader at a time; the leader killed with -9
in the middle of a burst and the standby ingesting again within 5 s, every event at the
API exactly once; an escalation the dead leader scheduled firing once on the new one; a
live stream on one hub seeing what the other ingested; the cluster mode refused on SQLite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from central.storage.models import EventRow
from edgewatch import contract, procs
from edgewatch.configfile import ConfigError, validate_config
from tests.conftest import PG_ADMIN
from tests.helpers import (
    Hub,
    Mosquitto,
    Process,
    bearer_token,
    ensure_user,
    read_alert_stream,
    wait_for,
)
from tests.hubs import Peer
from tests.receivers import WebhookReceiver

ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
SITE = "hue"
ADMIN = ("admin", "admin-password-for-tests")


def record(name: str, data: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"\n{name}: {json.dumps(data, default=str)}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (the cluster mode exists only there): skipped when
    PostgreSQL is absent, failed instead with EDGEWATCH_REQUIRE_POSTGRES=1, as the
    ``db_url`` fixture does."""
    try:
        import psycopg
    except ImportError:
        psycopg = None  # type: ignore[assignment]
    name = f"edgewatch_test_{uuid.uuid4().hex[:10]}"
    try:
        if psycopg is None:
            raise RuntimeError("psycopg not installed")
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN} ({type(exc).__name__})"
        if os.environ.get("EDGEWATCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and EDGEWATCH_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ClusterHub(Hub):
    """A hub of the cluster: its own work dir and ``cluster.hub_id``; a standby is not
    on the broker (the leader holds the session), so ``start`` waits for the API only."""

    def __init__(
        self, tmp: Path, hub_id: str, db_url: str, broker: Mosquitto, client_id: str,
        extra: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        workdir = tmp / hub_id
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            workdir, db_url, broker, client_id, {**(extra or {}), "cluster": {"hub_id": hub_id}}
        )
        self.hub_id = hub_id

    def start(self) -> None:
        Process.start(self)
        if not procs.wait_port(self.port, timeout=30):
            raise RuntimeError(f"hub did not start:\n{self.log_text()[-3000:]}")
        wait_for(lambda: self.get("/healthz")["status"] == "ok", 20, what=f"{self.hub_id} up")

    def _auth(self) -> dict[str, str]:
        # the admin is made once for both hubs (start_pair): Hub._auth would reset its
        # password, which ends the other hub's sessions (the database is the same)
        if self.token is None:
            self.token = bearer_token(self.base, *ADMIN)
        return {"Authorization": f"Bearer {self.token}"}

    def cluster(self) -> dict[str, Any]:
        return self.get("/api/v1/cluster")  # type: ignore[no-any-return]

    def kill(self) -> float:
        """kill -9: no shutdown, no goodbye to the broker or the database."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        t = time.monotonic()
        self.proc.wait(10)
        self.proc = None
        return t

    def total(self) -> int:
        return int(self.get("/api/v1/events?limit=1")["total"])


Pair = Callable[..., tuple[ClusterHub, ClusterHub]]


@pytest.fixture
def start_pair(tmp_path: Path, broker: Mosquitto, pg_url: str) -> Iterator[Pair]:
    """Starts hub a (first: it leads) and hub b (standby) on one database, with the same
    hub account and client id; both are stopped at the end whatever happened."""
    started: list[ClusterHub] = []

    def start(extra: dict[str, Any] | None = None) -> tuple[ClusterHub, ClusterHub]:
        client_id = f"hub-{uuid.uuid4().hex[:8]}"
        a = ClusterHub(tmp_path, "hub-a", pg_url, broker, client_id, extra)
        b = ClusterHub(tmp_path, "hub-b", pg_url, broker, client_id, extra)
        ensure_user(pg_url, ADMIN[0], "admin", ADMIN[1])
        started.extend((a, b))
        a.start()
        wait_for(lambda: a.get("/healthz")["mqtt"], 15, what="hub a on the broker")
        b.start()
        for h in (a, b):
            state = wait_for(
                lambda h=h: (s := h.cluster())["hubs"] == ["hub-a", "hub-b"]
                and s["live_listening"] and s, 15,
                what=f"both hubs seen from {h.hub_id}, listening",
            )  # fmt: skip
            assert state["leader_hub_id"] == "hub-a"
            assert state["leader"] is (h is a) and state["clustered"] is True
        assert a.metric("edgewatch_hub_leader") == 1 and b.metric("edgewatch_hub_leader") == 0
        assert b.get("/healthz")["mqtt"] is False  # the standby leaves the session to a
        return a, b

    yield start
    for h in started:
        h.stop()


def event(edge: str, camera: str, kind: str = "intrusion", **kw: Any) -> contract.EventMessage:
    now = datetime.now(UTC)
    fields: dict[str, Any] = dict(
        id=uuid.uuid4(), type="new", seq=0, kind=kind, analytic="zone", label="person",
        site=SITE, edge_id=edge, camera_id=camera, start_time=now, frame_time=now,
        score=0.8, box=(0.4, 0.4, 0.6, 0.7), zone="gate",
    )  # fmt: skip
    fields.update(kw)
    return contract.EventMessage(**fields)


def publish(pub: Any, msg: contract.EventMessage, wait: bool = True) -> None:
    info = pub.publish(
        contract.events_topic(SITE, msg.edge_id), msg.model_dump_json().encode(), qos=1
    )
    if wait:
        info.wait_for_publish(10)


def close(*clients: Any) -> None:
    for c in clients:
        c.disconnect()
        c.loop_stop()


def test_cluster_enabled_on_sqlite_is_refused_naming_the_key(tmp_path: Path) -> None:
    from central.config import HubConfig

    data = {"database_url": f"sqlite:///{tmp_path / 'hub.sqlite3'}", "cluster": {"enabled": True}}
    with pytest.raises(ConfigError) as err:
        validate_config(data, HubConfig, tmp_path / "hub.yaml")
    text = "\n".join(err.value.lines())
    assert "cluster.enabled" in text and "PostgreSQL" in text
    # SQLite without the key stays the single hub it always was; PostgreSQL defaults on
    assert validate_config({"database_url": data["database_url"]}, HubConfig).clustered is False
    pg = validate_config({"database_url": "postgresql+psycopg://u@h/db"}, HubConfig)
    assert pg.clustered is True
    # and the command says so and exits 2, as for any config error
    hub = Process(tmp_path, "hub", ["hub", "run"], data)
    hub.start()
    assert hub.proc is not None and hub.proc.wait(30) == 2
    assert "cluster.enabled: true needs PostgreSQL" in hub.log_text()


class Stream:
    """A live stream (``/api/v1/alerts/stream``) read on a thread: the alert ids in order."""

    def __init__(self, hub: ClusterHub) -> None:
        tok = bearer_token(hub.base, *ADMIN)
        req = urllib.request.Request(
            f"{hub.base}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {tok}"}
        )
        self.resp = urllib.request.urlopen(req, timeout=30)
        self.ids: list[str] = []
        self.hello = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.hello.wait(10), "no hello on the stream"

    def _read(self) -> None:
        try:
            read_alert_stream(self.resp, self.hello.set, lambda doc: self.ids.append(doc["id"]))
        except Exception:  # closed by the test
            pass

    def close(self) -> None:
        # the reader thread is blocked in a read: end the connection under it first
        try:
            self.resp.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        except (AttributeError, OSError):
            pass
        self.resp.close()


def test_live_stream_on_one_hub_sees_what_the_other_ingested(
    broker: Mosquitto, start_pair: Pair
) -> None:
    a, b = start_pair()
    edge = f"edge-{uuid.uuid4().hex[:8]}"
    pub = broker.client(edge, "edge", site=SITE)
    on_a, on_b = Stream(a), Stream(b)
    try:
        first, second = event(edge, "cam-1"), event(edge, "cam-1")
        publish(pub, first)
        # ingested by a (the leader), announced over NOTIFY, loaded from the database by b
        wait_for(lambda: str(first.id) in on_b.ids, 10, what="b's stream shows a's event")
        assert b.metric("edgewatch_hub_messages_received") == 0  # b ingests nothing
        publish(pub, second)
        wait_for(lambda: str(second.id) in on_a.ids, 10, what="a's stream shows the second")
        wait_for(lambda: str(second.id) in on_b.ids, 10, what="b's stream shows the second")
        # a's own notice comes back to a and is skipped: each alert once on each stream
        assert on_a.ids == [str(first.id), str(second.id)]
        assert on_b.ids == [str(first.id), str(second.id)]
        # an action on b (the standby) reaches a's stream too
        code, _ = b.post(f"/api/v1/events/{first.id}/ack", {"note": "seen"})
        assert code == 200, _
        wait_for(lambda: on_a.ids.count(str(first.id)) == 2, 10, what="b's ack on a's stream")
    finally:
        on_a.close()
        on_b.close()
        close(pub)


def test_leader_killed_mid_burst_loses_and_duplicates_nothing(
    broker: Mosquitto, start_pair: Pair
) -> None:
    n = 2000
    a, b = start_pair()
    edge = f"edge-{uuid.uuid4().hex[:8]}"
    pub = broker.client(edge, "edge", site=SITE)
    msgs = [event(edge, f"cam-{i % 4}") for i in range(n)]
    done = threading.Event()

    def burst() -> None:  # about 250 a second: the kill lands in the middle of it
        for i, m in enumerate(msgs):
            publish(pub, m, wait=False)
            if i % 25 == 24:
                time.sleep(0.1)
        done.set()

    sender = threading.Thread(target=burst, daemon=True)
    try:
        sender.start()
        wait_for(lambda: a.total() >= n // 4, 30, interval=0.05, what="a quarter stored by a")
        t_kill = a.kill()
        at_kill = b.total()
        assert at_kill < n, "the burst was over before the kill"

        def first(pred: Callable[[], bool]) -> float:
            wait_for(pred, 10, interval=0.05, what=pred.__doc__ or "")
            return time.monotonic() - t_kill

        takeover_s = first(lambda: b.cluster()["leader"])
        resume_s = first(lambda: b.total() > at_kill)
        assert takeover_s < 5 and resume_s < 5, (takeover_s, resume_s)
        assert done.wait(30), "the edge could not publish the burst"
        wait_for(lambda: b.total() >= n, 60, what=f"all {n} events stored")
        time.sleep(1.0)  # anything more (a duplicate row) would show now
        items = b.all_events()
        ids = [e["id"] for e in items]
        assert len(ids) == n and len(set(ids)) == n  # none lost, none listed twice
        assert set(ids) == {str(m.id) for m in msgs}
        assert all(e["messages"] == 1 for e in items)  # redeliveries absorbed, not counted
        state = wait_for(
            lambda: (s := b.cluster())["hubs"] == ["hub-b"] and s, 10, what="a gone from pg"
        )
        assert state["leader_hub_id"] == "hub-b" and state["leader"] is True
        assert b.metric("edgewatch_hub_leader") == 1
        assert '"hub is the ingest leader"' in b.log_text()
        record(
            "cluster_failover",
            {
                "events": n,
                "stored_when_killed": at_kill,
                "takeover_s": round(takeover_s, 2),
                "ingest_resumed_s": round(resume_s, 2),
                "duplicates_absorbed_by_b": b.metric("edgewatch_hub_duplicate_messages"),
                "listed": len(ids),
            },
        )
    finally:
        close(pub)


def test_escalation_scheduled_by_a_dead_leader_fires_once_on_the_new_one(
    broker: Mosquitto, start_pair: Pair
) -> None:
    rangers, ioc = WebhookReceiver("ranger-secret"), WebhookReceiver("ioc-secret")
    ack_s = 8
    teams = [
        {
            "id": "rangers",
            "kinds": ["forest_fire"],
            "ack_timeout_s": ack_s,
            "escalate_to": "ioc",
            "channels": [{"type": "webhook", "url": rangers.url, "secret": "ranger-secret"}],
        },
        {
            "id": "ioc",
            "kinds": ["forest_fire"],
            "ack_timeout_s": 600,
            "channels": [{"type": "webhook", "url": ioc.url, "secret": "ioc-secret"}],
        },
    ]
    extra = {"teams": teams, "incidents": {"retry_initial_s": 0.3, "retry_max_s": 1.0}}
    try:
        a, b = start_pair(extra)
    except BaseException:
        rangers.stop()
        ioc.stop()
        raise
    edge = f"edge-{uuid.uuid4().hex[:8]}"
    pub = broker.client(edge, "edge", site=SITE)
    try:
        fire = event(edge, "cam-hill", "forest_fire", analytic="fire", label="fire")
        t0 = time.monotonic()
        publish(pub, fire)
        hook = wait_for(lambda: rangers.valid(), 10, what="the rangers' webhook, sent by a")
        incident = hook[0].body["incident_id"]

        def sent() -> bool:
            d = b.get(f"/api/v1/incidents/{incident}")
            return bool(d["deliveries"]) and all(x["state"] == "sent" for x in d["deliveries"])

        wait_for(sent, 10, what="the rangers' delivery marked sent")
        assert not ioc.valid()
        t_kill = a.kill()
        assert t_kill - t0 < ack_s - 1, "too slow to kill a before the escalation was due"

        def escalations() -> list[Any]:
            return [
                r for r in ioc.valid()
                if r.body.get("incident_id") == incident and r.body.get("reason") == "escalation"
            ]  # fmt: skip

        got = wait_for(escalations, 20, what="the escalation, fired by b")
        assert got[0].time >= time.time() - (time.monotonic() - t_kill)  # after a died
        time.sleep(3.0)  # a second firing (two leaders, a lost update) would show now
        assert len(escalations()) == 1
        assert len(rangers.valid()) == 1  # what a sent and marked sent is not sent again
        d = b.get(f"/api/v1/incidents/{incident}")
        assert d["escalation_level"] == 1
        assert sum(a_["action"] == "escalated" for a_ in d["audit"]) == 1
        assert '"incident escalated"' in b.log_text()
    finally:
        close(pub)
        rangers.stop()
        ioc.stop()


def test_watch_list_change_saved_on_the_standby_reaches_the_edge(
    broker: Mosquitto, start_pair: Pair
) -> None:
    """b has no broker connection: the change is in the database, a's delivery loop
    publishes it (woken by b's notice, else at its next resync)."""
    a, b = start_pair()
    edge = f"edge-{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.client(edge, "edge", site=SITE))
    topic = contract.watchlist_topic(SITE, edge)
    try:
        peer.sub(topic)
        peer.pub(contract.edge_status_topic(SITE, edge), b"online", retain=True)

        def current() -> bool:  # (what was sent is known to the hub that sent it: a)
            doc = a.get("/api/v1/watchlist")
            return any(e["edge_id"] == edge and e["current"] for e in doc["edges"])

        wait_for(current, 20, what="the (empty) list sent to the edge by a")
        t0 = time.monotonic()
        code, entry = b.post("/api/v1/watchlist", {"plate": "75A-123.45", "reason": "stolen"})
        assert code == 201, entry

        def listed() -> bool:
            return any(
                [x.plate for x in m.entries] == ["75A12345"]
                for m in peer.messages(topic, contract.WatchlistMessage)
            )

        wait_for(listed, 20, interval=0.05, what="the list with the plate at the edge")
        record("cluster_standby_watchlist", {"delay_s": round(time.monotonic() - t0, 2)})
        assert b.metric("edgewatch_hub_messages_received") == 0  # b never touched MQTT
    finally:
        peer.close()


def test_leader_duties_stop_and_start_again(broker: Mosquitto, db_url: str) -> None:
    """Leadership lost and regained (``stop`` then ``start``) restarts every duty: the
    consumer reconnects and ingests, the delivery loops, dispatcher, watchdog and
    retention run again. On SQLite (always the leader) and PostgreSQL (the lock freed
    and taken again)."""
    from tests.hubs import hub_app, live_cfg

    cfg = live_cfg(broker, db_url, "hub-restart")
    edge = f"edge-{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.client(edge, "edge", site=SITE))
    try:
        with hub_app(cfg, True, {}) as (_client, app):
            lead, consumer = app.state.leadership, app.state.consumer
            assert lead.leading and lead.clustered is db_url.startswith("postgresql")
            wait_for(consumer.connected.is_set, 15, what="consumer connected")
            threads = {
                "dispatcher": app.state.dispatcher,
                "watchdog": app.state.watchdog,
                "retention": app.state.retention,
                "watchlist": app.state.watchlist,
                "camera_configs": app.state.camera_configs,
            }
            for _round in range(2):
                lead.stop()
                assert not lead.leading and not consumer.connected.is_set()
                assert lead.gauge._value.get() == 0
                assert all(svc._thread is None for svc in threads.values()), threads
                lead.start()
                assert lead.leading and lead.gauge._value.get() == 1
                for name, svc in threads.items():
                    assert svc._thread is not None and svc._thread.is_alive(), name
                wait_for(consumer.connected.is_set, 15, what="consumer connected again")
            msg = event(edge, "cam-r")
            publish(peer.client, msg)

            def stored() -> bool:
                with app.state.sessions() as session:
                    return session.get(EventRow, str(msg.id)) is not None

            wait_for(
                stored,
                15,
                what="the event ingested by the restarted consumer",
            )
            # the watch-list loop runs again: the edge, once known, gets its list
            peer.pub(contract.edge_status_topic(SITE, edge), b"online", retain=True)
            topic = contract.watchlist_topic(SITE, edge)
            peer.sub(topic)
            wait_for(
                lambda: app.state.watchlist.sent().get((SITE, edge)) is not None,
                15,
                what="the list published by the restarted loop",
            )
            assert lead.changes == 5  # gained, then lost and gained twice
    finally:
        close(peer.client)


def test_a_duty_restarted_after_a_slow_stop_does_not_run_twice() -> None:
    """Leadership lost while a duty's loop is stuck (a publish waiting on a dead broker, a
    query on a dead database): its stop gives up waiting, leadership comes back, the duty
    starts again. The thread left behind must end when it comes unstuck, not run beside
    the new one (two dispatchers over the same rows, two watchdogs)."""
    from central.delivery.retained import RetainedSync

    gate = threading.Event()
    stuck = threading.Event()

    class Slow(RetainedSync):
        thread_name = "slow"

        def sync(self) -> int:
            if not gate.is_set():
                stuck.set()
                gate.wait(10)  # stuck in a publish
            return 0

    svc = Slow(lambda topic, payload: None, lambda: True, poll_s=0.05, resync_s=0.05)
    svc.start_loop()
    assert stuck.wait(5)
    old = svc._thread
    assert old is not None
    svc._stop.set()  # what stop() leaves behind once its join timed out
    svc._thread = None
    svc.start_loop()  # leadership regained
    new = svc._thread
    gate.set()  # the old loop comes unstuck
    old.join(5)
    try:
        assert not old.is_alive(), "the old loop runs on beside the new one"
        assert new is not None and new.is_alive()
    finally:
        svc.stop()
