"""A bounded fleet on the hub: paged cameras, a watchdog that does not scan the fleet,
a cap on camera_offline alerts, and retention of snapshots/evidence of unknown events.

In process, on SQLite and PostgreSQL; rows are inserted directly where thousands are needed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from central.app import create_app
from central.config import HubConfig
from central.retention import expire_orphans
from central.storage.models import CameraRow, EdgeRow, EventRow, EvidenceFileRow, SnapshotRow
from central.watchdog import KIND
from edgewatch import contract

SITE = "hue"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def camera(camera_id: str, state: str, at: datetime, edge: str = "edge-01") -> dict[str, Any]:
    return {
        "site": SITE,
        "edge_id": edge,
        "camera_id": camera_id,
        "state": state,
        "fps": 0.0 if state == "offline" else 10.0,
        "last_frame_time": None,
        "reconnects": 0,
        "error": "connection refused" if state == "offline" else None,
        "lat": None,
        "lon": None,
        "updated_at": at,
        "received_at": at,
        "pipeline": None,
        "degraded_reason": "analysis 4/s of 10/s" if state == "degraded" else None,
    }


def add(app: FastAPI, rows: list[dict[str, Any]], edges: dict[str, str] | None = None) -> None:
    with app.state.sessions.begin() as session:
        if rows:
            session.execute(insert(CameraRow), rows)
        for edge_id, state in (edges or {}).items():
            session.add(
                EdgeRow(site=SITE, edge_id=edge_id, state=state, updated_at=datetime.now(UTC))
            )


def set_camera(app: FastAPI, camera_id: str, state: str, at: datetime) -> None:
    with app.state.sessions.begin() as session:
        session.execute(
            update(CameraRow)
            .where(CameraRow.camera_id == camera_id)
            .values(state=state, updated_at=at, received_at=at)
        )


def sample(app: FastAPI, name: str, **labels: str) -> float:
    return app.state.metrics.registry.get_sample_value(name, labels) or 0.0


class RowCounter:
    """Statements a session runs and the rows they bring back into Python."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.statements = self.rows = 0
        event.listen(sessions, "do_orm_execute", self._count)

    def reset(self) -> RowCounter:
        self.statements = self.rows = 0
        return self

    def _count(self, state: ORMExecuteState) -> Any:
        self.statements += 1
        if not state.is_select:
            return None
        frozen = state.invoke_statement().freeze()
        self.rows += len(frozen.data)
        return frozen()


@pytest.fixture
def bare(db_url: str) -> Iterator[FastAPI]:
    """The hub's app without its lifespan: no background threads, the watchdog by hand."""
    app = create_app(
        HubConfig(
            database_url=db_url,
            limits={"max_offline_alerts_per_min": 50},
            alerts={"camera_offline_grace_s": 120},
        ),
        consume=False,
    )
    yield app
    app.state.engine.dispose()


# -- /api/v1/cameras ------------------------------------------------------------------------


