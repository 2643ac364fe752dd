"""Streams with faults, for the ingest tests: real H.264 in MPEG-TS, made with PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass
class Segment:
    width: int
    height: int
    frames: int
    pts_offset_s: float = 0.0  # added to this segment's timestamps (a timestamp jump)
    gop: int = 50


def _frames(src: Path, width: int, height: int):  # type: ignore[no-untyped-def]
    while True:
        with av.open(str(src)) as inp:
            for frame in inp.decode(video=0):
                yield frame.reformat(width=width, height=height, format="yuv420p")


def make_ts(
    src: Path, dst: Path, segments: list[Segment], fps: int = 25, corrupt_every: int = 0
) -> Path:
    """One H.264 elementary stream in MPEG-TS, each segment from its own encoder.

    Segments may differ in size (a mid-stream resolution change, with new SPS/PPS in band)
    and in timestamps (a jump). ``corrupt_every`` > 0 overwrites the middle of every n-th
    non-key packet with garbage, as a lossy link would.
    """
    tb = Fraction(1, 90000)
    with av.open(str(dst), "w", format="mpegts") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height = segments[0].width, segments[0].height
        stream.time_base = tb
        rng = np.random.default_rng(7)
        n_total = 0
        t = 0.0
        for seg in segments:
            t += seg.pts_offset_s
            enc = av.CodecContext.create("libx264", "w")
            enc.width, enc.height, enc.pix_fmt = seg.width, seg.height, "yuv420p"
            enc.time_base = Fraction(1, fps)
            enc.framerate = Fraction(fps)
            enc.options = {
                "preset": "ultrafast",
                "g": str(seg.gop),
                "bf": "0",
                "x264-params": "repeat-headers=1:scenecut=0",
            }
            frames = _frames(src, seg.width, seg.height)
            seg_t0 = t

            def emit(packets, seg_t0=seg_t0, enc=enc):  # type: ignore[no-untyped-def]
                nonlocal n_total
                for p in packets:
                    data = bytes(p)
                    n_total += 1
                    if corrupt_every and not p.is_keyframe and n_total % corrupt_every == 0:
                        buf = bytearray(data)
                        mid = len(buf) // 2
                        buf[mid : mid + 64] = (
                            rng.integers(0, 256, min(64, len(buf) - mid)).astype(np.uint8).tobytes()
                        )
                        data = bytes(buf)
                    q = av.Packet(data)
                    ts = int(round((seg_t0 + float(p.pts * enc.time_base)) * 90000))
                    q.pts = q.dts = ts
                    q.time_base = tb
                    q.is_keyframe = p.is_keyframe
                    q.stream = stream
                    out.mux(q)

            for i in range(seg.frames):
                f = next(frames)
                f.pts, f.time_base = i, enc.time_base
                emit(enc.encode(f))
            emit(enc.encode(None))
            t = seg_t0 + seg.frames / fps
    return dst
