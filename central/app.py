"""The hub application: storage, the MQTT consumer and the HTTP API in one process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from central.api import analytics as analytics_api
from central.api import (
    auth,
    cameras,
    docs,
    events,
    evidence,
    health,
    hotspots,
    i18n,
    incidents,
    kinds,
    pages,
    readings,
    reviews,
    vendor,
)
from central.api import camera_config as camera_config_api
from central.api import cluster as cluster_api
from central.api import live as live_api
from central.api import watchlist as watchlist_api
from central.api.security import SecurityHeaders
from central.config import HubConfig
from central.delivery import Dispatcher, load_vapid
from central.hotspots import load_hotspots
from central.incidents import IncidentManager
from central.ingest import Ingestor, MqttConsumer
from central.leader import Leadership, libpq_dsn
from central.live import LiveBus, PgFanout
from central.metrics import HubMetrics
from central.retention import RetentionJob
from central.services.alerts import AlertError
from central.services.camera_config import CameraConfigService
from central.services.live import load_doc
from central.storage.db import make_engine, migrate, session_factory
from central.watchdog import CameraWatchdog
from central.watchlist import WatchlistService

log = logging.getLogger(__name__)


async def _alert_error(request: Request, exc: Exception) -> Response:
    """A service's refusal (:class:`AlertError`), answered as an ``HTTPException`` is."""
    assert isinstance(exc, AlertError)
    return await http_exception_handler(request, HTTPException(exc.status, str(exc)))


def create_app(cfg: HubConfig, *, consume: bool = True) -> FastAPI:
    hotspot_list = load_hotspots(cfg.hotspots_file) if cfg.hotspots_file else []
    engine = make_engine(cfg.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    metrics = HubMetrics()
    manager = IncidentManager(cfg, sessions)
    live = LiveBus(loader=lambda event_id: load_doc(sessions, cfg, event_id))
    ingestor = Ingestor(sessions, cfg, metrics, manager, live, hotspot_list)
    watchdog = CameraWatchdog(
        sessions,
        cfg.alerts.camera_offline_grace_s,
        live.event_changed,
        max_alerts_per_min=cfg.limits.max_offline_alerts_per_min,
        metrics=metrics,
    )
    retention = RetentionJob(
        sessions,
        cfg.limits.orphan_snapshot_ttl_s,
        metrics,
        readings_days=cfg.limits.readings_retention_days,
    )
    consumer = MqttConsumer(cfg, ingestor, metrics) if consume else None
    watchlist = WatchlistService.for_consumer(sessions, consumer)
    camera_configs = CameraConfigService.for_consumer(
        sessions, consumer, max_cameras_per_edge=cfg.limits.max_cameras_per_edge
    )
    needs_push = any(ch.type == "webpush" for t in cfg.teams for ch in t.channels)
    vapid_file, vapid_public = load_vapid(cfg.push.vapid_key_file) if needs_push else (None, None)
    dispatcher = Dispatcher(
        cfg,
        sessions,
        manager,
        consumer.publish if consumer else None,
        vapid_file,
        on_result=lambda channel, ok: metrics.deliveries.labels(channel, str(ok).lower()).inc(),
    )

    # The duties that run once across hubs: all of them on a single (SQLite) hub, on the
    # lock holder of a cluster (central/leader.py, docs/cluster.md). Started in this order.
    duties = [consumer] if consumer else []
    duties += [watchlist, camera_configs, dispatcher, watchdog, retention]
    dsn = libpq_dsn(cfg.database_url) if cfg.clustered else None
    leadership = Leadership(
        dsn,
        duties,
        hub_id=cfg.cluster.hub_id,
        lock_key=cfg.cluster.lock_key,
        poll_s=cfg.cluster.poll_s,
        registry=metrics.registry,
    )
    fanout = PgFanout(dsn, cfg.cluster.hub_id, live) if dsn else None
    if fanout is not None:  # a change saved on a standby wakes the leader's loops too
        watchlist.changed = fanout.relay(watchlist.changed)  # type: ignore[method-assign]
        camera_configs.changed = fanout.relay(camera_configs.changed)  # type: ignore[method-assign]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if fanout:
            fanout.start()
        leadership.start()
        log.info(
            "hub started",
            extra={
                "database": engine.url.render_as_string(),
                "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}",
                "hub_id": cfg.cluster.hub_id,
                "clustered": cfg.clustered,
                "leader": leadership.leading,
            },
        )
        try:
            yield
        finally:
            leadership.stop()
            if fanout:
                fanout.stop()
            engine.dispose()
            log.info("hub stopped")

    app = FastAPI(
        title="edgewatch hub",
        version="0.1.0",
        description="Events, cameras and edges reported by edgewatch edge workers over MQTT.",
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI / ReDoc from a CDN with an inline script:
        # central.api.docs serves the packaged copy instead.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json" if cfg.http.docs else None,
    )
    app.state.cfg = cfg
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.metrics = metrics
    app.state.ingestor = ingestor
    app.state.consumer = consumer
    app.state.hotspots = hotspot_list
    app.state.incidents = manager
    app.state.dispatcher = dispatcher
    app.state.vapid_public = vapid_public
    app.state.live = live
    app.state.watchdog = watchdog
    app.state.retention = retention
    app.state.watchlist = watchlist
    app.state.camera_configs = camera_configs
    app.state.leadership = leadership
    app.state.fanout = fanout
    for module in (
        auth, events, evidence, reviews, live_api, cameras, health, hotspots, incidents, kinds,
        pages, i18n, readings, watchlist_api, camera_config_api, analytics_api, vendor,
        cluster_api,
    ):  # fmt: skip
        app.include_router(module.router)
    app.add_exception_handler(AlertError, _alert_error)
    if cfg.http.docs:
        app.include_router(docs.router)
    tiles = cfg.map.tile_origin()  # the map's tile server, if any: img-src allows it
    app.add_middleware(SecurityHeaders, img_origins=(tiles,) if tiles else ())
    if cfg.http.trusted_proxies:
        # The client address (login throttling, logs) and scheme come from X-Forwarded-*
        # only when the peer is one of these; uvicorn's own default trust of 127.0.0.1 is
        # off (cmd_hub_run), so a local client cannot claim any address it likes.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=cfg.http.trusted_proxies)
    return app
