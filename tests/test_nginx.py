"""Debian's nginx in front of two real hubs, with the deployment's own config.

The config is ``deploy/nginx/edgewatch.conf.template`` rendered by ``edgewatch.deploy``
with free ports and a private prefix (the file operators copy is the same template with
other values, checked below). The hubs are two ``edgewatch hub run`` processes, each on
its own SQLite file, serving the same 50 hotspots: what a citizen gets must not depend on
which hub answered (same ETag), a hub may die, and nothing that carries an account may be
cached.
"""

from __future__ import annotations

import gzip
import http.client
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgewatch import deploy, procs
from edgewatch.broker import free_port
from edgewatch.brokerauth import make_ca_and_server_cert
from tests.helpers import Hub, Mosquitto, ensure_user

ROOT = Path(__file__).resolve().parents[1]
HOTSPOTS = ROOT / "configs" / "hotspots.geojson"
USER = ("nginx-op", "operator", "operator-password-nginx")


@dataclass
class Front:
    port: int
    tls_port: int
    ca: Path
    hubs: list[Hub]
    proc: object
    prefix: Path
    token_a: str  # a bearer token hub A knows and hub B does not
    token_both: str  # one both hubs know

    def get(
        self, path: str, headers: dict[str, str] | None = None, port: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


def _token(db_urls: list[str]) -> str:
    """One bearer secret stored in each database (as a login on that hub would store it)."""
    from sqlalchemy import select

    from central import auth
    from central.storage.db import make_engine, session_factory
    from central.storage.models import AuthSessionRow, UserRow

    secret = f"nginx-test-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    for url in db_urls:
        engine = make_engine(url)
        try:
            with session_factory(engine).begin() as session:
                user = session.scalar(select(UserRow).where(UserRow.username == USER[0]))
                assert user is not None
                session.add(
                    AuthSessionRow(
                        token_sha256=auth._digest(secret),
                        user_id=user.id,
                        kind="bearer",
                        csrf=None,
                        created_at=now,
                        expires_at=now + timedelta(hours=1),
                        last_seen_at=now,
                    )
                )
        finally:
            engine.dispose()
    return secret


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Front]:
    if deploy.nginx_binary() is None:
        pytest.skip(
            "nginx is not installed (Debian package nginx; scripts/setup.sh installs it "
            "when run as root)"
        )
    tmp = tmp_path_factory.mktemp("nginx")
    hubs: list[Hub] = []
    for name in ("a", "b"):
        d = tmp / f"hub-{name}"
        d.mkdir()
        db = f"sqlite:///{d / 'hub.sqlite3'}"
        ensure_user(db, USER[0], USER[1], USER[2])
        extra = {"hotspots_file": str(HOTSPOTS), "log_level": "WARNING"}
        hubs.append(Hub(d, db, mosquitto, f"nginx-hub-{name}-{uuid.uuid4().hex[:6]}", extra))
    for h in hubs:
        h.start()
    token_a = _token([hubs[0].db_url])
    token_both = _token([h.db_url for h in hubs])
    prefix = tmp / "nginx"
    prefix.mkdir()
    make_ca_and_server_cert(prefix, ["127.0.0.1", "localhost"])
    port, tls_port = free_port(), free_port()
    site = deploy.render_site(
        [f"127.0.0.1:{h.port}" for h in hubs],
        listen=f"127.0.0.1:{port},127.0.0.1:{tls_port} ssl",
        cache_dir=str(prefix / "cache"),
        tls=deploy.Tls(str(prefix / "server.crt"), str(prefix / "server.key")),
        redirect_http=False,
    )
    conf = deploy.write_standalone(prefix, site, workers=1)
    proc = deploy.start_nginx(prefix, conf, prefix / "nginx.out")
    try:
        if not procs.wait_port(port, timeout=10):
            raise AssertionError(f"nginx did not start: {(prefix / 'error.log').read_text()}")
        yield Front(port, tls_port, prefix / "ca.crt", hubs, proc, prefix, token_a, token_both)
    finally:
        procs.stop(proc)  # type: ignore[arg-type]
        for h in hubs:
            h.stop()


FEED = "/api/v1/hotspots"


def _probe() -> dict[str, str]:
    """A Host no other request has used: a fresh cache key (the key holds the host; the
    hub ignores it). Made-up query arguments no longer make one (see the key test)."""
    return {"Host": f"probe-{uuid.uuid4().hex[:8]}.test"}


