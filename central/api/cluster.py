"""Which hub leads: for operators running several hubs on one PostgreSQL (docs/cluster.md).

Asked of PostgreSQL, not of the hubs: the leader is whoever holds the advisory lock, and
every hub of the cluster keeps connections named after its hub id, so any hub (the one
behind the load balancer that answered) can say who leads and who is connected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from central.api.deps import MetricsDep
from central.leader import cluster_state

router = APIRouter(prefix="/api/v1", tags=["operations"])


class ClusterOut(BaseModel):
    hub_id: str = Field(description="the hub that answered (cluster.hub_id)")
    clustered: bool = Field(description="several hubs on one PostgreSQL (cluster.enabled)")
    leader: bool = Field(description="whether the hub that answered is the ingest leader")
    leader_since: datetime | None = Field(None, description="when it became leader")
    leader_hub_id: str | None = Field(
        None, description="the hub holding the leader lock now; none during a takeover"
    )
    hubs: list[str] = Field(description="hubs connected to the database (theirs by hub id)")
    live_listening: bool | None = Field(
        None, description="whether this hub hears the others' live notices (clustered only)"
    )


@router.get(
    "/cluster",
    response_model=ClusterOut,
    summary="Which hub leads ingest and the single-writer jobs, and which hubs are up "
    "(admins and operators: the `metrics` permission)",
)
async def cluster(request: Request, _user: MetricsDep) -> ClusterOut:
    state = request.app.state
    lead = state.leadership
    since = datetime.fromtimestamp(lead.since, UTC) if lead.since is not None else None
    if not lead.clustered:
        me = state.cfg.cluster.hub_id
        return ClusterOut(
            hub_id=me, clustered=False, leader=lead.leading, leader_since=since,
            leader_hub_id=me if lead.leading else None, hubs=[me],
        )  # fmt: skip
    seen: dict[str, Any] = await run_in_threadpool(cluster_state, state.engine, lead.lock_key)
    fanout = state.fanout
    return ClusterOut(
        hub_id=lead.hub_id,
        clustered=True,
        leader=lead.leading,
        leader_since=since,
        leader_hub_id=seen["leader_hub_id"],
        hubs=seen["hubs"],
        live_listening=fanout.listening.is_set() if fanout is not None else None,
    )
