"""The hub application: storage, the MQTT consumer and the HTTP API in one process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from central.api import cameras, events, health, hotspots
from central.config import HubConfig
from central.hotspots import load_hotspots
from central.ingest import Ingestor, MqttConsumer
from central.metrics import HubMetrics
from central.storage.db import make_engine, migrate, session_factory

log = logging.getLogger(__name__)


def create_app(cfg: HubConfig, *, consume: bool = True) -> FastAPI:
    hotspot_list = load_hotspots(cfg.hotspots_file) if cfg.hotspots_file else []
    engine = make_engine(cfg.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    metrics = HubMetrics()
    ingestor = Ingestor(sessions, cfg, metrics)
    consumer = MqttConsumer(cfg, ingestor, metrics) if consume else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if consumer:
            consumer.start()
        log.info(
            "hub started",
            extra={
                "database": engine.url.render_as_string(),
                "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}",
            },
        )
        try:
            yield
        finally:
            if consumer:
                consumer.stop()
            engine.dispose()
            log.info("hub stopped")

    app = FastAPI(
        title="edgewatch hub",
        version="0.1.0",
        description="Events, cameras and edges reported by edgewatch edge workers over MQTT.",
        lifespan=lifespan,
    )
    app.state.cfg = cfg
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.metrics = metrics
    app.state.ingestor = ingestor
    app.state.consumer = consumer
    app.state.hotspots = hotspot_list
    for module in (events, cameras, health, hotspots):
        app.include_router(module.router)
    return app
