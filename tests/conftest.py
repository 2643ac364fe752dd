from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.inference.registry import Registry
from edge.ingest.media import make_test_video
from tests.helpers import Mosquitto, RtspServer

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("EDGEWATCH_ASSETS", ROOT.parent / "shared" / "assets")).resolve()
HIGHWAY = ASSETS / "video" / "highway_cctv_320x240.avi"
PG_ADMIN = os.environ.get("EDGEWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _asset(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test asset missing: {path} (set EDGEWATCH_ASSETS to the assets folder)")
    return path


@pytest.fixture(scope="session", autouse=True)
def pages_in_english() -> Iterator[None]:
    """The pages follow the browser's language (Vietnamese or English, central/web/i18n.js)
    and the browser tests assert English texts: every Playwright context and page opens in
    en-GB, whatever the machine's locale, unless a test passes its own ``locale``."""
    try:
        from playwright.sync_api import Browser
    except ImportError:  # no browser tests without playwright
        yield
        return
    new_context, new_page = Browser.new_context, Browser.new_page

    def context_en(self: Browser, *args: object, **kw: object) -> object:
        kw.setdefault("locale", "en-GB")
        return new_context(self, *args, **kw)  # type: ignore[arg-type]

    def page_en(self: Browser, *args: object, **kw: object) -> object:
        kw.setdefault("locale", "en-GB")
        return new_page(self, *args, **kw)  # type: ignore[arg-type]

    Browser.new_context, Browser.new_page = context_en, page_en  # type: ignore[method-assign,assignment]
    yield
    Browser.new_context, Browser.new_page = new_context, new_page  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def assets() -> Path:
    return _asset(ASSETS)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    mirror = Path(os.environ.get("EDGEWATCH_MODEL_MIRROR", assets / "models"))
    d = tmp_path_factory.mktemp("models")
    Registry(d).pull("yolox_nano", mirror=mirror)
    return d


@pytest.fixture(scope="session")
def h264_video(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    """The highway clip as H.264 MP4, looped to 3 minutes (an RTSP stream that lasts)."""
    return make_test_video(
        _asset(HIGHWAY), tmp_path_factory.mktemp("video") / "highway.mp4", loops=6
    )


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    try:
        broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto of the module's own, for tests that count everything their hub gets:
    the session's broker holds other tests' retained statuses, frames and previews."""
    try:
        broker = Mosquitto(tmp_path_factory.mktemp("own-mosquitto"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Iterator[Mosquitto]:
    """The session's mosquitto, guaranteed running at the start and end of a test."""
    if mosquitto.proc is None:
        mosquitto.start()
    yield mosquitto
    if mosquitto.proc is None:
        mosquitto.start()


@pytest.fixture
def rtsp(tmp_path: Path, h264_video: Path) -> Iterator[RtspServer]:
    try:
        server = RtspServer(tmp_path, {"highway": h264_video})
    except RuntimeError as exc:
        pytest.fail(f"{exc}")
    server.start()
    yield server
    server.stop()


def _postgres_url() -> str | None:
    try:
        import psycopg
    except ImportError:
        return None
    name = f"edgewatch_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        return None
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def _drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite3'}"
        return
    url = _postgres_url()
    if url is None:
        reason = f"PostgreSQL not reachable at {PG_ADMIN} (or psycopg not installed)"
        if os.environ.get("EDGEWATCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and EDGEWATCH_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    yield url
    _drop_postgres(url)


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def hub(db_url: str) -> Iterator[TestClient]:
    """An in-process hub (no MQTT consumer) on a fresh database, as an operator."""
    from central.app import create_app
    from central.config import HubConfig
    from tests.helpers import ensure_user

    app = create_app(HubConfig(database_url=db_url), consume=False)
    ensure_user(db_url, "op", "operator", "operator-password")
    with TestClient(app) as client:
        r = client.post(
            "/api/v1/auth/token", data={"username": "op", "password": "operator-password"}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client