def test_deployed_conf_is_the_rendered_template() -> None:
    assert deploy.SITE.read_text() == deploy.render_site(), (
        "deploy/nginx/edgewatch.conf differs from its template: python -m edgewatch.deploy"
    )


def test_deploy_files_agree_with_the_code() -> None:
    """docker is not on the test machines: the compose file is not run, but what it
    names must exist and the hubs' config must be one the hub accepts."""
    import yaml

    from central.config import HubConfig

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"broker", "db", "hub1", "hub2", "nginx"} <= set(services)
    hubs = [s.split(":")[0] for s in deploy.DEFAULT_HUBS]
    assert set(hubs) <= set(services), "nginx's upstream names the compose services"
    assert (
        "./nginx/edgewatch.conf:/etc/nginx/conf.d/default.conf:ro" in (services["nginx"]["volumes"])
    )
    assert services["hub1"]["build"]["dockerfile"] == "Dockerfile.hub"
    assert ".[hub,postgres]" in (ROOT / "Dockerfile.hub").read_text()
    doc = yaml.safe_load((ROOT / "deploy" / "config" / "hub.example.yaml").read_text())
    cfg = HubConfig.model_validate(doc)
    assert cfg.http.port == 8000 and cfg.http.host == "0.0.0.0"
    subnet = compose["networks"]["edgewatch"]["ipam"]["config"][0]["subnet"]
    assert cfg.http.trusted_proxies == [subnet]


def test_feed_is_cached_with_the_hubs_etag(front: Front) -> None:
    direct = [front.get("/api/v1/hotspots", port=h.port) for h in front.hubs]
    etags = {hdrs["etag"] for _, hdrs, _ in direct}
    assert len(etags) == 1, f"the two hubs tag the same feed differently: {etags}"
    probe = _probe()
    s1, h1, b1 = front.get(FEED, probe)
    s2, h2, b2 = front.get(FEED, probe)
    assert (s1, s2) == (200, 200)
    assert (h1["x-cache-status"], h2["x-cache-status"]) == ("MISS", "HIT")
    assert h2["etag"] == direct[0][1]["etag"]
    assert h2["cache-control"] == "public, max-age=10, must-revalidate"
    assert b1 == b2 == direct[0][2]
    assert b2.count(b'"type":"Feature"') == 50


def test_if_none_match_gives_304_from_the_cache(front: Front) -> None:
    probe = _probe()
    _, first, _ = front.get(FEED, probe)
    status, hdrs, body = front.get(FEED, {**probe, "If-None-Match": first["etag"]})
    assert status == 304 and body == b""
    assert hdrs["x-cache-status"] == "HIT" and hdrs["etag"] == first["etag"]
    status, _, body = front.get(FEED, {**probe, "If-None-Match": '"not-the-tag"'})
    assert status == 200 and body


def test_the_cache_key_holds_only_what_the_hub_reads(front: Front) -> None:
    """Made-up query arguments (?x=<random>) used to give a fresh cache key each, so a
    client could push all its requests past the cache onto the hubs. The key, and the
    request a hub gets, now hold only the path and the history's since and limit."""
    probe = _probe()
    seen = [front.get(f"{FEED}?x={uuid.uuid4().hex}", probe)[1]["x-cache-status"] for _ in range(3)]
    assert seen == ["MISS", "HIT", "HIT"]
    history = "/api/v1/hotspots/hue-001/history"
    s1, h1, _ = front.get(f"{history}?limit=3", probe)
    s2, h2, _ = front.get(f"{history}?limit=3&junk={uuid.uuid4().hex}", probe)
    s3, h3, _ = front.get(f"{history}?limit=4", probe)
    assert (s1, s2, s3) == (200, 200, 200)
    assert [h["x-cache-status"] for h in (h1, h2, h3)] == ["MISS", "HIT", "MISS"]
    # the arguments the hub reads reach it: an invalid one is the hub's own 422
    status, _, body = front.get(f"{history}?limit=0&since=2026-01-01T00:00:00Z", probe)
    assert status == 422 and b"limit" in body