def test_cameras_are_paged_with_a_total(hub: TestClient) -> None:
    app = hub.app
    now = datetime.now(UTC)
    rows = []
    for e in range(5):  # 5 edges x 500 cameras; edge-4 is offline (its LWT)
        for i in range(500):
            state = "degraded" if i % 50 == 0 else "offline" if i % 100 == 1 else "online"
            rows.append(camera(f"cam-{i:04d}", state, now, edge=f"edge-{e}"))
    add(app, rows, {f"edge-{e}": "offline" if e == 4 else "online" for e in range(5)})  # type: ignore[arg-type]

    first = hub.get("/api/v1/cameras")
    assert first.status_code == 200
    page = first.json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (100, 2500, 100, 0)
    assert len(first.content) < 100_000  # the whole fleet was 2.6 MB
    # the counts are the fleet's, not the page's; edge-4's cameras are offline
    assert page["states"] == {"online": 1940, "degraded": 40, "offline": 520}
    assert sum(page["states"].values()) == 2500

    seen = []
    for offset in (0, 1000, 2000):
        p = hub.get(f"/api/v1/cameras?limit=1000&offset={offset}").json()
        assert p["total"] == 2500 and p["offset"] == offset
        seen += [(c["site"], c["camera_id"], c["edge_id"]) for c in p["items"]]
    assert len(seen) == 2500 and len(set(seen)) == 2500
    assert seen == sorted(seen)  # a stable order, so pages neither overlap nor skip
    tail = hub.get("/api/v1/cameras?limit=1000&offset=2400").json()
    assert len(tail["items"]) == 100 and tail["items"][-1]["camera_id"] == "cam-0499"
    assert hub.get("/api/v1/cameras?offset=2500").json()["items"] == []
    for bad in ("limit=1001", "limit=0", "offset=-1"):
        assert hub.get(f"/api/v1/cameras?{bad}").status_code == 422, bad

    off = hub.get("/api/v1/cameras?state=offline&limit=1000").json()
    assert off["total"] == 520 and {c["state"] for c in off["items"]} == {"offline"}
    assert sum(c["edge_id"] == "edge-4" for c in off["items"]) == 500
    assert hub.get("/api/v1/cameras?state=degraded").json()["total"] == 40
    one = hub.get("/api/v1/cameras?edge=edge-2&limit=5").json()
    assert one["total"] == 500 and {c["edge_id"] for c in one["items"]} == {"edge-2"}
    assert hub.get("/api/v1/cameras", headers={"Authorization": ""}).status_code == 401


# -- the watchdog --------------------------------------------------------------------------


def test_watchdog_work_follows_the_offline_cameras_not_the_fleet(bare: FastAPI) -> None:
    dog = bare.state.watchdog
    now = datetime.now(UTC)
    fleet = [camera(f"ok-{i:05d}", "online", now - timedelta(seconds=5)) for i in range(10_000)]
    fleet += [
        camera("down", "offline", now - timedelta(seconds=300)),  # past the 120 s grace
        camera("flaky", "offline", now - timedelta(seconds=10)),  # inside it
        camera("back", "offline", now - timedelta(seconds=300)),
    ]
    fleet += [camera(f"far-{i}", "online", now, edge="edge-02") for i in range(3)]
    add(bare, fleet, {"edge-01": "online", "edge-02": "offline"})
    with bare.state.sessions.begin() as session:  # edge-02's LWT came long ago
        session.execute(update(EdgeRow).values(updated_at=now - timedelta(seconds=600)))
    counter = RowCounter(bare.state.sessions)

    opened = dog.tick(now)
    assert len(opened) == 5  # down, back and edge-02's three
    assert counter.rows <= 10 and counter.statements <= 4, vars(counter)

    set_camera(bare, "back", "online", now + timedelta(seconds=1))
    counter.reset()
    ended = dog.tick(now + timedelta(seconds=2))
    assert len(ended) == 1 and ended[0] in opened
    assert counter.rows <= 5, vars(counter)

    counter.reset()
    assert dog.tick(now + timedelta(seconds=3)) == []  # steady state: only "flaky" is looked at
    assert counter.rows <= 2, vars(counter)

    with bare.state.sessions() as session:
        active = session.scalars(
            select(EventRow.camera_id).where(EventRow.kind == KIND, EventRow.state == "active")
        ).all()
    assert sorted(active) == ["down", "far-0", "far-1", "far-2"]
    set_camera(bare, "flaky", "offline", now + timedelta(seconds=130))  # a later status
    assert len(dog.tick(now + timedelta(seconds=131))) == 1  # its outage began at `now - 10`


