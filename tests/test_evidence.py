"""Evidence packages: the packet ring, clips cut without re-encoding (they play with PyAV),
frames with overlays, metadata, and manifests whose hashes verify (and catch tampering).
One test reads a real RTSP stream from GStreamer's server into the ring."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.config import CameraConfig
from edge.events.evidence import PacketRing, TrackHistory, assemble, verify_manifest
from edge.ingest.media import make_test_video
from edge.ingest.reader import CameraReader
from tests.conftest import HIGHWAY, _asset
from tests.helpers import RtspServer, wait_for

T0 = 1_795_000_000.0  # epoch seconds the file's first packet is placed at


def fill(
    ring: PacketRing, video: Path, limit_s: float | None = None
) -> list[tuple[float, bytes, bool]]:
    """Demux a file into the ring as if it arrived live; returns (wall, bytes, key)."""
    seen = []
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        ring.new_segment(st)
        tb = float(st.time_base)
        for p in c.demux(st):
            if p.size == 0 or p.pts is None:
                continue
            wall = T0 + p.pts * tb
            if limit_s is not None and wall - T0 > limit_s:
                break
            ring.add(p, wall)
            seen.append((wall, bytes(p), p.is_keyframe))
    return seen


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def test_clip_is_the_cameras_packets_from_a_keyframe(tmp_path: Path, h264_video: Path) -> None:
    ring = PacketRing(seconds=30)
    src = fill(ring, h264_video, limit_s=20)
    info = ring.clip(T0 + 9.0, T0 + 13.0, tmp_path / "clip.mp4")
    assert info is not None
    assert info.start <= T0 + 9.0 and info.start > T0 + 9.0 - 2.05  # GOP is 2 s
    assert info.end == pytest.approx(T0 + 13.0, abs=0.05)
    frames = decode(info.path)  # plays
    assert len(frames) == info.packets and frames[0].shape == (240, 320, 3)
    # not re-encoded: the clip's packets are the source's, byte for byte
    with av.open(str(info.path)) as c:
        got = [bytes(p) for p in c.demux(video=0) if p.size]
    want = [b for w, b, _ in src if info.start <= w <= info.end]
    assert hashlib.sha256(b"".join(got)).digest() == hashlib.sha256(b"".join(want)).digest()


def test_ring_keeps_only_its_window_and_starts_at_a_keyframe(
    tmp_path: Path, h264_video: Path
) -> None:
    ring = PacketRing(seconds=5)
    fill(ring, h264_video, limit_s=30)
    start, end = ring.span  # type: ignore[misc]
    assert end - start <= 5.0 + 2.0 and end - start >= 3.0
    assert ring.clip(T0 + 1.0, T0 + 3.0, tmp_path / "old.mp4") is None  # gone
    info = ring.clip(end - 3.0, end, tmp_path / "new.mp4")
    assert info is not None and decode(info.path)
    # a byte budget wins over the time window
    small = PacketRing(seconds=60, max_bytes=100_000)
    fill(small, h264_video, limit_s=30)
    assert small._bytes <= 100_000 + 60_000  # at most one GOP over while it fills


def test_evidence_package_frames_overlays_manifest(tmp_path: Path, h264_video: Path) -> None:
    ring = PacketRing(seconds=30)
    fill(ring, h264_video, limit_s=20)
    history = TrackHistory()
    for k in range(200):  # a vehicle box sliding right, 10 Hz
        t = T0 + k * 0.1
        history.add(t, np.array([7]), np.array([[40 + k, 120, 100 + k, 170]], np.float32))
    reads = []

    def plate_reader(crops: list[np.ndarray]) -> tuple[str | None, str]:
        reads.append(len(crops))
        return None, "unreadable (test reader)"

    pkg = assemble(
        tmp_path / "ev1",
        ring,
        history,
        track_id=7,
        t=T0 + 10.0,
        frame_wh=(320, 240),
        metadata={"rule": "red_light", "camera_id": "cam-1", "signal": "red"},
        lines=[((0.1, 0.7), (0.9, 0.7))],
        pre_s=3.0,
        post_s=3.0,
        plate_reader=plate_reader,
    )
    names = {p.name for p in pkg.folder.iterdir()}
    assert {"clip.mp4", "before.jpg", "at.jpg", "after.jpg", "vehicle.jpg"} <= names
    assert {"metadata.json", "manifest.json"} <= names
    meta = json.loads((pkg.folder / "metadata.json").read_text())
    assert meta["time"].endswith(".000+00:00") and meta["rule"] == "red_light"
    assert meta["plate"] is None and meta["plate_reason"] == "unreadable (test reader)"
    assert meta["clip"]["reencoded"] is False and reads == [3]
    at = cv2.imread(str(pkg.folder / "at.jpg"))
    assert at.shape == (240, 320, 3)
    # the red overlay box sits where the track was at that moment (x 140..200)
    red = (at[:, :, 2] > 200) & (at[:, :, 1] < 60) & (at[:, :, 0] < 60)
    xs = np.nonzero(red.any(axis=0))[0]
    assert abs(xs.min() - 140) <= 3 and abs(xs.max() - 200) <= 3
    assert verify_manifest(pkg.folder, pkg.manifest_sha256) == []
    # tampering is found out
    (pkg.folder / "at.jpg").write_bytes(b"edited")
    assert verify_manifest(pkg.folder, pkg.manifest_sha256) == ["at.jpg: SHA-256 differs"]
    (pkg.folder / "manifest.json").write_text("{}")
    assert "differs from the one published" in verify_manifest(pkg.folder, pkg.manifest_sha256)[0]


def test_no_video_for_the_time_says_so(tmp_path: Path) -> None:
    pkg = assemble(
        tmp_path / "ev", PacketRing(), TrackHistory(), track_id=1, t=T0, frame_wh=(320, 240),
        metadata={"rule": "speeding"},
    )  # fmt: skip
    meta = json.loads((pkg.folder / "metadata.json").read_text())
    assert meta["clip"] is None and "no video" in meta["clip_reason"]
    assert verify_manifest(pkg.folder) == []


@pytest.fixture(scope="module")
def rtsp(tmp_path_factory: pytest.TempPathFactory, h264_video: Path) -> Iterator[RtspServer]:
    # "road" is the camera's sub-stream (320x240); "road_main" its main stream, the same
    # scene at 640x480 (a camera's two roles: detect and record)
    main = make_test_video(
        _asset(HIGHWAY), tmp_path_factory.mktemp("main") / "main.mp4", loops=2, size=(640, 480)
    )
    srv = RtspServer(tmp_path_factory.mktemp("rtsp-ev"), {"road": h264_video, "road_main": main})
    srv.start()
    yield srv
    srv.stop()


def test_ring_fed_by_a_live_rtsp_camera_cuts_playable_clips(
    tmp_path: Path, rtsp: RtspServer
) -> None:
    ring = PacketRing(seconds=10)
    cam = CameraConfig.model_validate({"id": "cam", "url": rtsp.url("road")})
    reader = CameraReader(cam, period_s=0.1, policy="all", ring=ring)
    reader.start()
    try:
        wait_for(lambda: ring.span and ring.span[1] - ring.span[0] > 5.0, 30, what="5 s in ring")
        now = time.time()
        frame = reader.next_frame(0, timeout=5)
        assert frame is not None
        # a decoded frame's capture time lines up with its packet's arrival
        assert abs(frame.time.timestamp() - now) < 1.0
        info = ring.clip(now - 4.0, now - 1.0, tmp_path / "live.mp4")
    finally:
        reader.stop()
    assert info is not None
    frames = decode(info.path)
    assert len(frames) >= 70 and frames[0].shape == (240, 320, 3)  # 25 fps, from a keyframe


def test_a_record_stream_feeds_the_ring_and_evidence_is_cut_at_its_resolution(
    tmp_path: Path, rtsp: RtspServer
) -> None:
    """Camera roles: the analytics decode the detect stream (320x240); the evidence ring is
    fed from the record stream (640x480), demuxed and never decoded. The package's frames
    are the record stream's, and a box tracked in detect pixels lands on the same spot."""
    ring = PacketRing(seconds=10)
    detect = CameraConfig.model_validate(
        {"id": "cam", "url": rtsp.url("road"), "record_url": rtsp.url("road_main")}
    )
    assert detect.record_url is not None
    record = detect.model_copy(update={"url": detect.record_url, "record_url": None})
    reader = CameraReader(detect, period_s=0.1, policy="all")
    # a flood-rate camera (one sample a minute) still holds its record stream open
    recorder = CameraReader(record, period_s=60.0, ring=ring, record_only=True)
    assert recorder.policy == "all"
    recorder.start()
    reader.start()
    try:
        wait_for(lambda: ring.span and ring.span[1] - ring.span[0] > 6.0, 30, what="6 s in ring")
        frame = reader.next_frame(0, timeout=5)
        assert frame is not None and (frame.width, frame.height) == (320, 240)
        t = time.time() - 3.0
        history = TrackHistory()
        for k in range(-30, 31):  # a box held still in detect pixels around t
            history.add(t + k * 0.1, np.array([3]), np.array([[100, 80, 180, 160]], np.float32))
        pkg = assemble(
            tmp_path / "ev", ring, history, track_id=3, t=t, frame_wh=(320, 240),
            metadata={"rule": "test"}, pre_s=2.0, post_s=2.0,
        )  # fmt: skip
        rec_stats = recorder.stats()
    finally:
        reader.stop()
        recorder.stop()
    assert rec_stats.frames == 0 and rec_stats.packets_fps > 15  # read, never decoded
    assert rec_stats.state == "online" and rec_stats.reconnects == 0
    at = cv2.imread(str(pkg.folder / "at.jpg"))
    assert at.shape == (480, 640, 3)  # the record stream's pixels
    red = (at[:, :, 2] > 200) & (at[:, :, 1] < 60) & (at[:, :, 0] < 60)
    xs, ys = np.nonzero(red.any(axis=0))[0], np.nonzero(red.any(axis=1))[0]
    assert abs(xs.min() - 200) <= 4 and abs(xs.max() - 360) <= 4  # 100..180 at 2x
    assert abs(ys.min() - 160) <= 4 and abs(ys.max() - 320) <= 4
    crop = cv2.imread(str(pkg.folder / "vehicle.jpg"))
    assert crop.shape[:2] == (160, 160)  # cut from the main stream, not the sub-stream
    assert verify_manifest(pkg.folder, pkg.manifest_sha256) == []