def test_gzip_when_asked(front: Front) -> None:
    for path, ratio in ((FEED, 4), ("/static/hotspots.js", 2), ("/i18n/i18n.js", 2)):
        probe = _probe()
        _, _, plain = front.get(path, probe)
        status, hdrs, packed = front.get(path, {**probe, "Accept-Encoding": "gzip"})
        assert status == 200 and hdrs.get("content-encoding") == "gzip", (path, hdrs)
        assert gzip.decompress(packed) == plain
        assert len(packed) * ratio < len(plain), (path, len(packed), len(plain))
    _, hdrs, _ = front.get(FEED, _probe())
    assert "content-encoding" not in hdrs


def test_public_page_is_micro_cached(front: Front) -> None:
    front.get("/hotspots")
    status, hdrs, body = front.get("/hotspots")
    assert status == 200 and hdrs["x-cache-status"] == "HIT" and b"<html" in body.lower()
    # browsers still revalidate every time: the hub's header is passed on unchanged
    assert hdrs["cache-control"] == "no-cache"


def test_requests_with_an_account_are_never_cached(front: Front) -> None:
    # hub A knows this token, hub B does not: each answer comes from a hub, never a cache
    auth = {"Authorization": f"Bearer {front.token_a}"}
    answers = [front.get("/api/v1/events?limit=1", auth) for _ in range(8)]
    assert {s for s, _, _ in answers} == {200, 401}, "both hubs must see these requests"
    assert all(h.get("x-cache-status", "") != "HIT" for _, h, _ in answers)
    for header in ({"Cookie": "edgewatch_session=x"}, {"Authorization": "Bearer y"}):
        probe = _probe()
        for _ in range(2):
            _, hdrs, _ = front.get(FEED, {**probe, **header})
            assert hdrs["x-cache-status"] == "BYPASS", (header, hdrs)
        # and what they fetched was not stored for anybody else
        _, hdrs, _ = front.get(FEED, probe)
        assert hdrs["x-cache-status"] == "MISS"


def test_sse_is_not_buffered(front: Front) -> None:
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=10)
    try:
        t0 = time.monotonic()
        sock.sendall(
            (
                "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {front.token_both}\r\nAccept-Encoding: gzip\r\n\r\n"
            ).encode()
        )
        got = b""
        while b"event: hello" not in got:
            chunk = sock.recv(4096)
            assert chunk, f"stream closed: {got!r}"
            got += chunk
        took = time.monotonic() - t0
    finally:
        sock.close()
    assert b" 200 " in got.split(b"\r\n", 1)[0], got[:200]
    assert b"content-encoding" not in got.lower()
    assert took < 5.0, f"first event after {took:.2f}s: the stream is buffered"


def test_tls_listener(front: Front) -> None:
    ctx = ssl.create_default_context(cafile=str(front.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", front.tls_port, context=ctx, timeout=10)
    try:
        conn.request("GET", FEED, headers=_probe())
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    assert r.status == 200 and body.count(b'"type":"Feature"') == 50
    assert r.getheader("Strict-Transport-Security") == "max-age=31536000"


def test_feed_answers_with_one_hub_down(front: Front) -> None:
    b = front.hubs[1]
    b.stop()
    try:
        auth = {"Authorization": f"Bearer {front.token_a}"}
        answers = [front.get("/api/v1/events?limit=1", auth)[0] for _ in range(6)]
        assert answers == [200] * 6, "nginx must pass every request on to the hub that is up"
        status, hdrs, body = front.get(FEED, _probe())
        assert status == 200 and hdrs["x-cache-status"] == "MISS"
        assert body.count(b'"type":"Feature"') == 50
    finally:
        b.start()


def test_password_guessing_is_limited_in_front_of_all_hubs(front: Front) -> None:
    """Each hub counts the failed logins that reach it; behind least_conn, N hubs would
    give a guesser N times the budget. nginx limits logins per address in front of them
    all: of 40 quick wrong guesses, about the burst (10) reaches a hub, the rest are
    refused by nginx itself (its own 429, an HTML page, not the hub's JSON)."""
    reached = refused = 0
    for i in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
        try:
            body = f"username=nobody{i}&password=wrong".encode()
            conn.request(
                "POST",
                "/api/v1/auth/token",
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            r = conn.getresponse()
            kind = r.getheader("Content-Type") or ""
            r.read()
        finally:
            conn.close()
        if r.status == 429 and "text/html" in kind:
            refused += 1
        else:
            reached += 1  # the hub's answer (401, or its own 429 in JSON)
    assert refused >= 25, (reached, refused)
    assert reached <= 13, (reached, refused)
