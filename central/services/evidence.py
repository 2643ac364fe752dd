"""Evidence packages: the files an edge sent for an alert, checked against its manifest.

A traffic violation's evidence (clip, frames, plate crop) comes with a ``manifest.json``
listing each file's SHA-256, and the event itself carries the manifest's hash: the chain
event -> manifest -> files shows nothing was swapped on the way. The check is its own
service because it reads what an edge wrote, so every shape of a bad manifest must end
as a stated problem, never as an error.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.storage.models import EventRow, EvidenceFileRow


def files_of(session: Session, row: EventRow) -> dict[str, EvidenceFileRow]:
    """The event's evidence files by name, from its own (site, edge)."""
    return {
        f.name: f
        for f in session.scalars(
            select(EvidenceFileRow).where(
                EvidenceFileRow.event_id == row.id,
                EvidenceFileRow.site == row.site,
                EvidenceFileRow.edge_id == row.edge_id,
            )
        )
    }


def file_of(session: Session, row: EventRow, name: str) -> EvidenceFileRow | None:
    """One evidence file of the event, from its own (site, edge); else None."""
    return session.get(EvidenceFileRow, (row.id, row.site, row.edge_id, name))


def published_manifest(row: EventRow) -> str | None:
    """The manifest hash the event was published with (None when it carries none)."""
    published = (row.attributes or {}).get("manifest_sha256")
    return published if isinstance(published, str) else None


def verify(files: dict[str, EvidenceFileRow], published: str | None) -> list[str]:
    """What does not check out (empty: verified): the manifest against the event's hash,
    each listed file against the manifest."""
    manifest = files.get("manifest.json")
    if manifest is None:
        return ["no manifest.json (yet)"]
    problems = []
    if published is None:
        problems.append("the event carries no manifest hash to check against")
    elif manifest.sha256 != published:
        problems.append("manifest.json differs from the one published with the event")
    try:
        listed = json.loads(manifest.data)["files"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return [*problems, "manifest.json is not a manifest"]
    # An edge wrote it: ``files`` must be an object of objects, or nothing is verified.
    if not isinstance(listed, dict) or not all(isinstance(m, dict) for m in listed.values()):
        return [*problems, "manifest.json is not a manifest"]
    for name, meta in listed.items():
        f = files.get(name)
        if f is None:
            problems.append(f"{name}: not received")
        elif f.sha256 != meta.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
