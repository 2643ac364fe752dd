"""Liveness and metrics, for load balancers and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from central.api.deps import MetricsDep
from central.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness for load balancers (public: says ok or degraded, nothing else)",
    openapi_extra={"x-edgewatch-auth": "public"},
)
def healthz(request: Request, response: Response) -> Health:
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    consumer = request.app.state.consumer
    mqtt_ok = bool(consumer and consumer.connected.is_set())
    flapping = bool(consumer and consumer.flapping())
    # A standby of a cluster (docs/cluster.md) is not on the broker by design: the leader
    # holds the hub's session. It serves the API all the same, so it is ok.
    leadership = getattr(request.app.state, "leadership", None)
    standby = leadership is not None and leadership.clustered and not leadership.leading
    if not db_ok:
        response.status_code = 503
    return Health(
        status="ok" if db_ok and (standby or (mqtt_ok and not flapping)) else "degraded",
        database=db_ok,
        mqtt=mqtt_ok,
        mqtt_flapping=flapping,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    summary="Prometheus metrics (admins and operators: the `metrics` permission; mint a "
    "scraper's token with `edgewatch user token`)",
)
def metrics(request: Request, _user: MetricsDep) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
