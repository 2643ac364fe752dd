"""The event kinds the hub knows, as the analytics declare them (the dashboard reads it).

Every analytic plugin declares the kinds it emits with their severity, whether they are
urgent, enter the review queue, are seen by rangers or make fire incidents; the hub adds
its own (camera_offline). Serving these lets the dashboard colour a new analytic's
alerts without a line of JavaScript per kind. A ranger is told only the kinds it may see.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from central.api.deps import UserDep
from edge.analytics import registry

router = APIRouter(prefix="/api/v1/kinds", tags=["kinds"])


@router.get("", summary="Event kinds with their severity, urgency, review and incident policy")
def list_kinds(user: UserDep) -> list[dict[str, Any]]:
    return [
        {
            "name": spec.name,
            "severity": spec.severity,
            "urgent": spec.urgent,
            "review": spec.review,
            "roles": list(spec.roles),
            "incident": spec.incident,
            "description": spec.description,
        }
        for spec in registry.kinds().values()
        if user.may_see_kind(spec.name)
    ]
