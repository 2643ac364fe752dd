"""Scripted scenarios for ``watchlist``: listed plates read, and the near misses around them.

Unit-style checks, not an accuracy claim: the plate reader is not in the loop (its own
evaluation is ``eval_plates``); each scenario scripts the lists the hub sends (as the
bytes of retained messages on the edge's config topic) and the plates the traffic
analytic reports, in Vietnamese formats drawn from ``seed``, and feeds them to the
analytic built through the registry. Expected alerts are counted per scenario: per
scenario ``min(expected, raised)`` are true, the excess false, the shortfall missed.

Near misses are the ways a watch list goes wrong: a plate one character off (substituted,
a look-alike letter for a digit, transposed, one shorter or longer), a plate taken off the
list, a stale retained list replayed after the removal, a forged or malformed list, the
same car seen again within the cooldown, an unread plate, and a read before any list came.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.analytics import registry
from edge.analytics.base import CameraContext, Observation
from edgewatch import contract

T0 = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
PROVINCES = (29, 30, 43, 51, 59, 75)
SERIES = "ABCDEFGHKLMNPRSTUVXYZ"


def random_plate(rng: random.Random) -> str:
    """A canonical car plate as the traffic analytic reports it, e.g. ``30A-123.45``."""
    digits = "".join(rng.choice("0123456789") for _ in range(5))
    return f"{rng.choice(PROVINCES)}{rng.choice(SERIES)}-{digits[:3]}.{digits[3:]}"


def message(version: int, plates: list[str], **extra: Any) -> bytes:
    entries = [
        {"plate": contract.normalize_plate(p), "reason": "scripted", "id": i + 1}
        for i, p in enumerate(plates)
    ]
    doc = contract.WatchlistMessage(version=version, updated_at=T0, entries=entries).model_dump(
        mode="json"
    )
    doc.update(extra)
    return json.dumps(doc).encode()


def plate_obs(plate: str | None, at_s: float) -> Observation:
    return Observation(
        "plate",
        T0 + timedelta(seconds=at_s),
        {
            "plate": plate,
            "event_id": str(uuid.uuid4()),
            "rule": "red_light",
            "label": "car",
            "box": (0.4, 0.5, 0.6, 0.7),
            "box_px": (512, 360, 768, 504),
        },
    )


@dataclass
class Edge:
    """A fake edge: one subscription callback per topic (as ``Publisher.subscribe``)."""

    edge_id: str
    subs: dict[str, Callable[[str, bytes], None]] = field(default_factory=dict)

    def ctx(self) -> CameraContext:
        return CameraContext(
            camera=None,
            site="hue",
            edge_id=self.edge_id,
            class_names=lambda m: (),
            detector=lambda m: None,
            subscribe=self.subs.__setitem__,
            plate_reader=lambda: None,
        )

    def send(self, payload: bytes) -> None:
        topic = contract.watchlist_topic("hue", self.edge_id)
        for pattern, cb in list(self.subs.items()):
            if pattern == topic:
                cb(topic, payload)


Step = tuple[str, Any]  # ("list", bytes) | ("read", (plate, at_s)) | ("read2", ...)


def _run(steps: list[Step], cameras: int, rng: random.Random) -> int:
    edge = Edge(f"eval-{rng.getrandbits(48):012x}")
    cfg = registry.plugin("watchlist").config(type="watchlist")
    runtimes = [registry.plugin("watchlist").build(cfg, edge.ctx()) for _ in range(cameras)]
    raised = 0
    for what, arg in steps:
        if what == "list":
            edge.send(arg)
        else:
            plate, at_s, cam = arg
            out = runtimes[cam].observe(plate_obs(plate, at_s))
            raised += sum(t.type == "new" and t.kind == "watchlist" for t in out.transitions)
    return raised


def scenarios(rng: random.Random) -> list[tuple[str, list[Step], int, int, int]]:
    """(name, steps, cameras, expected alerts, near-miss reads)."""
    p = random_plate(rng)
    other = random_plate(rng)
    while other == p:
        other = random_plate(rng)
    listed = message(1, [p, other])
    head, digits = p.split("-")
    d = digits.replace(".", "")
    swap = d[:-2] + d[-1] + d[-2] if d[-1] != d[-2] else d[:-1] + str((int(d[-1]) + 1) % 10)
    sub = d[:-1] + str((int(d[-1]) + 1) % 10)
    for digit, letter in (("0", "O"), ("1", "I"), ("8", "B"), ("5", "S"), ("2", "Z")):
        if digit in d:  # the letter the digit is mistaken for
            lookalike = d.replace(digit, letter, 1)
            break
    else:
        lookalike = d[:-1] + "G"

    def fmt(ds: str) -> str:
        return f"{head}-{ds[:3]}.{ds[3:]}"

    bike = (
        f"{rng.choice(PROVINCES)}C{rng.randint(1, 9)}-{rng.randint(100, 999)}.{rng.randint(10, 99)}"
    )
    read = lambda plate, at=0.0, cam=0: ("read", (plate, at, cam))  # noqa: E731
    return [
        ("listed plate read", [("list", listed), read(p)], 1, 1, 0),
        ("listed motorbike plate", [("list", message(3, [bike])), read(bike)], 1, 1, 0),
        ("plate added later", [("list", message(1, [other])), ("list", message(2, [other, p])),
                               read(p, 5)], 1, 1, 0),
        ("seen again after the cooldown", [("list", listed), read(p), read(p, 301)], 1, 2, 0),
        ("two cameras, one list", [("list", listed), read(p, 0, 1), read(other, 0, 0)], 2, 2, 0),
        ("one digit off", [("list", listed), read(fmt(sub))], 1, 0, 1),
        ("look-alike letter", [("list", listed), read(fmt(lookalike))], 1, 0, 1),
        ("two digits transposed", [("list", listed), read(fmt(swap))], 1, 0, 1),
        ("one character short", [("list", listed), read(f"{head}-{d[:4]}")], 1, 0, 1),
        ("one character long", [("list", listed), read(fmt(d + "7"))], 1, 0, 1),
        ("taken off the list", [("list", listed), ("list", message(2, [other])), read(p, 5)],
         1, 0, 1),
        ("stale list replayed", [("list", message(2, [other])), ("list", listed), read(p, 5)],
         1, 0, 1),
        ("forged list (unknown field)", [("list", message(5, [p], forged=True)), read(p)], 1, 0, 1),
        ("malformed list (plate not normalized)",
         [("list", message(5, [p]).replace(contract.normalize_plate(p).encode(), p.encode())),
          read(p)], 1, 0, 1),
        ("again within the cooldown", [("list", listed), read(p), read(p, 120)], 1, 1, 1),
        ("unread plate", [("list", listed), read(None)], 1, 0, 1),
        ("read before any list", [read(p), ("list", listed)], 1, 0, 1),
    ]  # fmt: skip


def evaluate(seed: int = 0) -> dict:
    rng = random.Random(seed)
    tp = fp = fn = positives = near = 0
    lines = []
    script = scenarios(rng)
    for name, steps, cameras, expected, near_reads in script:
        got = _run(steps, cameras, rng)
        tp += min(expected, got)
        fp += max(0, got - expected)
        fn += max(0, expected - got)
        positives += expected
        near += near_reads
        if got != expected:
            lines.append(f"{name}: expected {expected}, raised {got}")
    return {
        "scenarios": len(script),
        "positives": positives,
        "near_misses": near,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "notes": "; ".join(lines) or "every scenario as scripted (exact matches, no fuzzing)",
    }
