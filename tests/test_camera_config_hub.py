"""Cameras configured at the hub, on real parts: mosquitto with the documented accounts and
ACLs, the hub application with its MQTT consumer, on SQLite and PostgreSQL.

An operator PUTs a camera's configuration; the edge's own account, subscribed to its
config topic, gets every camera the hub holds for it, retained, with a hash it can check,
and the real URL (only that edge can read the topic). Invalid configurations are refused
with the key path and nothing is sent; the password never comes back from the API nor sits
in the config column; moving a camera re-sends both edges; templates and CSV imports are
all or nothing; the frame and preview an edge publishes reach the set-up API, and another
edge cannot publish them for it.

Whenever a test asserts that something did *not* arrive or was *not* stored, it first waits
for a later genuine message from the same client (the broker and the hub keep its order).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from central.config import HubConfig
from central.services.camera_config import CameraConfigService, split_password, with_password
from edgewatch import contract
from tests import hubs
from tests.helpers import Mosquitto, wait_for
from tests.hubs import bearer as hub_bearer
from tests.hubs import live_cfg

pytestmark = pytest.mark.e2e

SITE = "hue"
PASSWORDS = {"op": "operator-password", "vic": "viewer-password", "ran": "ranger-password"}
ROLES = {"op": "operator", "vic": "viewer", "ran": "ranger"}
SECRET = "s3cret-Pw.7781"
URL = f"rtsp://admin:{SECRET}@10.20.0.5:554/Streaming/Channels/101"
SHOWN = "rtsp://admin:***@10.20.0.5:554/Streaming/Channels/101"


def jpeg(seed: int = 0) -> bytes:
    img = np.full((48, 64, 3), seed % 256, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


def camera(cid: str, url: str = URL, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": cid,
        "url": url,
        "location": {"lat": 16.4637, "lon": 107.5562},
        "bearing_deg": 90.0,
        "analytics": [
            {
                "type": "objects",
                "name": "road",
                "classes": ["car", "truck"],
                "zone": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]],
            }
        ],
    }
    doc.update(extra)
    return doc


USERS = {u: (ROLES[u], PASSWORDS[u]) for u in PASSWORDS}


class Peer(hubs.Peer):
    def configs(self, topic: str) -> list[contract.EdgeConfigMessage]:
        """Every message received on ``topic``, parsed as strictly as the edge parses it."""
        return self.messages(topic, contract.EdgeConfigMessage)

    def status(self, edge_id: str, cid: str, **kw: Any) -> None:
        msg = contract.CameraStatus(
            camera_id=cid, state="online", fps=5.0, reconnects=0, updated_at=contract.utcnow(), **kw
        )
        self.pub(
            contract.camera_status_topic(SITE, edge_id, cid),
            msg.model_dump_json(exclude_none=True).encode(),
            retain=True,
        )


def bearer(client: TestClient, user: str) -> dict[str, str]:
    return hub_bearer(client, user, PASSWORDS[user])


def hub_cfg(broker: Mosquitto, db_url: str) -> HubConfig:
    return live_cfg(broker, db_url, "hub-cc")


@contextmanager
def hub_app(cfg: HubConfig, consume: bool) -> Iterator[tuple[TestClient, CameraConfigService]]:
    with hubs.hub_app(cfg, consume, USERS) as (client, app):
        yield client, app.state.camera_configs


@pytest.fixture
def live_hub(broker: Mosquitto, db_url: str) -> Iterator[tuple[TestClient, CameraConfigService]]:
    """The hub with its MQTT consumer on its own hub account (a fresh one per test)."""
    with hub_app(hub_cfg(broker, db_url), consume=True) as hub:
        yield hub


@pytest.fixture
def api_hub(db_url: str) -> Iterator[tuple[TestClient, CameraConfigService]]:
    """The hub without a broker: the API and the configurations, nothing sent."""
    with hub_app(HubConfig(database_url=db_url), consume=False) as hub:
        yield hub


def put(
    client: TestClient,
    h: dict[str, str],
    cid: str,
    doc: dict[str, Any],
    edge: str,
    site: str = SITE,
    comment: str | None = None,
) -> Any:
    body: dict[str, Any] = {"site": site, "edge_id": edge, "config": doc}
    if comment is not None:
        body["comment"] = comment
    return client.put(f"/api/v1/cameras/{cid}/config", json=body, headers=h)


def entry_of(msg: contract.EdgeConfigMessage, cid: str) -> contract.CameraConfigEntry | None:
    return next((e for e in msg.cameras if e.camera_id == cid), None)


def test_a_camera_put_at_the_hub_reaches_its_edge_with_a_hash_it_can_check(
    broker: Mosquitto, live_hub: tuple[TestClient, CameraConfigService]
) -> None:
    client, service = live_hub
    op = bearer(client, "op")
    u = uuid.uuid4().hex[:6]
    edge_a, edge_b, cid = f"edge-a-{u}", f"edge-b-{u}", f"cam-{u}"
    topic_a = contract.edge_config_topic(SITE, edge_a)
    a = Peer(broker.client(edge_a, "edge", site=SITE))
    b = Peer(broker.client(edge_b, "edge", site=SITE))
    try:
        a.sub(topic_a)
        b.sub(topic_a)  # B tries to read A's cameras: the ACL says no
        b.sub(f"{contract.ROOT}/config/#")
        r = put(client, op, cid, camera(cid), edge_a, comment="first set-up")
        assert r.status_code == 200, r.text
        saved = r.json()
        assert (saved["camera_id"], saved["version"], saved["changed"]) == (cid, 1, True)

        def with_camera(peer: Peer, topic: str, version: str) -> contract.EdgeConfigMessage | None:
            for msg in peer.configs(topic):
                e = entry_of(msg, cid)
                if e is not None and e.config_version == version:
                    return msg
            return None

        msg = wait_for(lambda: with_camera(a, topic_a, saved["config_version"]), 20, what="A")
        entry = entry_of(msg, cid)
        assert entry is not None and [e.camera_id for e in msg.cameras] == [cid]
        # the edge checks what it got: the hash is of the document itself, the real URL in it
        assert contract.config_hash(entry.config) == entry.config_version
        assert entry.config["url"] == URL
        assert entry.config == camera(cid)
        assert msg.version >= int(contract.utcnow().timestamp() * 1000) - 600_000
        # the API shows it without the password, and that the edge does not run it yet
        got = client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()
        assert got["config"]["url"] == SHOWN and SECRET not in json.dumps(got)
        assert (got["site"], got["edge_id"], got["version"]) == (SITE, edge_a, 1)
        assert got["config_version"] == saved["config_version"]
        assert (got["running"], got["applied"], got["edge_version"]) == (None, False, msg.version)
        wait_for(
            lambda: client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()["published"],
            10,
            what="published",
        )

        # An invalid change: 422 with the key path, and nothing sent.
        bad = camera(cid)
        bad["analytics"][0]["zone"] = [[0.1, 0.1], [0.2, 0.2]]
        r = put(client, op, cid, bad, edge_a)
        assert r.status_code == 422, r.text
        assert {"loc": "analytics.0.zone", "msg": "a zone needs at least 3 points"} in r.json()[
            "detail"
        ]
        r = put(client, op, cid, camera("other-id"), edge_a)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == "id"
        r = put(client, op, cid, camera(cid, bearing_deg=400), edge_a)
        assert r.status_code == 422 and [d["loc"] for d in r.json()["detail"]] == ["bearing_deg"]
        r = put(client, op, cid, camera(cid, colour="blue"), edge_a)
        assert r.status_code == 422 and r.json()["detail"][0] == {
            "loc": "colour",
            "msg": "unknown key (check its spelling)",
        }
        # a valid change: the next message A gets is that one (nothing came in between)
        moved = camera(cid)
        moved["analytics"][0]["zone"] = [[0.2, 0.4], [0.8, 0.4], [0.8, 0.9], [0.2, 0.9]]
        r = put(client, op, cid, moved, edge_a, comment="zone onto the lane")
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        second = r.json()["config_version"]
        assert second != saved["config_version"]
        wait_for(lambda: with_camera(a, topic_a, second), 20, what="A gets version 2")
        got_versions = [entry_of(m, cid).config_version for m in a.configs(topic_a)]  # type: ignore[union-attr]
        assert got_versions == [saved["config_version"], second]
        assert [m.version for m in a.configs(topic_a)] == sorted(
            {m.version for m in a.configs(topic_a)}
        )
        # B read none of it, by name or by wildcard
        assert topic_a not in b.topics()
        # the broker keeps it: edge A restarting gets the latest on subscribing
        a.close()
        a = Peer(broker.client(edge_a, "edge", site=SITE))
        a.sub(topic_a)
        kept = wait_for(lambda: a.configs(topic_a), 10, what="the retained message")
        assert [entry_of(m, cid).config_version for m in kept] == [second]  # type: ignore[union-attr]
        assert all(retained for t, _, retained in a.got if t == topic_a)
        history = client.get(f"/api/v1/cameras/{cid}/config/history", headers=op).json()
        assert [(h["version"], h["author"], h["comment"]) for h in history] == [
            (2, "op", "zone onto the lane"),
            (1, "op", "first set-up"),
        ]
        assert history[0]["changes"] == ["analytics.road changed: zone"]
        assert history[1]["changes"] == ["created"]

        # The edge reports what it runs; /api/v1/cameras shows both versions.
        a.status(edge_a, cid, config_version=saved["config_version"], config_error=(
            "analytics.0.zone: a zone needs at least 3 points"
        ))  # fmt: skip

        def listed() -> dict[str, Any] | None:
            items = client.get(f"/api/v1/cameras?edge={edge_a}", headers=op).json()["items"]
            return items[0] if items and items[0]["config_version"] else None

        cam = wait_for(listed, 20, what="the camera's status")
        assert cam["config_version"] == saved["config_version"]
        assert cam["config_version_wanted"] == second
        assert cam["config_error"].startswith("analytics.0.zone")
        a.status(edge_a, cid, config_version=second)
        wait_for(
            lambda: client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()["applied"],
            20,
            what="the edge runs version 2",
        )
        cam = client.get(f"/api/v1/cameras?edge={edge_a}", headers=op).json()["items"][0]
        assert cam["config_version"] == cam["config_version_wanted"] == second
        assert cam["config_error"] is None
        assert client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()["running"] == second
        # a camera the hub does not configure has no wanted version
        a.status(edge_a, f"local-{u}")
        wait_for(
            lambda: client.get(f"/api/v1/cameras?edge={edge_a}", headers=op).json()["total"] == 2,
            20,
            what="the second camera",
        )
        items = client.get(f"/api/v1/cameras?edge={edge_a}", headers=op).json()["items"]
        local = next(i for i in items if i["camera_id"] == f"local-{u}")
        assert local["config_version"] is None and local["config_version_wanted"] is None
        assert service.sent()[(SITE, edge_a)] == a.configs(topic_a)[-1].version
    finally:
        a.close()
        b.close()


def test_moving_a_camera_resends_both_edges(
    broker: Mosquitto, live_hub: tuple[TestClient, CameraConfigService]
) -> None:
    client, _service = live_hub
    op = bearer(client, "op")
    u = uuid.uuid4().hex[:6]
    edge_a, edge_b = f"edge-a-{u}", f"edge-b-{u}"
    stay, mover = f"stay-{u}", f"mover-{u}"
    topic_a, topic_b = (contract.edge_config_topic(SITE, e) for e in (edge_a, edge_b))
    a = Peer(broker.client(edge_a, "edge", site=SITE))
    b = Peer(broker.client(edge_b, "edge", site=SITE))
    try:
        a.sub(topic_a)
        b.sub(topic_b)
        assert put(client, op, stay, camera(stay), edge_a).status_code == 200
        assert put(client, op, mover, camera(mover), edge_a).status_code == 200
        wait_for(
            lambda: any(len(m.cameras) == 2 for m in a.configs(topic_a)), 20, what="A has both"
        )
        r = put(client, op, mover, camera(mover, url=SHOWN), edge_b, comment="to the new box")
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        on_b = wait_for(
            lambda: next((m for m in b.configs(topic_b) if entry_of(m, mover)), None),
            20,
            what="B gets the camera",
        )
        wait_for(
            lambda: [e.camera_id for e in a.configs(topic_a)[-1].cameras] == [stay],
            20,
            what="A without it",
        )
        entry = entry_of(on_b, mover)
        assert entry is not None and entry.config["url"] == URL  # *** kept the password
        assert entry.config_version == r.json()["config_version"]
        got = client.get(f"/api/v1/cameras/{mover}/config", headers=op).json()
        assert (got["site"], got["edge_id"]) == (SITE, edge_b)
        history = client.get(f"/api/v1/cameras/{mover}/config/history", headers=op).json()
        assert history[0]["changes"] == [f"moved from {SITE}/{edge_a} to {SITE}/{edge_b}"]
        assert (history[0]["edge_id"], history[1]["edge_id"]) == (edge_b, edge_a)
        # the last camera leaving an edge sends it an empty list, on purpose
        assert client.delete(f"/api/v1/cameras/{stay}/config", headers=op).status_code == 204
        wait_for(lambda: a.configs(topic_a)[-1].cameras == [], 20, what="A emptied")
        assert client.get(f"/api/v1/cameras/{stay}/config", headers=op).status_code == 404
        assert client.get(f"/api/v1/cameras/{stay}/config/history", headers=op).json()[0][
            "changes"
        ] == ["deleted"]
    finally:
        a.close()
        b.close()


def test_the_hub_resends_after_the_broker_lost_its_retained_copies(
    tmp_path: Path, db_url: str
) -> None:
    """A broker restarted without persistence has forgotten every retained message: the
    hub, reconnecting, publishes each edge's cameras again; a new hub start raises the
    versions (they never go back) and sends nothing different."""
    broker = Mosquitto(tmp_path / "mq", persistence=False)
    broker.start()
    u = uuid.uuid4().hex[:6]
    edge_a, cid = f"edge-a-{u}", f"cam-{u}"
    topic = contract.edge_config_topic(SITE, edge_a)
    try:
        cfg = hub_cfg(broker, db_url)
        with hub_app(cfg, consume=True) as (client, _service):
            op = bearer(client, "op")
            r = put(client, op, cid, camera(cid), edge_a)
            assert r.status_code == 200
            wanted = r.json()["config_version"]
            a = Peer(broker.client(edge_a, "edge", site=SITE))
            a.sub(topic)
            first = wait_for(lambda: a.configs(topic), 20, what="the cameras")[0]
            a.close()
            broker.stop()
            broker.start()
            a = Peer(broker.client(edge_a, "edge", site=SITE))
            try:
                a.sub(topic)
                again = wait_for(lambda: a.configs(topic), 40, what="sent again")[0]
            finally:
                a.close()
            assert again.version == first.version
            assert [e.config_version for e in again.cameras] == [wanted]
        with hub_app(cfg, consume=True):  # a hub start
            a = Peer(broker.client(edge_a, "edge", site=SITE))
            try:
                a.sub(topic)
                newer = wait_for(
                    lambda: [m for m in a.configs(topic) if m.version > first.version],
                    20,
                    what="a newer version",
                )[0]
            finally:
                a.close()
            assert [e.config_version for e in newer.cameras] == [wanted]
    finally:
        broker.stop()


def test_frames_and_previews_from_the_edge_reach_the_set_up_api(
    broker: Mosquitto, live_hub: tuple[TestClient, CameraConfigService]
) -> None:
    client, _service = live_hub
    op, vic, ran = (bearer(client, n) for n in ("op", "vic", "ran"))
    u = uuid.uuid4().hex[:6]
    edge_a, edge_b = f"edge-a-{u}", f"edge-b-{u}"
    cam_a, cam_b, stranger, configured = f"cam-a-{u}", f"cam-b-{u}", f"made-up-{u}", f"cfg-{u}"
    a = Peer(broker.client(edge_a, "edge", site=SITE))
    b = Peer(broker.client(edge_b, "edge", site=SITE))
    try:
        a.status(edge_a, cam_a)
        b.status(edge_b, cam_b)
        assert put(client, op, configured, camera(configured), edge_a).status_code == 200
        wait_for(
            lambda: client.get("/api/v1/cameras", headers=op).json()["total"] >= 2,
            20,
            what="both statuses",
        )
        # Refused: A writing B's camera frame (the broker), frames of cameras the hub does not
        # know on A, wrong previews, oversized frames, and what is not a JPEG (the hub).
        a.pub(contract.camera_frame_topic(SITE, edge_b, cam_b), jpeg(9), retain=True)
        a.pub(contract.camera_frame_topic(SITE, edge_a, stranger), jpeg(8))
        a.pub(contract.camera_frame_topic(SITE, edge_a, cam_b), jpeg(7))  # B's camera, on A
        a.pub(contract.camera_frame_topic(SITE, edge_a, cam_a), b"GIF89a not a jpeg")
        big = jpeg(6) + b"\0" * (1024 * 1024)
        a.pub(contract.camera_frame_topic(SITE, edge_a, cam_a), big)
        frame = jpeg(1)
        preview = contract.CameraPreview(
            camera_id=cam_a,
            time=contract.utcnow(),
            width=64,
            height=48,
            sha256=hashlib.sha256(frame).hexdigest(),
            config_version="0123456789abcdef",
            detections=[contract.DetectionRef(box=(0.1, 0.2, 0.3, 0.4), label="car", score=0.8)],
            readings={"road": {"count": 3.0}},
        )
        wrong = preview.model_copy(update={"camera_id": cam_b})
        a.pub(
            contract.camera_preview_topic(SITE, edge_a, cam_a),
            wrong.model_dump_json().encode(),
        )
        a.pub(contract.camera_preview_topic(SITE, edge_a, cam_a), b'{"camera_id": 1}')
        # then the genuine ones (and a frame of the camera the hub configured on A)
        a.pub(contract.camera_frame_topic(SITE, edge_a, configured), jpeg(2), retain=True)
        a.pub(contract.camera_frame_topic(SITE, edge_a, cam_a), frame, retain=True)
        a.pub(
            contract.camera_preview_topic(SITE, edge_a, cam_a),
            preview.model_dump_json(exclude_none=True).encode(),
            retain=True,
        )
        got = wait_for(
            lambda: (
                (r := client.get(f"/api/v1/cameras/{cam_a}/preview", headers=op)).status_code == 200
                and r.json()
            ),
            20,
            what="the preview",
        )
        assert contract.CameraPreview.model_validate(got) == preview
        r = client.get(f"/api/v1/cameras/{cam_a}/frame.jpg", headers=op)
        assert r.status_code == 200 and r.content == frame
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["etag"] == f'"{hashlib.sha256(frame).hexdigest()}"' == f'"{got["sha256"]}"'
        again = client.get(
            f"/api/v1/cameras/{cam_a}/frame.jpg", headers={**op, "If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
        cfg_frame = client.get(f"/api/v1/cameras/{configured}/frame.jpg", headers=op)
        assert cfg_frame.status_code == 200 and cfg_frame.content == jpeg(2)
        for cid in (cam_b, stranger):  # nothing of the refused ones was kept
            assert client.get(f"/api/v1/cameras/{cid}/frame.jpg", headers=op).status_code == 404
            assert client.get(f"/api/v1/cameras/{cid}/preview", headers=op).status_code == 404
        # video is for roles that may see it: rangers yes, viewers no
        assert client.get(f"/api/v1/cameras/{cam_a}/frame.jpg", headers=vic).status_code == 403
        assert client.get(f"/api/v1/cameras/{cam_a}/preview", headers=vic).status_code == 403
        assert client.get(f"/api/v1/cameras/{cam_a}/frame.jpg", headers=ran).status_code == 200
        assert client.get(f"/api/v1/cameras/{cam_a}/frame.jpg").status_code == 401
        # B's own frame is stored for B
        b.pub(contract.camera_frame_topic(SITE, edge_b, cam_b), jpeg(3), retain=True)
        wait_for(
            lambda: client.get(f"/api/v1/cameras/{cam_b}/frame.jpg", headers=op).content == jpeg(3),
            20,
            what="B's frame",
        )
    finally:
        a.close()
        b.close()


def test_the_password_is_never_shown_and_stars_keep_it(
    api_hub: tuple[TestClient, CameraConfigService], db_url: str
) -> None:
    client, service = api_hub
    op = bearer(client, "op")
    cid = "cam-secret"
    r = put(client, op, cid, camera(cid), "edge-1")
    assert r.status_code == 200, r.text
    first = r.json()["config_version"]
    got = client.get(f"/api/v1/cameras/{cid}/config", headers=op)
    assert got.json()["config"]["url"] == SHOWN
    # *** keeps it: the same document again changes nothing
    r = put(client, op, cid, camera(cid, url=SHOWN), "edge-1")
    assert r.json() == {"camera_id": cid, "version": 1, "config_version": first, "changed": False}
    # *** with another host keeps the password for the new address
    r = put(client, op, cid, camera(cid, url=SHOWN.replace("10.20.0.5", "10.20.0.6")), "edge-1")
    assert r.json()["version"] == 2
    with service.sessions() as session:
        sent = service.message(session, SITE, "edge-1").cameras[0].config
    assert sent["url"] == URL.replace("10.20.0.5", "10.20.0.6")
    assert contract.config_hash(sent) == r.json()["config_version"]
    # a new password replaces it (said in the history, never shown)
    r = put(
        client,
        op,
        cid,
        camera(cid, url=URL.replace(SECRET, "n3w-pass").replace(".5:", ".6:")),
        "edge-1",
    )
    assert r.json()["version"] == 3
    history = client.get(f"/api/v1/cameras/{cid}/config/history", headers=op).json()
    assert history[0]["changes"] == ["url credentials changed"]
    assert history[1]["changes"] == ["url changed"]
    for doc in (client.get(f"/api/v1/cameras/{cid}/config", headers=op).json(), history):
        dumped = json.dumps(doc)
        assert SECRET not in dumped and "n3w-pass" not in dumped and "***" in dumped
    # not in the database's config columns either, nor readable in its secret column
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT config, url_secret FROM camera_configs")).all()
        hist = conn.execute(text("SELECT config FROM camera_config_history")).all()
    engine.dispose()
    stored = json.dumps([str(x) for row in (*rows, *hist) for x in row])
    assert SECRET not in stored and "n3w-pass" not in stored
    assert rows[0][1] and "n3w" not in rows[0][1]
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                data = f.read_bytes()
                assert SECRET.encode() not in data and b"n3w-pass" not in data, f
    # a user name alone stays; no password is no secret
    r = put(client, op, cid, camera(cid, url="rtsp://viewer@10.20.0.6/s"), "edge-1")
    assert r.status_code == 200
    assert client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()["config"]["url"] == (
        "rtsp://viewer@10.20.0.6/s"
    )
    # *** with nothing stored is an error at the URL
    r = put(client, op, cid, camera(cid, url=SHOWN), "edge-1")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == "url"
    r = put(client, op, "cam-new", camera("cam-new", url=SHOWN), "edge-1")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == "url"


def test_the_record_stream_uses_the_cameras_password_and_never_shows_it(
    api_hub: tuple[TestClient, CameraConfigService], db_url: str
) -> None:
    """Camera roles: `url` is the detect (sub-)stream, `record_url` the main stream of the
    same camera. Its password is url's: stored once, encrypted; sent to the edge in both."""
    client, service = api_hub
    op = bearer(client, "op")
    cid = "cam-roles"
    main = URL.replace("Channels/101", "Channels/102")
    r = put(client, op, cid, camera(cid, record_url=main), "edge-1")
    assert r.status_code == 200, r.text
    shown = client.get(f"/api/v1/cameras/{cid}/config", headers=op).json()["config"]
    assert shown["record_url"] == SHOWN.replace("Channels/101", "Channels/102")
    with service.sessions() as session:
        sent = service.message(session, SITE, "edge-1").cameras[0].config
    assert sent["url"] == URL and sent["record_url"] == main
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = json.dumps(
            [str(x) for x in conn.execute(text("SELECT config FROM camera_configs")).all()]
        )
    engine.dispose()
    assert SECRET not in stored
    # another password than the camera's is refused at the key, and so is one without url's
    other = main.replace(SECRET, "another-pass")
    r = put(client, op, cid, camera(cid, record_url=other), "edge-1")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == "record_url"
    assert "another-pass" not in r.text
    r = put(client, op, cid, camera(cid, url="rtsp://10.20.0.5/s", record_url=main), "edge-1")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == "record_url"


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("rtsp://u:p@h/x", "rtsp://u:***@h/x", "p"),
        ("rtsp://u:p@ss@h:554/x?y=1", "rtsp://u:***@h:554/x?y=1", "p@ss"),
        ("rtsp://u:p%40ss@h", "rtsp://u:***@h", "p%40ss"),
        ("rtsp://:p@h/", "rtsp://:***@h/", "p"),
        ("rtsp://u@h/x", "rtsp://u@h/x", None),
        ("rtsp://u:@h/x", "rtsp://u:@h/x", None),
        ("rtsp://h/x@y", "rtsp://h/x@y", None),
        ("/media/clip.mp4", "/media/clip.mp4", None),
        ("file:///media/a:b@c.mp4", "file:///media/a:b@c.mp4", None),
    ],
)
def test_url_passwords_are_cut_out_and_put_back(url: str, shown: str, password: str | None) -> None:
    assert split_password(url) == (shown, password)
    assert with_password(shown, password) == url


