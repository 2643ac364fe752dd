"""The ``watchlist`` analytic at run time: the hub's list, kept current, and exact matches.

Why it is built this way:

- **The list comes from the hub only.** It arrives retained on this edge's own config
  topic, which only the hub's account may write; each message is parsed strictly
  (``contract.loads`` then ``WatchlistMessage``) and a message that is malformed, too
  large or older than the list held is refused and logged, never half applied. The newest
  list is also written (atomically) to the edge's state folder when the worker lends one
  (``ctx.state_dir``), so a box that restarts while the broker is away still knows it.
- **One list per topic in the process.** Every camera with a ``watchlist`` analytic
  subscribes the same topic; they share one ``WatchList`` and subscribe its one bound
  ``on_message``, so whether the worker keeps one callback per topic or calls them all,
  every camera sees the newest list (a camera left with an old list would alert on a plate
  the hub has taken off).
- **Exact matches only.** The plate the traffic analytic reports (already refused when
  unsure: ``edge.analytics.plates``) is normalized and compared for equality with the
  listed plates. No edit distance, no look-alike folding: a wrong hit sends people after
  the wrong car, a miss only waits for the next camera.
- **One alert per sighting**, a ``new`` and its ``end`` at once, and at most one per
  plate per ``cooldown_s`` (a car that commits two violations, or passes two lines, is one
  alert). Plates are personal data: logs name the entry id, never the plate.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.analytics.base import (
    Analytic,
    CameraContext,
    Observation,
    Outputs,
    Sample,
    Schedule,
    Transition,
)
from edge.analytics.plugins.watchlist.config import WatchlistAnalytic
from edgewatch import contract
from edgewatch.contract import WatchlistEntry, WatchlistMessage

log = logging.getLogger(__name__)

STATE_FILE = "watchlist.json"
_MAX_COOLDOWNS = 10_000  # plates remembered for the cooldown before old ones are pruned


class WatchList:
    """The newest list received on one topic. Written on the MQTT thread, read on the
    camera threads: the lookup table is replaced whole, under a lock."""

    def __init__(self, topic: str, store: Path | None = None) -> None:
        self.topic = topic
        self.store = store
        self.version: int | None = None
        self.updated_at: datetime | None = None
        self.refused = 0
        self._by_plate: dict[str, WatchlistEntry] = {}
        self._lock = threading.Lock()
        if store is not None:
            self._restore(store)

    def __len__(self) -> int:
        return len(self._by_plate)

    def lookup(self, plate: str) -> WatchlistEntry | None:
        """The entry listing ``plate`` (normalized), or None."""
        with self._lock:
            return self._by_plate.get(plate)

    def on_message(self, topic: str, payload: bytes) -> None:
        """The subscription callback (MQTT thread)."""
        self.apply(payload, source="mqtt")

    def apply(self, payload: bytes, source: str = "mqtt") -> bool:
        """Take ``payload`` as the list when it is valid and newer; True when taken."""
        try:
            msg = WatchlistMessage.model_validate(
                contract.loads(payload, limit=contract.WATCHLIST_MAX_BYTES)
            )
        except (contract.PayloadError, ValidationError) as exc:
            self.refused += 1
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            log.warning(
                "watch list refused: not a valid list",
                extra={"topic": self.topic, "source": source, "detail": detail[:200]},
            )
            return False
        with self._lock:
            held = self.version
            if held is not None and msg.version < held:
                self.refused += 1
                log.warning(
                    "watch list refused: older than the list held",
                    extra={"topic": self.topic, "version": msg.version, "held": held},
                )
                return False
            if held is not None and msg.version == held:
                return False  # the same list again (a retained copy on reconnect)
            self._by_plate = {e.plate: e for e in msg.entries}
            self.version, self.updated_at = msg.version, msg.updated_at
        log.info(
            "watch list updated",
            extra={
                "topic": self.topic,
                "source": source,
                "version": msg.version,
                "entries": len(msg.entries),
            },
        )
        if source == "mqtt" and self.store is not None:
            self._save(self.store, payload)
        return True

    def _save(self, path: Path, payload: bytes) -> None:
        """Replace the state file atomically: a crash leaves the old list or the new one."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            doc = json.dumps({"topic": self.topic, "message": json.loads(payload)})
            fd, tmp = tempfile.mkstemp(prefix=".watchlist-", dir=path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(doc)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, ValueError) as exc:  # a full disk must not lose the list in memory
            log.error("watch list not saved", extra={"path": str(path), "error": str(exc)})

    def _restore(self, path: Path) -> None:
        if not path.exists():
            return
        try:
            doc = contract.loads(path.read_bytes(), limit=2 * contract.WATCHLIST_MAX_BYTES)
            if not isinstance(doc, dict) or doc.get("topic") != self.topic:
                log.warning("watch list file is for another topic", extra={"path": str(path)})
                return
            payload = json.dumps(doc["message"]).encode()
        except (OSError, contract.PayloadError, KeyError) as exc:
            log.warning("watch list file unreadable", extra={"path": str(path), "error": str(exc)})
            return
        self.apply(payload, source="file")


