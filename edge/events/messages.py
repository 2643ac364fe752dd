"""Turning analytic transitions into contract messages for the spool."""

from __future__ import annotations

import hashlib
import uuid

from edge.analytics.objects import Transition
from edge.transport.spool import Message
from edgewatch import contract
from edgewatch.contract import EventMessage, Location, SnapshotRef


class EventEncoder:
    """Builds event (and snapshot) messages for one edge; remembers each event's snapshot."""

    def __init__(self, site: str, edge_id: str) -> None:
        self.site = site
        self.edge_id = edge_id
        self._snapshots: dict[uuid.UUID, SnapshotRef] = {}

    def encode(
        self,
        t: Transition,
        *,
        kind: str,
        analytic: str,
        camera_id: str,
        zone: str | None,
        location: Location | None,
        jpeg: bytes | None = None,
    ) -> list[Message]:
        out: list[Message] = []
        if jpeg is not None:
            topic = contract.snapshot_topic(self.site, self.edge_id, t.event_id)
            self._snapshots[t.event_id] = SnapshotRef(
                topic=topic, sha256=hashlib.sha256(jpeg).hexdigest(), bytes=len(jpeg)
            )
            out.append(Message(topic, jpeg, kind="snapshot"))
        snap = self._snapshots.get(t.event_id)
        if t.type == "end":
            self._snapshots.pop(t.event_id, None)
        event = EventMessage(
            id=t.event_id,
            type=t.type,
            seq=t.seq,
            kind=t.kind or kind,
            analytic=analytic,
            label=t.label,
            site=self.site,
            edge_id=self.edge_id,
            camera_id=camera_id,
            start_time=t.start_time,
            end_time=t.end_time,
            frame_time=t.frame_time,
            score=t.score,
            box=t.box,
            zone=zone,
            location=location,
            snapshot=snap,
            attributes=dict(t.attributes),
        )
        out.append(
            Message(
                contract.events_topic(self.site, self.edge_id),
                event.model_dump_json(exclude_none=True).encode(),
                kind="event",
            )
        )
        return out