def test_a_template_gives_other_cameras_its_analytics(
    api_hub: tuple[TestClient, CameraConfigService],
) -> None:
    client, service = api_hub
    op = bearer(client, "op")
    template = camera("tpl")
    template["analytics"].append(
        {
            "type": "line_count",
            "name": "bridge",
            "lines": [{"name": "north_in", "a": [0.1, 0.6], "b": [0.9, 0.6], "direction": [0, 1]}],
        }
    )
    r = put(client, op, "tpl", template, "edge-1")
    assert r.status_code == 200, r.text
    for cid, edge in (("t1", "edge-1"), ("t2", "edge-2"), ("t3", "edge-2")):
        doc = camera(cid, url=f"rtsp://cam:pw-{cid}@10.0.0.{len(cid)}/s", bearing_deg=45.0)
        doc["analytics"] = []
        assert put(client, op, cid, doc, edge).status_code == 200
    # an unknown camera among the targets: nothing changes
    r = client.post(
        "/api/v1/cameras/tpl/config/apply", json={"cameras": ["t1", "nope"]}, headers=op
    )
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert client.get("/api/v1/cameras/t1/config", headers=op).json()["version"] == 1
    r = client.post("/api/v1/cameras/nope/config/apply", json={"cameras": ["t1"]}, headers=op)
    assert r.status_code == 404
    r = client.post("/api/v1/cameras/tpl/config/apply", json={"cameras": []}, headers=op)
    assert r.status_code == 422
    r = client.post("/api/v1/cameras/tpl/config/apply", json={"cameras": ["t1", "t2"]}, headers=op)
    assert r.status_code == 200, r.text
    assert [(c["camera_id"], c["version"], c["changed"]) for c in r.json()["cameras"]] == [
        ("t1", 2, True),
        ("t2", 2, True),
    ]
    with service.sessions() as session:
        for cid, edge in (("t1", "edge-1"), ("t2", "edge-2")):
            entry = next(
                e for e in service.message(session, SITE, edge).cameras if e.camera_id == cid
            )
            assert entry.config["analytics"] == template["analytics"]
            assert entry.config["bearing_deg"] == 45.0  # its own settings stay
            assert entry.config["url"] == f"rtsp://cam:pw-{cid}@10.0.0.2/s"
            assert contract.config_hash(entry.config) == entry.config_version
    t3 = client.get("/api/v1/cameras/t3/config", headers=op).json()
    assert t3["version"] == 1 and t3["config"]["analytics"] == []
    h = client.get("/api/v1/cameras/t2/config/history", headers=op).json()[0]
    assert h["comment"] == "analytics from tpl"
    assert h["changes"] == ["analytics.road added", "analytics.bridge added"]