_LISTS: dict[str, WatchList] = {}
_LISTS_LOCK = threading.Lock()


def shared_list(topic: str, store: Path | None) -> tuple[WatchList, bool]:
    """The process's list for ``topic`` (made when new: True), see the module docstring."""
    with _LISTS_LOCK:
        wl = _LISTS.get(topic)
        if wl is not None:
            if wl.store is None and store is not None:
                wl.store = store
            return wl, False
        wl = _LISTS[topic] = WatchList(topic, store)
        return wl, True


def _box(value: Any, kind: type, lo: float, hi: float) -> tuple[Any, Any, Any, Any] | None:
    try:
        vals = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vals) != 4 or not all(math.isfinite(v) and lo <= v <= hi for v in vals):
        return None
    return vals  # type: ignore[return-value]


class WatchlistMatcher:
    """Plate observations -> alert transitions: exact match, then the per-plate cooldown."""

    def __init__(self, watchlist: WatchList, cooldown_s: float) -> None:
        self.watchlist = watchlist
        self.cooldown_s = cooldown_s
        self._last: dict[str, datetime] = {}  # normalized plate -> time of its last alert

    def match(self, obs: Observation) -> list[Transition]:
        text = obs.data.get("plate")
        if obs.kind != "plate" or not isinstance(text, str):
            return []
        try:
            plate = contract.normalize_plate(text)
        except ValueError:
            return []  # not a plate the list could hold
        entry = self.watchlist.lookup(plate)
        if entry is None:
            return []
        last = self._last.get(plate)
        # abs(): a clock stepped back must not silence a plate for longer than the cooldown
        if last is not None and abs((obs.time - last).total_seconds()) < self.cooldown_s:
            return []
        self._remember(plate, obs.time)
        return self._alert(obs, text, entry)

    def _remember(self, plate: str, t: datetime) -> None:
        self._last[plate] = t
        if len(self._last) > _MAX_COOLDOWNS:
            keep = {
                p: at
                for p, at in self._last.items()
                if abs((t - at).total_seconds()) < self.cooldown_s
            }
            self._last = keep

    def _alert(self, obs: Observation, text: str, entry: WatchlistEntry) -> list[Transition]:
        d = obs.data
        label = d.get("label")
        label = label if isinstance(label, str) and 0 < len(label) <= 64 else "vehicle"
        box = _box(d.get("box"), float, 0.0, 1.0) or (0.0, 0.0, 0.0, 0.0)
        box_px = _box(d.get("box_px"), int, 0, 1_000_000) or (0, 0, 0, 0)
        source = d.get("event_id")
        rule = d.get("rule")
        # Attribute names start with "plate" where they say who is listed and why: the hub
        # shows those only to roles that may see evidence (central.services.alerts).
        attributes: dict[str, str | int | float | bool | None] = {
            "plate": text,
            "plate_list_id": entry.id,
            "plate_list_reason": entry.reason,
            "plate_list_version": self.watchlist.version,
            "source_event_id": str(source) if source is not None else None,
            "source_rule": str(rule) if rule is not None else None,
        }
        eid = uuid.uuid4()
        common: dict[str, Any] = {
            "event_id": eid,
            "label": label,
            "start_time": obs.time,
            "frame_time": obs.time,
            "score": 1.0,
            "box": box,
            "box_px": box_px,
        }
        log.info(
            "watch list match",
            extra={"entry_id": entry.id, "event_id": str(eid), "source_event_id": source},
        )
        return [
            Transition("new", seq=0, attributes=dict(attributes), **common),
            Transition("end", seq=1, end_time=obs.time, attributes=dict(attributes), **common),
        ]


class WatchlistAnalyticRuntime(Analytic):
    kind = "watchlist"

    def __init__(self, cfg: WatchlistAnalytic, ctx: CameraContext) -> None:
        topic = cfg.topic or contract.watchlist_topic(ctx.site, ctx.edge_id)
        state_dir = getattr(ctx, "state_dir", None)  # lent by workers that keep state
        store = Path(state_dir) / STATE_FILE if state_dir else None
        self.watchlist, _new = shared_list(topic, store)
        self.matcher = WatchlistMatcher(self.watchlist, cfg.cooldown_s)
        # No frames and no model: the worker only calls ``observe`` with plates.
        self.schedule = Schedule(period_s=3600.0, model=None, priority=cfg.priority)
        ctx.subscribe(topic, self.watchlist.on_message)  # the retained list comes on connect

    def update(self, sample: Sample) -> Outputs:
        return Outputs()

    def observe(self, obs: Observation) -> Outputs:
        return self.out(self.matcher.match(obs))


def build(cfg: WatchlistAnalytic, ctx: CameraContext) -> WatchlistAnalyticRuntime:
    return WatchlistAnalyticRuntime(cfg, ctx)
