"""The plate watch list at the hub, on real parts: mosquitto with the documented accounts
and ACLs, the hub application with its MQTT consumer, on SQLite and PostgreSQL.

An operator lists a plate through the API; the edge's own account, subscribed to its
config topic, gets the whole list retained; another edge's account cannot read it, and
no edge can overwrite it. Viewers and rangers are refused the API; bad plates are 4xx.

Whenever a test asserts that something did *not* arrive, it first waits for a later
genuine message to the same client (the broker delivers to one client in order).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.config import HubConfig
from central.watchlist import WatchlistService
from edgewatch import contract
from tests import hubs
from tests.helpers import Mosquitto, wait_for
from tests.hubs import bearer as hub_bearer
from tests.hubs import hub_app, live_cfg

pytestmark = pytest.mark.e2e

SITE = "hue"
PASSWORDS = {"op": "operator-password", "vic": "viewer-password", "ran": "ranger-password"}
ROLES = {"op": "operator", "vic": "viewer", "ran": "ranger"}
USERS = {u: (ROLES[u], PASSWORDS[u]) for u in PASSWORDS}


def bearer(client: TestClient, user: str) -> dict[str, str]:
    return hub_bearer(client, user, PASSWORDS[user])


class Peer(hubs.Peer):
    def lists(self, topic: str) -> list[contract.WatchlistMessage]:
        """Every list received on ``topic``, parsed as strictly as the edge parses it."""
        return self.messages(topic, contract.WatchlistMessage)


@pytest.fixture
def live_hub(broker: Mosquitto, db_url: str) -> Iterator[tuple[TestClient, WatchlistService]]:
    """The hub with its MQTT consumer on its own hub account (a fresh one per test)."""
    with hub_app(live_cfg(broker, db_url, "hub-wl"), True, USERS) as (client, app):
        yield client, app.state.watchlist


@pytest.fixture
def api_hub(db_url: str) -> Iterator[tuple[TestClient, WatchlistService]]:
    """The hub without a broker: the API and the list, nothing sent."""
    with hub_app(HubConfig(database_url=db_url), False, USERS) as (client, app):
        yield client, app.state.watchlist


def test_a_listed_plate_reaches_its_edge_retained_and_no_other_edge_reads_it(
    broker: Mosquitto, live_hub: tuple[TestClient, WatchlistService]
) -> None:
    client, service = live_hub
    op = bearer(client, "op")
    u = uuid.uuid4().hex[:6]
    edge_a, edge_b = f"edge-a-{u}", f"edge-b-{u}"
    topic_a, topic_b = (
        contract.watchlist_topic(SITE, edge_a),
        contract.watchlist_topic(SITE, edge_b),
    )
    a = Peer(broker.client(edge_a, "edge", site=SITE))
    b = Peer(broker.client(edge_b, "edge", site=SITE))
    peers = [a, b]
    try:
        a.sub(topic_a)
        b.sub(topic_a)  # B tries to read A's list: the ACL says no
        b.sub(f"{contract.ROOT}/config/#")  # ... and every list
        b.sub(topic_b)
        for peer, edge in ((a, edge_a), (b, edge_b)):  # the edges come online: the hub knows them
            info = peer.client.publish(
                contract.edge_status_topic(SITE, edge), b"online", qos=1, retain=True
            )
            info.wait_for_publish(10)

        def delivered() -> bool:
            doc = client.get("/api/v1/watchlist", headers=op).json()
            mine = [e for e in doc["edges"] if e["edge_id"] in (edge_a, edge_b)]
            return len(mine) == 2 and all(e["current"] for e in mine)

        wait_for(delivered, 20, what="the (empty) list sent to both edges")
        r = client.post(
            "/api/v1/watchlist",
            json={"plate": "30a-123.45", "reason": "reported stolen"},
            headers=op,
        )
        assert r.status_code == 201, r.text
        entry = r.json()
        assert (entry["plate"], entry["reason"], entry["created_by"]) == (
            "30A12345",
            "reported stolen",
            "op",
        )

        def with_entry(peer: Peer, topic: str) -> contract.WatchlistMessage | None:
            for msg in peer.lists(topic):
                if [(e.plate, e.reason, e.id) for e in msg.entries] == [
                    ("30A12345", "reported stolen", entry["id"])
                ]:
                    return msg
            return None

        listed = wait_for(lambda: with_entry(a, topic_a), 20, what="A gets the list")
        wait_for(lambda: with_entry(b, topic_b), 20, what="B gets its own list")
        assert listed.version == client.get("/api/v1/watchlist", headers=op).json()["version"]
        # B never got A's list, by name or by wildcard (its own came after it)
        assert topic_a not in b.topics()
        assert set(b.topics()) <= {topic_b}
        # The broker keeps it: edge A restarting (one connection per account: the client
        # id is the account) gets it on subscribing.
        a.close()
        peers.remove(a)
        a = Peer(broker.client(edge_a, "edge", site=SITE))
        peers.append(a)
        a.sub(topic_a)
        wait_for(lambda: with_entry(a, topic_a), 10, what="the retained list")
        assert all(retained for t, _, retained in a.got if t == topic_a)
        # An edge cannot overwrite its list: only the hub writes config topics.
        forged = contract.WatchlistMessage(
            version=listed.version + 10**9, updated_at=contract.utcnow(), entries=[]
        )
        info = a.client.publish(topic_a, forged.model_dump_json().encode(), qos=1, retain=True)
        info.wait_for_publish(10)
        a.close()
        peers.remove(a)
        a = Peer(broker.client(edge_a, "edge", site=SITE))
        peers.append(a)
        a.sub(topic_a)
        wait_for(lambda: a.lists(topic_a), 10, what="the retained list")
        assert [m.version for m in a.lists(topic_a)] == [listed.version], "the hub's list"
        # Taking it off: a newer list without it.
        assert client.delete(f"/api/v1/watchlist/{entry['id']}", headers=op).status_code == 204
        removed = wait_for(
            lambda: [m for m in a.lists(topic_a) if m.version > listed.version and not m.entries],
            20,
            what="the list without the entry",
        )
        assert removed
        assert service.sent()[(SITE, edge_a)] == removed[0].version
    finally:
        for p in peers:
            p.close()


def test_only_admins_and_operators_see_or_change_the_list(
    api_hub: tuple[TestClient, WatchlistService],
) -> None:
    client, _service = api_hub
    op = bearer(client, "op")
    assert (
        client.post("/api/v1/watchlist", json={"plate": "51F-311.18"}, headers=op).status_code
        == 201
    )
    assert client.get("/api/v1/watchlist").status_code == 401
    assert client.post("/api/v1/watchlist", json={"plate": "29A12345"}).status_code == 401
    for user in ("vic", "ran"):  # a viewer reads the dashboard; a ranger works on fires
        h = bearer(client, user)
        assert client.get("/api/v1/watchlist", headers=h).status_code == 403
        assert (
            client.post("/api/v1/watchlist", json={"plate": "29A12345"}, headers=h).status_code
            == 403
        )
        entry_id = client.get("/api/v1/watchlist", headers=op).json()["entries"][0]["id"]
        assert client.delete(f"/api/v1/watchlist/{entry_id}", headers=h).status_code == 403
    assert [e["plate"] for e in client.get("/api/v1/watchlist", headers=op).json()["entries"]] == [
        "51F31118"
    ]
    # A browser session must echo its CSRF token, as on every other write.
    r = client.post("/api/v1/auth/login", json={"username": "op", "password": PASSWORDS["op"]})
    csrf = r.json()["csrf_token"]
    assert client.post("/api/v1/watchlist", json={"plate": "43A-111.22"}).status_code == 403
    ok = client.post(
        "/api/v1/watchlist", json={"plate": "43A-111.22"}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201, ok.text


BAD_BODIES: list[Any] = [
    {"plate": "ab1"},  # too short
    {"plate": "1234567890ABC"},  # too long
    {"plate": "x" * 40},
    {"plate": ""},
    {"plate": "30Á-123.45"},  # not A-Z
    {"plate": "３０A-123.45"},  # full-width digits
    {"plate": "30A-123\x0045"},
    {"plate": 30123},
    {"plate": None},
    {},
    [],
    {"plate": "30A-123.45", "reason": "x" * 201},
    {"plate": "30A-123.45", "reason": "stolen\x00"},
    {"plate": "30A-123.45", "listed_by": "someone else"},  # unknown field
]


def test_bad_entries_are_refused_with_422(api_hub: tuple[TestClient, WatchlistService]) -> None:
    client, _service = api_hub
    op = bearer(client, "op")
    for body in BAD_BODIES:
        r = client.post("/api/v1/watchlist", json=body, headers=op)
        assert r.status_code == 422, (body, r.text)
    assert client.get("/api/v1/watchlist", headers=op).json()["entries"] == []


def test_entries_versions_and_removal(api_hub: tuple[TestClient, WatchlistService]) -> None:
    client, service = api_hub
    op = bearer(client, "op")
    v0 = client.get("/api/v1/watchlist", headers=op).json()["version"]
    assert v0 >= int(contract.utcnow().timestamp() * 1000) - 600_000  # a time, not a count
    first = client.post(
        "/api/v1/watchlist", json={"plate": "30A-123.45", "reason": " "}, headers=op
    )
    assert first.status_code == 201 and first.json()["reason"] is None
    again = client.post("/api/v1/watchlist", json={"plate": "30a 123 45"}, headers=op)
    assert again.status_code == 409  # the same plate, written another way
    v1 = client.get("/api/v1/watchlist", headers=op).json()["version"]
    assert v1 > v0
    eid = first.json()["id"]
    assert client.delete(f"/api/v1/watchlist/{eid}", headers=op).status_code == 204
    assert client.delete(f"/api/v1/watchlist/{eid}", headers=op).status_code == 404
    for bad in ("999999", "0", str(2**40), "abc"):
        code = client.delete(f"/api/v1/watchlist/{bad}", headers=op).status_code
        assert code == (404 if bad == "999999" else 422), bad
    doc = client.get("/api/v1/watchlist", headers=op).json()
    assert doc["entries"] == [] and doc["version"] > v1
    # listed again after removal: a new entry (the old one stays on record, removed)
    relisted = client.post("/api/v1/watchlist", json={"plate": "30A12345"}, headers=op)
    assert relisted.status_code == 201 and relisted.json()["id"] != eid
    with service.sessions() as session:
        msg = service.message(session)
    assert [(e.plate, e.id) for e in msg.entries] == [("30A12345", relisted.json()["id"])]
    assert msg.version == client.get("/api/v1/watchlist", headers=op).json()["version"]