CSV_GOOD = """id,url,site,edge,lat,lon,bearing,fov,template
csv-1,rtsp://admin:csv-pass-1@10.1.0.1/s,hue,edge-1,16.46,107.55,90,60,tpl
csv-2,rtsp://10.1.0.2/s,hue,edge-2,,,,,csv-1
csv-3,/media/clip.mp4,hue,edge-2,16.5,107.6,,,
"""

CSV_BAD = """\ufeffID, URL ,site,edge,lat,lon,bearing,fov,template
csv-4,rtsp://10.1.0.4/s,hue,edge-1,,,,,
csv-5,rtsp://10.1.0.5/s,hue,edge-1,north,107.5,,,
csv-6,rtsp://10.1.0.6/s,hue,edge-1,,,,,nobody
csv-7,,hue,edge-1,,,,,
csv-8,ftp://10.1.0.8/s,hue,edge-1,,,400,,
csv-4,rtsp://10.1.0.4/s,hue,edge-1,,,,,
csv-9,rtsp://10.1.0.9/s,config,edge-1,16.4,,,,
"""


def test_cameras_import_from_csv_all_or_nothing(
    api_hub: tuple[TestClient, CameraConfigService],
) -> None:
    client, service = api_hub
    op = bearer(client, "op")
    assert put(client, op, "tpl", camera("tpl"), "edge-1").status_code == 200
    csv_h = {**op, "Content-Type": "text/csv"}
    r = client.post("/api/v1/cameras/import", content=CSV_BAD, headers=csv_h)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    by_row = {(e["row"], e["loc"]) for e in errors}
    assert {(3, "lat"), (4, "template"), (5, "url"), (6, "bearing_deg"), (6, "url"),
            (7, "id"), (8, "site"), (8, "lon")} <= by_row  # fmt: skip
    assert all(e["row"] != 2 for e in errors)  # the good row was fine, yet not imported
    assert next(e for e in errors if e["row"] == 4)["camera_id"] == "csv-6"
    assert client.get("/api/v1/cameras/csv-4/config", headers=op).status_code == 404
    r = client.post("/api/v1/cameras/import", content=CSV_GOOD, headers=csv_h)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["created"] == ["csv-1", "csv-2", "csv-3"] and doc["updated"] == []
    one = client.get("/api/v1/cameras/csv-1/config", headers=op).json()
    assert one["config"] == {
        "id": "csv-1",
        "url": "rtsp://admin:***@10.1.0.1/s",
        "location": {"lat": 16.46, "lon": 107.55},
        "bearing_deg": 90.0,
        "hfov_deg": 60.0,
        "analytics": camera("tpl")["analytics"],
    }
    two = client.get("/api/v1/cameras/csv-2/config", headers=op).json()
    assert two["config"]["analytics"] == camera("tpl")["analytics"]  # from the row above
    assert two["edge_id"] == "edge-2" and "location" not in two["config"]
    with service.sessions() as session:
        sent = {e.camera_id: e.config for e in service.message(session, SITE, "edge-1").cameras}
    assert sent["csv-1"]["url"] == "rtsp://admin:csv-pass-1@10.1.0.1/s"
    # again, changing one cell and leaving others empty: empty keeps what the hub holds
    again = "id,url,site,edge,bearing\ncsv-1,,,,120\ncsv-3,,,,\n"
    r = client.post("/api/v1/cameras/import", content=again, headers=csv_h)
    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["unchanged"]) == (["csv-1"], ["csv-3"])
    one = client.get("/api/v1/cameras/csv-1/config", headers=op).json()
    assert (one["version"], one["config"]["bearing_deg"], one["edge_id"]) == (2, 120.0, "edge-1")
    assert one["config"]["url"] == "rtsp://admin:***@10.1.0.1/s"
    history = client.get("/api/v1/cameras/csv-1/config/history", headers=op).json()
    assert (history[0]["comment"], history[0]["changes"]) == ("CSV import", ["bearing_deg changed"])
    # the file itself wrong
    for body, ctype, code in (
        ("", "text/csv", 422),
        ("id,url,site\nx,y,z\n", "text/csv", 422),  # no edge column
        ("id,url,site,edge,colour\n", "text/csv", 422),
        ("id,url,site,edge\n", "text/csv", 422),  # no rows
        ("id,url,site,edge\na,b,c,d,e\n", "text/csv", 422),
        (CSV_GOOD, "application/json", 415),
        ("x" * (1024 * 1024 + 1), "text/csv", 413),
    ):
        r = client.post(
            "/api/v1/cameras/import", content=body, headers={**op, "Content-Type": ctype}
        )
        assert r.status_code == code, (body[:40], r.text)
    r = client.post("/api/v1/cameras/import", content=b"id,url\n\xff\n", headers=csv_h)
    assert r.status_code == 422


