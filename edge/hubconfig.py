"""Cameras configured at the hub: the retained message checked, planned and kept on disk.

Why a module of its own: applying a configuration live is a plan (which cameras to
start, restart, stop, refuse) made from what runs and what is wanted, and that plan must
be right before anything is touched. A camera whose wanted configuration cannot be
validated (or whose hash does not match what the hub says it sent) keeps running its
last good one and reports why, with the key path; the others are not disturbed. The last
good set is written atomically (mode 0600: camera URLs carry credentials) so an edge
restarted while the hub or the broker is away starts with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config import CameraConfig
from edgewatch import contract
from edgewatch.configfile import format_validation_error

STATE_FILE = "cameras.json"


class ConfigRefused(ValueError):
    """The whole message cannot be used (not JSON, not the contract, an older version)."""


@dataclass
class Wanted:
    """One camera the hub wants: its validated config, or why it cannot be used."""

    camera_id: str
    version: str
    doc: dict[str, Any]
    cfg: CameraConfig | None = None
    error: str | None = None


@dataclass
class Plan:
    start: list[Wanted] = field(default_factory=list)  # new cameras
    restart: list[Wanted] = field(default_factory=list)  # running, with a new version
    stop: list[str] = field(default_factory=list)  # running, no longer wanted
    refuse: list[Wanted] = field(default_factory=list)  # wanted, invalid: keep the old one
    keep: list[str] = field(default_factory=list)  # running the wanted version already


def version_of(cfg: CameraConfig) -> str:
    """A file camera's version: the hash of its configuration as the edge parsed it."""
    return contract.config_hash(cfg.model_dump(mode="json"))


def parse(payload: bytes, newer_than: int) -> tuple[int, list[Wanted]]:
    """The hub's message for this edge: its version and each camera, validated."""
    try:
        doc = contract.loads(payload, limit=contract.MAX_EDGE_CONFIG_BYTES)
        msg = contract.EdgeConfigMessage.model_validate(doc)
    except (contract.PayloadError, ValidationError, ValueError) as exc:
        raise ConfigRefused(f"not an edge configuration: {str(exc)[:300]}") from None
    if msg.version <= newer_than:
        raise ConfigRefused(f"version {msg.version} is not newer than {newer_than}")
    out = []
    seen: set[str] = set()
    for e in msg.cameras:
        w = Wanted(e.camera_id, e.config_version, dict(e.config))
        if e.camera_id in seen:
            w.error = "camera listed twice"
        elif contract.config_hash(w.doc) != e.config_version:
            w.error = "config_version does not match its configuration"
        elif w.doc.get("id") != e.camera_id:
            w.error = f"id: {w.doc.get('id')!r} is not the camera's id {e.camera_id!r}"
        else:
            try:
                w.cfg = CameraConfig.model_validate(w.doc)
            except ValidationError as exc:
                w.error = "; ".join(format_validation_error(exc))[:1000]
        seen.add(e.camera_id)
        out.append(w)
    return msg.version, out


def plan(running: dict[str, str], wanted: list[Wanted]) -> Plan:
    """``running``: camera id -> the version it runs."""
    p = Plan()
    ids = {w.camera_id for w in wanted}
    for w in wanted:
        if w.error is not None or w.cfg is None:
            p.refuse.append(w)
        elif w.camera_id not in running:
            p.start.append(w)
        elif running[w.camera_id] != w.version:
            p.restart.append(w)
        else:
            p.keep.append(w.camera_id)
    p.stop = [cid for cid in running if cid not in ids]
    return p


def save(folder: Path, version: int, cameras: list[tuple[str, str, dict[str, Any]]]) -> None:
    """The cameras running now (id, version, config), written atomically, owner-only."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": version,
        "cameras": [{"camera_id": c, "config_version": v, "config": d} for c, v, d in cameras],
    }
    tmp = folder / (STATE_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / STATE_FILE)


def load(folder: Path) -> tuple[int, list[Wanted]]:
    """The last good set, or (0, []) when there is none or it cannot be read."""
    path = folder / STATE_FILE
    try:
        doc = json.loads(path.read_text())
        version = int(doc["version"])
        entries = doc["cameras"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0, []
    out = []
    for e in entries:
        try:
            cfg = CameraConfig.model_validate(e["config"])
        except (ValidationError, KeyError, TypeError):
            continue
        out.append(Wanted(cfg.id, str(e["config_version"]), dict(e["config"]), cfg))
    return version, out
