"""Evidence an officer can act on: a clip cut from the camera's own packets, three frames
with overlays, metadata, and a manifest with the SHA-256 of every file.

``PacketRing`` keeps the last seconds of a camera's compressed video exactly as it
arrived (no decode, no re-encode). A clip is remuxed from it, starting at the keyframe at
or before the wanted start, into MP4: the pixels are the camera's, bit for bit.
Each connection is its own segment (codec parameters can change on a reconnect), kept
with a copy of its stream parameters so a clip can be written after the connection ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np


@dataclass
class _Packet:
    data: bytes
    pts: int
    dts: int
    key: bool
    wall: float  # capture time, epoch seconds


@dataclass
class _Segment:
    template: Any  # a stream holding a copy of the connection's codec parameters
    holder: Any  # the in-memory container that owns it
    time_base: Fraction
    packets: deque[_Packet] = field(default_factory=deque)


@dataclass
class ClipInfo:
    path: Path
    start: float  # epoch seconds of the first frame (a keyframe)
    end: float
    packets: int


class PacketRing:
    """The last ``seconds`` of one camera's packets (at most ``max_bytes``)."""

    def __init__(self, seconds: float = 20.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._segments: deque[_Segment] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def new_segment(self, stream: av.VideoStream) -> None:
        """Call when a connection opens, with its video stream."""
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(stream)
        tb = stream.time_base or Fraction(1, 90000)
        with self._lock:
            self._segments.append(_Segment(template, holder, tb))

    def add(self, packet: av.Packet, wall: float) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None or not self._segments:
            return  # untimed packets cannot be placed in a clip
        dts = packet.dts if packet.dts is not None else pts
        p = _Packet(bytes(packet), int(pts), int(dts), bool(packet.is_keyframe), wall)
        with self._lock:
            seg = self._segments[-1]
            if not seg.packets and not p.key:
                return  # a segment starts at a keyframe
            seg.packets.append(p)
            self._bytes += len(p.data)
            self._trim(wall)

    def _trim(self, now: float) -> None:
        # Whole GOPs leave from the front, so what is kept always starts at a keyframe.
        while self._segments:
            seg = self._segments[0]
            if not seg.packets:
                if len(self._segments) == 1:
                    return
                self._segments.popleft()
                continue
            too_old = now - seg.packets[0].wall > self.seconds
            if not (too_old or self._bytes > self.max_bytes):
                return
            self._bytes -= len(seg.packets.popleft().data)
            while seg.packets and not seg.packets[0].key:
                self._bytes -= len(seg.packets.popleft().data)

    @property
    def span(self) -> tuple[float, float] | None:
        with self._lock:
            walls = [w for s in self._segments if s.packets
                     for w in (s.packets[0].wall, s.packets[-1].wall)]  # fmt: skip
        return (min(walls), max(walls)) if walls else None

    def clip(self, t_from: float, t_to: float, path: Path) -> ClipInfo | None:
        """Remux the packets covering [t_from, t_to] into an MP4 at ``path``."""
        with self._lock:
            best: tuple[_Segment, list[_Packet]] | None = None
            for seg in self._segments:
                pk = list(seg.packets)
                if not pk or pk[-1].wall < t_from or pk[0].wall > t_to:
                    continue
                start = 0
                for i, p in enumerate(pk):
                    if p.key and p.wall <= t_from:
                        start = i
                sel = [p for p in pk[start:] if p.wall <= t_to]
                if sel and (best is None or len(sel) > len(best[1])):
                    best = (seg, sel)
        if best is None:
            return None
        seg, sel = best
        path.parent.mkdir(parents=True, exist_ok=True)
        p0, d0 = sel[0].pts, min(p.dts for p in sel)
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream_from_template(seg.template)
            for p in sel:
                q = av.Packet(p.data)
                q.pts, q.dts = p.pts - p0 + (sel[0].dts - d0), p.dts - d0
                q.time_base = seg.time_base
                q.is_keyframe = p.key
                q.stream = stream
                out.mux(q)
        return ClipInfo(path, sel[0].wall, sel[-1].wall, len(sel))


class TrackHistory:
    """Recent boxes of every track (for overlays on frames decoded later)."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self._h: dict[int, deque[tuple[float, np.ndarray]]] = {}

    def add(self, t: float, track_ids: np.ndarray, xyxy: np.ndarray) -> None:
        for tid, box in zip(track_ids.tolist(), xyxy, strict=True):
            self._h.setdefault(tid, deque()).append((t, np.asarray(box, np.float32)))
        for tid in list(self._h):
            q = self._h[tid]
            while q and t - q[0][0] > self.seconds:
                q.popleft()
            if not q:
                del self._h[tid]

    def box_at(self, tid: int, t: float) -> np.ndarray | None:
        q = self._h.get(tid)
        if not q:
            return None
        times = np.array([x[0] for x in q])
        i = int(np.argmin(np.abs(times - t)))
        if abs(times[i] - t) > 1.0:
            return None
        return q[i][1]


def frames_at(clip: Path, clip_start: float, times: list[float]) -> list[tuple[float, np.ndarray]]:
    """Decode the clip and return, for each wanted time, the nearest frame (time, BGR)."""
    got: list[tuple[float, np.ndarray] | None] = [None] * len(times)
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        tb = float(stream.time_base or 0) or 1 / 90000
        first: float | None = None
        for frame in c.decode(stream):
            if frame.pts is None:
                continue
            ts = frame.pts * tb
            first = ts if first is None else first
            wall = clip_start + (ts - first)
            for k, want in enumerate(times):
                cur = got[k]
                if cur is None or abs(wall - want) < abs(cur[0] - want):
                    got[k] = (wall, frame.to_ndarray(format="bgr24"))
    return [g for g in got if g is not None]


def draw(
    frame: np.ndarray,
    box_norm: np.ndarray | None,
    lines: list[tuple[tuple[float, float], tuple[float, float]]],
    polygons: list[list[tuple[float, float]]],
    caption: str,
) -> np.ndarray:
    """The overlay: the rule's geometry (yellow), the vehicle (red), a caption band."""
    img = frame.copy()
    h, w = img.shape[:2]
    scale = np.array([w, h], np.float64)
    for poly in polygons:
        pts = (np.asarray(poly) * scale).astype(np.int32)
        cv2.polylines(img, [pts], True, (0, 220, 255), 1, cv2.LINE_AA)
    for a, b in lines:
        pa = tuple(int(v) for v in np.asarray(a) * scale)
        pb = tuple(int(v) for v in np.asarray(b) * scale)
        cv2.line(img, pa, pb, (0, 220, 255), 2, cv2.LINE_AA)
    if box_norm is not None:
        x1, y1, x2, y2 = (np.asarray(box_norm) * np.tile(scale, 2)).astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 2)
    band = max(18, h // 18)
    cv2.rectangle(img, (0, h - band), (w, h), (0, 0, 0), -1)
    cv2.putText(
        img, caption, (4, h - band // 4), cv2.FONT_HERSHEY_SIMPLEX, band / 40, (255, 255, 255), 1,
        cv2.LINE_AA,
    )  # fmt: skip
    return img


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path) -> str:
    """``manifest.json``: the SHA-256 and size of every other file in the package.
    Returns the manifest's own SHA-256 (published with the event, so a file changed later
    is found out)."""
    files = {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != "manifest.json"
    }
    doc = {"algorithm": "sha256", "created": datetime.now(UTC).isoformat(), "files": files}
    body = json.dumps(doc, indent=2, sort_keys=True).encode()
    (folder / "manifest.json").write_bytes(body)
    return hashlib.sha256(body).hexdigest()


def verify_manifest(folder: Path, manifest_sha256: str | None = None) -> list[str]:
    """Problems found (empty when every file matches the manifest)."""
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        return ["manifest.json missing"]
    body = mpath.read_bytes()
    problems = []
    if manifest_sha256 is not None and hashlib.sha256(body).hexdigest() != manifest_sha256:
        problems.append("manifest.json differs from the one published with the event")
    try:
        listed = json.loads(body)["files"].items()
    except (ValueError, KeyError, AttributeError):
        return [*problems, "manifest.json is not a manifest"]
    for name, meta in listed:
        p = folder / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != meta["sha256"]:
            problems.append(f"{name}: SHA-256 differs")
    return problems


@dataclass
class Package:
    folder: Path
    manifest_sha256: str
    files: list[str]
    metadata: dict[str, Any]


def assemble(
    folder: Path,
    ring: PacketRing,
    history: TrackHistory,
    *,
    track_id: int,
    t: float,
    frame_wh: tuple[int, int],
    metadata: dict[str, Any],
    lines: list[tuple[tuple[float, float], tuple[float, float]]] = (),  # type: ignore[assignment]
    polygons: list[list[tuple[float, float]]] = (),  # type: ignore[assignment]
    pre_s: float = 4.0,
    post_s: float = 4.0,
    around_s: float = 1.0,
    plate_reader: Any = None,
) -> Package:
    """Write one violation's evidence package into ``folder`` (call once ``t + post_s``
    has passed, so the ring holds the after part). ``metadata`` is extended with what was
    found and written as ``metadata.json``; then ``manifest.json`` seals the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata)
    meta["time"] = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    info = ring.clip(t - pre_s, t + post_s, folder / "clip.mp4")
    files = []
    if info is None:
        meta["clip"] = None
        meta["clip_reason"] = "no video in the packet ring for that time"
    else:
        files.append("clip.mp4")
        meta["clip"] = {
            "file": "clip.mp4",
            "start": datetime.fromtimestamp(info.start, UTC).isoformat(timespec="milliseconds"),
            "end": datetime.fromtimestamp(info.end, UTC).isoformat(timespec="milliseconds"),
            "packets": info.packets,
            "reencoded": False,
        }
        wanted = {"before": t - around_s, "at": t, "after": t + around_s}
        got = frames_at(info.path, info.start, list(wanted.values()))
        w, h = frame_wh  # the analysed (detect) stream's size: the boxes are in its pixels
        crops = []
        for (name, _want), (ft, img) in zip(wanted.items(), got, strict=False):
            box = history.box_at(track_id, ft)
            norm = None if box is None else box / np.array([w, h, w, h], np.float32)
            ih, iw = img.shape[:2]
            if norm is not None and (iw, ih) != (w, h):
                # the clip came from the record stream, at another resolution: crop in its
                # pixels (a plate read from the main stream's pixels, not the sub-stream's)
                box = norm * np.array([iw, ih, iw, ih], np.float32)
            caption = f"{meta.get('rule', '')} {name} {datetime.fromtimestamp(ft, UTC):%H:%M:%S.%f}"
            cv2.imwrite(
                str(folder / f"{name}.jpg"),
                draw(img, norm, list(lines), list(polygons), caption[:-3]),
            )
            files.append(f"{name}.jpg")
            if box is not None:
                x1, y1, x2, y2 = box.astype(int)
                crop = img[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
                if crop.size:
                    crops.append(crop)
        if crops:
            best = max(crops, key=lambda c: c.shape[0] * c.shape[1])
            cv2.imwrite(str(folder / "vehicle.jpg"), best)
            files.append("vehicle.jpg")
        plate = None
        reason = "no plate reader configured"
        if plate_reader is not None and crops:
            plate, reason = plate_reader(crops)
        elif not crops:
            reason = "the vehicle is not in the decoded frames"
        meta["plate"] = plate
        meta["plate_reason"] = None if plate else reason
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
    files.append("metadata.json")
    digest = write_manifest(folder)
    return Package(folder, digest, [*files, "manifest.json"], meta)