def test_only_set_up_roles_change_configurations(
    api_hub: tuple[TestClient, CameraConfigService],
) -> None:
    client, _service = api_hub
    op = bearer(client, "op")
    assert put(client, op, "cam-1", camera("cam-1"), "edge-1").status_code == 200
    body = {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1")}
    for who in (None, "vic", "ran"):
        h = bearer(client, who) if who else {}
        code = 401 if who is None else 403
        assert client.put("/api/v1/cameras/cam-1/config", json=body, headers=h).status_code == code
        assert client.get("/api/v1/cameras/cam-1/config", headers=h).status_code == code
        assert client.get("/api/v1/cameras/cam-1/config/history", headers=h).status_code == code
        assert client.get("/api/v1/cameras/configs", headers=h).status_code == code
        assert client.delete("/api/v1/cameras/cam-1/config", headers=h).status_code == code
        r = client.post(
            "/api/v1/cameras/cam-1/config/apply", json={"cameras": ["cam-1"]}, headers=h
        )
        assert r.status_code == code
        r = client.post(
            "/api/v1/cameras/import",
            content="id,url,site,edge\nx,rtsp://h/s,hue,e\n",
            headers={**h, "Content-Type": "text/csv"},
        )
        assert r.status_code == code
    assert client.get("/api/v1/cameras/cam-1/config", headers=op).json()["version"] == 1
    # A browser session must echo its CSRF token, as on every other write.
    r = client.post("/api/v1/auth/login", json={"username": "op", "password": PASSWORDS["op"]})
    csrf = r.json()["csrf_token"]
    assert client.put("/api/v1/cameras/cam-1/config", json=body).status_code == 403
    doc = camera("cam-1", bearing_deg=10.0)
    ok = client.put(
        "/api/v1/cameras/cam-1/config",
        json={**body, "config": doc},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2, ok.text
    listed = client.get("/api/v1/cameras/configs").json()
    assert [(c["camera_id"], c["version"], c["updated_by"]) for c in listed] == [("cam-1", 2, "op")]


BAD_PUTS: list[Any] = [
    {"site": SITE, "edge_id": "edge 1", "config": camera("cam-1")},  # not an id
    {"site": "config", "edge_id": "edge-1", "config": camera("cam-1")},  # a reserved name
    {"site": SITE, "edge_id": "edge-1", "config": []},
    {"site": SITE, "edge_id": "edge-1"},
    {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1"), "extra": 1},
    {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1"), "comment": "x" * 501},
    {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1", url="gopher://h/s")},
    {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1", analytics=[{"type": "nope"}])},
    {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1", location={"lat": 91, "lon": 0})},
]


def test_bad_bodies_are_refused_and_change_nothing(
    api_hub: tuple[TestClient, CameraConfigService],
) -> None:
    client, _service = api_hub
    op = bearer(client, "op")
    for body in BAD_PUTS:
        r = client.put("/api/v1/cameras/cam-1/config", json=body, headers=op)
        assert r.status_code == 422, (body, r.text)
    r = client.put(
        "/api/v1/cameras/bad id/config",
        json={"site": SITE, "edge_id": "e", "config": camera("bad id")},
        headers=op,
    )
    assert r.status_code == 422
    # NaN passes pydantic but not the contract's strict JSON the edge parses
    raw = json.dumps(
        {"site": SITE, "edge_id": "edge-1", "config": camera("cam-1", bearing_deg=float("nan"))}
    )
    r = client.put(
        "/api/v1/cameras/cam-1/config",
        content=raw,
        headers={**op, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/cameras/configs", headers=op).json() == []
    assert client.get("/api/v1/cameras/cam-1/config", headers=op).status_code == 404
    assert client.get("/api/v1/cameras/cam-1/config/history", headers=op).status_code == 404


def test_analytics_are_listed_with_their_geometry_and_schema(
    api_hub: tuple[TestClient, CameraConfigService],
) -> None:
    from edge.analytics import registry

    client, _service = api_hub
    assert client.get("/api/v1/analytics").status_code == 401
    doc = client.get("/api/v1/analytics", headers=bearer(client, "vic")).json()
    assert [a["type"] for a in doc] == sorted(registry.plugins())
    by_type = {a["type"]: a for a in doc}
    objects = by_type["objects"]
    assert objects["geometry"] == [
        {"path": "zone", "kind": "polygon", "label": objects["geometry"][0]["label"],
         "optional": True}
    ]  # fmt: skip
    assert "zone" in objects["schema"]["properties"]
    assert any(k["name"] == "object" for k in objects["kinds"])
    kinds = {g["kind"] for a in doc for g in a["geometry"]}
    assert {"polygon", "line", "point"} <= kinds
    for a in doc:
        assert a["summary"] and a["schema"]["type"] == "object"
