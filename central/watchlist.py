"""The plate watch list: entries kept at the hub, sent retained to every edge.

Why it is built this way:

- **The hub is the list's only source.** Operators add and remove plates through the API
  (``central.api.watchlist``); every change raises the list's version in the same
  transaction. The whole list goes to each known edge (``EdgeRow``: one per site and edge
  id) as a ``WatchlistMessage``, QoS 1 and retained, on ``edgewatch/v1/config/{site}/
  {edge_id}/watchlist``: the broker lets only the hub's account write there and each edge
  read only its own, so an edge believes a list because of where it came from.
- **Delivery is a reconcile loop, not a fire-and-forget** (``central.delivery.retained``).
  A thread knows which version it last published to which edge; it publishes to every edge
  that lacks the current one right after a change, after every (re)connect of the hub to
  the broker (a broker that lost its retained store gets the list again) and every
  ``resync_s`` (an edge seen for the first time gets it within seconds). A failed publish
  is retried on the next round.
- **Versions only grow, across databases too.** A change sets the version to
  ``max(version + 1, now in ms)`` and so does every hub start; an edge refuses a version
  older than the one it holds, so a hub on a new or restored database must never go back.
- **Plates are personal data**: only admins and operators read or change the list (the
  roles that review violations and their plates), entries are never deleted but stamped
  removed (who added and who removed each stays on record), and logs name entry ids,
  never plates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.delivery.retained import Publish, RetainedSync, hub_publisher
from central.storage.db import as_utc
from central.storage.models import EdgeRow
from central.storage.watchlist_models import WatchlistEntryRow, WatchlistStateRow
from edgewatch import contract
from edgewatch.contract import WatchlistEntry, WatchlistMessage

log = logging.getLogger(__name__)


class WatchlistError(ValueError):
    status = 422


class AlreadyListed(WatchlistError):
    status = 409


class ListFull(WatchlistError):
    status = 409


class NoSuchEntry(WatchlistError):
    status = 404


def _now() -> datetime:
    return datetime.now(UTC)


class WatchlistService(RetainedSync):
    """The list in the database, and its delivery to the edges (see the module docstring)."""

    thread_name = "watchlist"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publish: Publish | None,
        connected: Callable[[], bool] = lambda: True,
        *,
        resync_s: float = 5.0,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(publish, connected, resync_s=resync_s, poll_s=poll_s)
        self.sessions = sessions
        self._payload: tuple[int, bytes] | None = None

    @classmethod
    def for_consumer(cls, sessions: sessionmaker[Session], consumer: Any) -> WatchlistService:
        """The service as the hub runs it: published on the MQTT consumer's connection
        (none when the hub runs without one: the list is kept but not sent)."""
        if consumer is None:
            return cls(sessions, None, connected=lambda: False)
        return cls(sessions, hub_publisher(consumer), connected=consumer.connected.is_set)

    # -- the list ----------------------------------------------------------------------------

    def state(self, session: Session) -> tuple[int, datetime]:
        row = session.get(WatchlistStateRow, 1)
        if row is None:  # the migration made it; only a hand-edited database lacks it
            return 0, _now()
        return row.version, as_utc(row.updated_at)  # type: ignore[return-value]

    def entries(self, session: Session) -> list[WatchlistEntryRow]:
        q = (
            select(WatchlistEntryRow)
            .where(WatchlistEntryRow.removed_at.is_(None))
            .order_by(WatchlistEntryRow.id)
        )
        return list(session.scalars(q))

    def _active_count(self, session: Session) -> int:
        q = select(func.count()).where(WatchlistEntryRow.removed_at.is_(None))
        return int(session.scalar(q) or 0)

    def message(self, session: Session) -> WatchlistMessage:
        version, updated_at = self.state(session)
        return WatchlistMessage(
            version=version,
            updated_at=updated_at,
            entries=[
                WatchlistEntry(plate=e.plate, reason=e.reason, id=e.id)
                for e in self.entries(session)
            ],
        )

    def add(self, plate: str, reason: str | None, actor: str) -> WatchlistEntryRow:
        """List ``plate`` (normalized here); AlreadyListed, ListFull or WatchlistError."""
        try:
            norm = contract.normalize_plate(plate)
        except ValueError as exc:
            raise WatchlistError(str(exc)) from None
        now = _now()
        try:
            with self.sessions.begin() as session:
                listed = session.scalar(
                    select(WatchlistEntryRow.id).where(
                        WatchlistEntryRow.plate == norm, WatchlistEntryRow.removed_at.is_(None)
                    )
                )
                if listed is not None:
                    raise AlreadyListed(f"the plate is already on the list (entry {listed})")
                if self._active_count(session) >= contract.WATCHLIST_MAX_ENTRIES:
                    raise ListFull(
                        f"the list is full ({contract.WATCHLIST_MAX_ENTRIES} entries): "
                        "remove some first"
                    )
                row = WatchlistEntryRow(plate=norm, reason=reason, created_by=actor, created_at=now)
                session.add(row)
                session.flush()
                version = self._bump(session, now)
        except IntegrityError:  # another hub listed it at the same moment
            raise AlreadyListed("the plate is already on the list") from None
        log.info(
            "watch list entry added", extra={"entry_id": row.id, "by": actor, "version": version}
        )
        self.changed()
        return row

    def remove(self, entry_id: int, actor: str) -> WatchlistEntryRow:
        now = _now()
        with self.sessions.begin() as session:
            row = session.get(WatchlistEntryRow, entry_id)
            if row is None or row.removed_at is not None:
                raise NoSuchEntry(f"no entry {entry_id} on the list")
            row.removed_at, row.removed_by = now, actor
            version = self._bump(session, now)
        log.info(
            "watch list entry removed",
            extra={"entry_id": entry_id, "by": actor, "version": version},
        )
        self.changed()
        return row

    def _bump(self, session: Session, now: datetime) -> int:
        """Raise the version, atomically (one UPDATE: two hubs cannot both take v+1)."""
        ms = int(now.timestamp() * 1000)
        st = WatchlistStateRow
        session.execute(
            update(st)
            .where(st.id == 1)
            .values(version=case((st.version + 1 > ms, st.version + 1), else_=ms), updated_at=now)
        )
        version = session.scalar(select(st.version).where(st.id == 1))
        if version is None:
            session.add(st(id=1, version=ms, updated_at=now))
            version = ms
        return int(version)

    # -- delivery ----------------------------------------------------------------------------

    def _current(self, session: Session) -> tuple[int, bytes]:
        version, _ = self.state(session)
        if self._payload is None or self._payload[0] != version:
            self._payload = (version, self.message(session).model_dump_json().encode())
        return self._payload

    def sync(self) -> int:
        """Publish the current list to every known edge that lacks it; how many got it."""
        if self.publish is None:
            return 0
        with self.sessions() as session:
            version, payload = self._current(session)
            edges = session.execute(select(EdgeRow.site, EdgeRow.edge_id)).all()
        sent = 0
        for site, edge_id in edges:
            if self._sent.get((site, edge_id)) == version:
                continue
            topic = contract.watchlist_topic(site, edge_id)
            try:
                self.publish(topic, payload)
            except Exception as exc:  # the broker went away: the next round retries
                log.warning(
                    "watch list not delivered; retrying",
                    extra={"site": site, "edge_id": edge_id, "error": str(exc)[:200]},
                )
                break
            self._sent[(site, edge_id)] = version
            sent += 1
        if sent:
            log.info(
                "watch list published",
                extra={"version": version, "edges": sent, "bytes": len(payload)},
            )
        return sent

    def start(self) -> None:
        now = _now()
        try:
            with self.sessions.begin() as session:
                self._bump(session, now)  # see "Versions only grow" above
        except Exception as exc:
            log.error("watch list version not raised at start", extra={"error": str(exc)[:200]})
        self.start_loop()
