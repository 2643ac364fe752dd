"""Media helpers: making an H.264 MP4 from any video PyAV reads (for tests, demo, benches)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av


def make_test_video(
    src: Path,
    dst: Path,
    loops: int = 1,
    fps: int = 25,
    gop: int = 50,
    size: tuple[int, int] | None = None,
    preset: str = "veryfast",
) -> Path:
    """Transcode ``src`` to H.264 (libx264, no B-frames) in MP4, repeated ``loops`` times,
    optionally scaled to ``size`` (width, height).

    Written to a temporary name and renamed, so a half-written file is never used.
    Returns ``dst`` (kept as a cache when it already exists).
    """
    dst = Path(dst)
    if dst.is_file() and dst.stat().st_size > 0:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.mp4")
    n = 0
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.options = {"preset": preset, "g": str(gop), "bf": "0", "crf": "26"}
        for _ in range(loops):
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    w, h = size or (frame.width, frame.height)
                    if n == 0:
                        stream.width, stream.height = w, h
                        stream.pix_fmt = "yuv420p"
                    f = frame.reformat(width=w, height=h, format="yuv420p")
                    f.pts, f.time_base = n, Fraction(1, fps)
                    out.mux(stream.encode(f))
                    n += 1
        out.mux(stream.encode(None))
    os.replace(tmp, dst)
    return dst
