"""The analytic types this hub knows, with what the set-up page needs to edit them.

Each plugin declares its config model and the drawable parts of it (``geometry``: dotted
paths into its config, ``*`` for list items, with the kind of shape: polygon, line,
segment, point, box, vector; coordinates as fractions of the frame). Serving them, with
the config's JSON Schema, lets the set-up page draw and validate a new analytic without a
line of JavaScript of its own; the hub validates again on save, with the same models.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from central.api.deps import UserDep
from edge.analytics import registry

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


@router.get("", summary="Analytic types: summary, kinds, drawable geometry, config schema")
def list_analytics(_user: UserDep) -> list[dict[str, Any]]:
    return [
        {
            "type": p.type,
            "summary": p.summary,
            "kinds": [
                {
                    "name": k.name,
                    "severity": k.severity,
                    "urgent": k.urgent,
                    "review": k.review,
                    "description": k.description,
                }
                for k in p.kinds
            ],
            "geometry": [
                {"path": g.path, "kind": g.kind, "label": g.label, "optional": g.optional}
                for g in p.geometry
            ],
            "schema": p.config.model_json_schema(),
        }
        for p in sorted(registry.plugins().values(), key=lambda p: p.type)
    ]