def test_watchdog_caps_the_alerts_it_opens_and_counts_the_rest(bare: FastAPI) -> None:
    dog = bare.state.watchdog
    assert dog.max_alerts_per_min == 50  # from limits.max_offline_alerts_per_min
    now = datetime.now(UTC)
    add(
        bare,
        [
            camera(f"cam-{i:05d}", "offline", now - timedelta(hours=1, seconds=i))
            for i in range(10_000)
        ],
    )
    capped = "edgewatch_hub_offline_alerts_capped_total"
    held = "edgewatch_hub_offline_alerts_held"

    def alerted() -> list[str]:
        with bare.state.sessions() as session:
            q = select(EventRow.camera_id).where(EventRow.kind == KIND)
            return sorted(session.scalars(q))

    assert len(dog.tick(now)) == 50
    assert alerted() == [f"cam-{i:05d}" for i in range(9950, 10_000)]  # longest offline first
    assert (sample(bare, capped), sample(bare, held), dog.held) == (9950, 9950, 9950)

    assert dog.tick(now + timedelta(seconds=1)) == []  # the same minute: no slot left
    assert sample(bare, capped) == 9950  # each held camera is counted once

    set_camera(bare, "cam-00000", "online", now + timedelta(seconds=2))  # back before its turn
    assert dog.tick(now + timedelta(seconds=3)) == []
    assert sample(bare, held) == 9949

    assert len(dog.tick(now + timedelta(seconds=61))) == 50  # the next minute's slots
    assert alerted()[:50] == [f"cam-{i:05d}" for i in range(9900, 9950)]
    assert len(alerted()) == 100 and "cam-00000" not in alerted()
    assert (sample(bare, capped), sample(bare, held)) == (9950, 9899)


# -- retention of orphans ------------------------------------------------------------------


def test_snapshots_and_evidence_of_unknown_events_expire(hub: TestClient) -> None:
    app = hub.app
    ingest = app.state.ingestor.handle
    known, old1, old2, young = (str(uuid.uuid4()) for _ in range(4))
    t0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    doc = {
        "schema_version": 1,
        "id": known,
        "type": "new",
        "seq": 0,
        "kind": "object",
        "analytic": "vehicles",
        "label": "car",
        "site": SITE,
        "edge_id": "edge-01",
        "camera_id": "cam-1",
        "start_time": t0.isoformat(),
        "frame_time": t0.isoformat(),
        "score": 0.9,
    }
    assert ingest(contract.events_topic(SITE, "edge-01"), json.dumps(doc).encode()) == "stored"
    for eid in (known, old1, old2, young):
        assert ingest(contract.snapshot_topic(SITE, "edge-01", eid), JPEG) == "stored"
        for name in ("before.jpg", "at.jpg"):
            assert ingest(contract.evidence_topic(SITE, "edge-01", eid, name), JPEG) == "stored"
    now = datetime.now(UTC)
    long_ago = now - timedelta(seconds=601)  # the default TTL is 600 s
    with app.state.sessions.begin() as session:
        for table in (SnapshotRow, EvidenceFileRow):
            session.execute(
                update(table)
                .where(table.event_id.in_([known, old1, old2]))
                .values(received_at=long_ago)
            )

    def left(table: Any) -> list[str]:
        with app.state.sessions() as session:
            return sorted(session.scalars(select(table.event_id).distinct()))

    # pages of one id at a time: every page is visited, only the expired orphans go
    deleted = expire_orphans(app.state.sessions, now, app.state.cfg.limits.orphan_snapshot_ttl_s, 1)
    assert deleted == {"snapshot": 2, "evidence": 4}
    assert left(SnapshotRow) == left(EvidenceFileRow) == sorted([known, young])

    # the job: a young orphan whose event never comes goes once it is older than the TTL
    job = app.state.retention
    assert job.run_once(now) == {"snapshot": 0, "evidence": 0}
    assert job.run_once(now + timedelta(seconds=700)) == {"snapshot": 1, "evidence": 2}
    assert left(SnapshotRow) == left(EvidenceFileRow) == [known]
    assert sample(app, "edgewatch_hub_orphans_expired_total", kind="snapshot") == 1
    assert sample(app, "edgewatch_hub_orphans_expired_total", kind="evidence") == 2
    with app.state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EventRow)) == 1
