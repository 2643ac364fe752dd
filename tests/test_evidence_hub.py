"""Evidence at the hub: files stored write-once, checked against the manifest published
with the event, served only to roles that may see evidence (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.config import HubConfig
from edge.events.evidence import PacketRing, TrackHistory, assemble
from edgewatch import contract
from tests.helpers import ensure_user
from tests.test_auth import PASSWORDS, ROLES, token
from tests.test_evidence import T0, fill
from tests.test_hub import EDGE, EV_TOPIC, SITE, event, handle


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    for name, password in PASSWORDS.items():
        ensure_user(db_url, name, ROLES[name], password)
    with TestClient(create_app(HubConfig(database_url=db_url), consume=False)) as c:
        yield c


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, h264_video: Path):  # type: ignore[no-untyped-def]
    ring = PacketRing(seconds=30)
    fill(ring, h264_video, limit_s=12)
    hist = TrackHistory()
    for k in range(100):
        hist.add(T0 + k * 0.1, np.array([3]), np.array([[100, 100, 160, 150]], np.float32))
    return assemble(
        tmp_path_factory.mktemp("pkg") / "p", ring, hist, track_id=3, t=T0 + 6.0,
        frame_wh=(320, 240), metadata={"rule": "red_light"}, pre_s=2, post_s=2,
    )  # fmt: skip


def send(client: TestClient, eid: uuid.UUID, name: str, data: bytes) -> str:
    return handle(client, contract.evidence_topic(SITE, EDGE, eid, name), data)


def test_package_is_stored_verified_and_guarded(client: TestClient, package) -> None:  # type: ignore[no-untyped-def]
    eid = uuid.uuid4()
    attrs = {"manifest_sha256": package.manifest_sha256, "evidence": "complete"}
    handle(client, EV_TOPIC, event(eid, "new", 0, kind="red_light", attributes=attrs))
    for name in package.files:
        assert send(client, eid, name, (package.folder / name).read_bytes()) == "stored"
    assert send(client, eid, "at.jpg", (package.folder / "at.jpg").read_bytes()) == "duplicate"
    op = token(client, "olivia")
    ev = client.get(f"/api/v1/events/{eid}/evidence", headers=op).json()
    assert ev["verified"] is True and ev["problems"] == []
    assert {f["name"] for f in ev["files"]} == set(package.files)
    clip = client.get(f"/api/v1/events/{eid}/evidence/clip.mp4", headers=op)
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    assert clip.content == (package.folder / "clip.mp4").read_bytes()
    detail = client.get(f"/api/v1/events/{eid}", headers=op).json()
    assert detail["evidence_files"]["clip.mp4"] == f"/api/v1/events/{eid}/evidence/clip.mp4"
    viewer = token(client, "victor")
    assert client.get(f"/api/v1/events/{eid}/evidence", headers=viewer).status_code == 403
    assert client.get(f"/api/v1/events/{eid}/evidence/clip.mp4", headers=viewer).status_code == 403
    assert client.get(f"/api/v1/events/{eid}", headers=viewer).json()["evidence_files"] == {}
    assert client.get(f"/api/v1/events/{eid}/evidence/nope.jpg", headers=op).status_code == 404


def test_bad_or_altered_evidence_is_refused_or_flagged(client: TestClient, package) -> None:  # type: ignore[no-untyped-def]
    eid = uuid.uuid4()
    attrs = {"manifest_sha256": package.manifest_sha256}
    handle(client, EV_TOPIC, event(eid, "new", 0, kind="red_light", attributes=attrs))
    assert send(client, eid, "at.jpg", b"not a jpeg") == "rejected"
    assert send(client, eid, "clip.mp4", b"\x00" * 64) == "rejected"
    assert send(client, eid, "metadata.json", b"{not json") == "rejected"
    topic = contract.evidence_topic(SITE, EDGE, eid, "other.exe")
    assert handle(client, topic, b"MZ") == "rejected"  # not an evidence file name
    # an altered frame: stored (write-once from then on), but the check says so
    real = (package.folder / "at.jpg").read_bytes()
    altered = real[:-10] + b"\x00" * 8 + real[-2:]
    for name in package.files:
        data = altered if name == "at.jpg" else (package.folder / name).read_bytes()
        send(client, eid, name, data)
    assert send(client, eid, "at.jpg", real) == "rejected"  # no quiet replacement
    ev = client.get(f"/api/v1/events/{eid}/evidence", headers=token(client, "olivia")).json()
    assert ev["verified"] is False and ev["problems"] == [
        "at.jpg: SHA-256 differs from the manifest"
    ]
    # a manifest other than the one published with the event
    eid2 = uuid.uuid4()
    handle(client, EV_TOPIC, event(eid2, "new", 0, kind="red_light", attributes=attrs))
    doc = json.loads((package.folder / "manifest.json").read_text())
    doc["files"].pop("at.jpg")
    send(client, eid2, "manifest.json", json.dumps(doc).encode())
    ev = client.get(f"/api/v1/events/{eid2}/evidence", headers=token(client, "olivia")).json()
    assert "differs from the one published" in ev["problems"][0]
    metrics = client.get("/metrics", headers=token(client, "olivia")).text
    assert 'edgewatch_hub_messages_rejected_total{reason="conflict"}' in metrics
