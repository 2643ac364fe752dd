"""What the live stream sends: an alert's full document, and each role's view of it.

The live bus (:mod:`central.live`) loads one document per change, in the publishing
thread, and every open stream only redacts it for its caller: a hundred dashboards cost
one query. Loading and redaction live here, beside the serializer they must agree with
(:func:`central.services.alerts.to_out`), so a stream never shows more than the REST API
would.
"""

from __future__ import annotations

from typing import Any

from central.auth import User
from central.config import HubConfig
from central.services.alerts import evidence_files, snapshot_of, to_out, without_evidence
from central.storage.models import EventRow


def load_doc(sessions: Any, cfg: HubConfig, event_id: str) -> dict[str, Any] | None:
    """The full document of an alert (all evidence), for the live bus to fan out."""
    with sessions() as session:
        row = session.get(EventRow, event_id)
        if row is None:
            return None
        has = snapshot_of(session, row) is not None
        files = evidence_files(session, [event_id]).get(event_id)
        return to_out(row, has, cfg, None, files).model_dump(mode="json")


def redact(doc: dict[str, Any], user: User) -> dict[str, Any] | None:
    """What of a full alert document this user may see (None: not even that it exists)."""
    if not user.may_see_kind(doc["kind"]):
        return None
    if user.can("evidence"):
        return doc
    return {
        **doc,
        "snapshot_url": None,
        "attributes": without_evidence(doc["attributes"]),
        "evidence": False,
        "evidence_files": {},
    }
