"""Decode policies and stream faults, on a real RTSP server (GStreamer) and real H.264."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from edge.config import CameraConfig
from edge.ingest.media import make_test_video
from edge.ingest.reader import CameraReader, Frame, ReaderStats, choose_policy
from tests.conftest import HIGHWAY, _asset
from tests.helpers import RtspServer, wait_for
from tests.media import Segment, make_ts


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, h264_video: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("faults")
    src = _asset(HIGHWAY)
    return {
        "gop2s": h264_video,  # 25 fps, GOP 50
        "gop5s": make_test_video(src, d / "gop5s.mp4", loops=1, gop=125),
        "resize": make_ts(src, d / "resize.ts", [Segment(320, 240, 75), Segment(480, 272, 500)]),
        "corrupt": make_ts(src, d / "corrupt.ts", [Segment(320, 240, 500)], corrupt_every=9),
        "jump": make_ts(
            src, d / "jump.ts", [Segment(320, 240, 50), Segment(320, 240, 50, pts_offset_s=30)]
        ),
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]
) -> Iterator[RtspServer]:
    srv = RtspServer(tmp_path_factory.mktemp("rtsp"), media)
    srv.start()
    yield srv
    srv.stop()


def camera(url: str, **kw: object) -> CameraConfig:
    reconnect = {"initial_s": 0.2, "max_s": 1.0, "stall_timeout_s": 2.0, "open_timeout_s": 3.0}
    return CameraConfig.model_validate({"id": "cam", "url": url, "reconnect": reconnect, **kw})


def collect(reader: CameraReader, seconds: float) -> tuple[list[Frame], ReaderStats]:
    frames: list[Frame] = []
    last = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        f = reader.next_frame(last, timeout=0.2)
        if f is not None:
            frames.append(f)
            last = f.index
    return frames, reader.stats()


def test_auto_policy_follows_the_sampling_period() -> None:
    assert choose_policy("auto", 60.0) == "snapshot"
    assert choose_policy("auto", 2.0) == "keyframes"
    assert choose_policy("auto", 0.1) == "all"
    assert choose_policy("all", 60.0) == "all"


def test_keyframes_policy_decodes_only_the_keyframes_it_needs(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("gop2s"), decode="keyframes"), period_s=2.0)
    reader.start()
    try:
        frames, st = collect(reader, 9.0)
    finally:
        reader.stop()
    assert st.policy == "keyframes" and st.gop_s == pytest.approx(2.0, abs=0.1)
    assert 4 <= len(frames) <= 6, len(frames)  # one per 2 s
    assert st.frames == len(frames)  # nothing decoded but what was handed out
    assert st.packets_fps > 15  # every packet is still demuxed
    assert st.reconnects == 0 and not any(st.faults.values()), st


def test_a_shorter_period_brings_the_next_sample_forward(server: RtspServer) -> None:
    """The worker paces a camera at the engine's fair share. A share that was small for a
    moment gave a long period (here 30 s); when it grows back the next sample must come one
    new period after the last, not at the end of the old one (issue 21: after a start-up
    burst every fire camera went quiet for seconds)."""
    reader = CameraReader(camera(server.url("gop2s"), decode="keyframes"), period_s=30.0)
    reader.start()
    try:
        first, _ = collect(reader, 4.0)
        assert len(first) == 1, len(first)  # due at once, then not for 15 s
        reader.period_s = 2.0
        frames, st = collect(reader, 7.0)
    finally:
        reader.stop()
    assert 2 <= len(frames) <= 5, len(frames)  # every ~2 s again, not ~15 s from the first
    assert st.reconnects == 0


def test_all_policy_decodes_every_frame_and_keeps_the_latest(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("gop2s"), decode="all"), period_s=0.1)
    reader.start()
    try:
        time.sleep(2.0)
        first = reader.next_frame(0, timeout=1)
        time.sleep(2.0)  # a consumer that is slow: frames are replaced, not queued
        latest = reader.next_frame(first.index if first else 0, timeout=1)
        st = reader.stats()
    finally:
        reader.stop()
    assert first is not None and latest is not None
    assert latest.index - first.index >= 30  # ~50 frames decoded meanwhile
    assert time.monotonic() - latest.mono < 0.5  # and the one handed out is fresh
    assert st.fps > 15 and st.skipped >= 30 and st.policy == "all"


def test_snapshot_policy_connects_per_sample(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("gop2s"), decode="snapshot"), period_s=2.0)
    reader.start()
    try:
        frames, st = collect(reader, 7.0)
    finally:
        reader.stop()
    assert 3 <= len(frames) <= 5, len(frames)
    assert st.connects == len(frames)  # one connection per snapshot, closed after it
    assert st.reconnects == 0 and st.state == "online" and st.error is None


def test_resolution_change_mid_stream_is_survived_and_counted(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("resize"), decode="all"), period_s=0.1)
    reader.start()
    try:
        frames, st = collect(reader, 6.0)
    finally:
        reader.stop()
    sizes = [(f.width, f.height) for f in frames]
    assert (320, 240) in sizes and sizes[-1] == (480, 272)
    assert st.faults["size_changes"] == 1 and st.reconnects == 0
    assert st.state == "online" and (st.width, st.height) == (480, 272)


def test_corrupt_packets_are_survived_and_counted(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("corrupt"), decode="all"), period_s=0.1)
    reader.start()
    try:
        frames, st = collect(reader, 5.0)
    finally:
        reader.stop()
    assert st.faults["corrupt_frames"] + st.faults["decode_errors"] >= 5, st.faults
    assert len(frames) > 30 and st.fps > 15 and st.reconnects == 0


def test_long_gop_falls_back_to_decoding_all_and_keeps_the_rate(server: RtspServer) -> None:
    reader = CameraReader(camera(server.url("gop5s"), decode="keyframes"), period_s=1.0)
    reader.start()
    try:
        frames, st = collect(reader, 11.0)
    finally:
        reader.stop()
    assert st.faults["long_gop"] == 1 and st.policy == "keyframes+all"
    assert st.gop_s == pytest.approx(5.0, abs=0.2)
    # After the second keyframe (at 5 s) it samples every second from decoded frames.
    late = [f for f in frames if f.mono - frames[0].mono > 5.5]
    assert len(late) >= 4, [round(f.mono - frames[0].mono, 2) for f in frames]


def test_timestamp_jump_is_counted_and_never_waited_out(media: dict[str, Path]) -> None:
    """A file paced in real time with a 30 s forward jump: counted, not slept through."""
    reader = CameraReader(camera(str(media["jump"]), decode="all"), period_s=0.1)
    t0 = time.monotonic()
    reader.start()
    try:
        wait_for(lambda: reader.stats().error == "stream ended", 15, what="end of file")
        st = reader.stats()
    finally:
        reader.stop()
    assert st.faults["timestamp_jumps"] == 1
    assert time.monotonic() - t0 < 8  # 4 s of media; the jump was not slept
    assert st.frames >= 90


class SilentRtsp:
    """An RTSP server that answers the handshake and then never sends a packet."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        sdp = (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=silent\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1\r\na=control:track1\r\n"
        )
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode(errors="replace").split("\r\n")
                    method = lines[0].split(" ")[0]
                    hdr = {
                        k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
                    }
                    extra = ""
                    body = ""
                    if method == "OPTIONS":
                        extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
                    elif method == "DESCRIBE":
                        body = sdp
                        extra = "Content-Type: application/sdp\r\n"
                    elif method == "SETUP":
                        extra = f"Transport: {hdr.get('transport', '')}\r\nSession: 4242\r\n"
                    elif method == "PLAY":
                        extra = "Session: 4242\r\nRange: npt=0.000-\r\n"
                    reply = (
                        f"RTSP/1.0 200 OK\r\nCSeq: {hdr.get('cseq', '0')}\r\n{extra}"
                        f"Content-Length: {len(body)}\r\n\r\n{body}"
                    )
                    conn.sendall(reply.encode())

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def test_stream_that_connects_but_never_sends_is_reported_and_retried() -> None:
    silent = SilentRtsp()
    reader = CameraReader(camera(f"rtsp://127.0.0.1:{silent.port}/cam", decode="all"), 0.1)
    reader.start()
    try:
        wait_for(lambda: reader.stats().reconnects >= 2, 30, what="two retries")
        st = reader.stats()
    finally:
        reader.stop()
        silent.close()
    assert st.state == "offline" and st.frames == 0
    assert st.faults["stalls"] + st.faults["no_frame"] >= 2, st.faults
    assert "timed out" in (st.error or "") or "no frame" in (st.error or ""), st.error
    assert silent.connections >= 2  # it really connected each time


def test_decoder_choice_is_logged(server: RtspServer, caplog: pytest.LogCaptureFixture) -> None:
    """hwaccel auto: a hardware decoder where one works, else software, and a log line says so."""
    caplog.set_level(logging.INFO, logger="edge.ingest.reader")
    reader = CameraReader(camera(server.url("gop2s"), decode="all", hwaccel="auto"), 0.1)
    reader.start()
    try:
        wait_for(lambda: reader.stats().frames > 0, 15, what="a frame")
        st = reader.stats()
    finally:
        reader.stop()
    logged = [r for r in caplog.records if r.getMessage() == "decoder"]
    assert logged and logged[0].decoder == st.decoder  # type: ignore[attr-defined]
    if st.decoder.endswith("(software)"):
        devices = set(av.codec.hwaccel.hwdevices_available()) & {"cuda", "vaapi", "qsv", "drm"}
        tried = [r for r in caplog.records if r.getMessage().startswith("hardware decoder")]
        # Every device FFmpeg was built with and that failed is named once in the log
        # (once per process: a device that failed in an earlier test is not retried).
        assert len(tried) <= len(devices)
