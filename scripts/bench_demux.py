#!/usr/bin/env python3
"""What a camera's demux costs per packet, and how much of it is the reader's Python.

    python scripts/bench_demux.py --json docs/benchmarks/bench_demux.json

Serves the bench's 1080p stream (``.bench/road_1080p.mp4``, made by ``bench_edge.py``)
over RTSP on loopback, then in one process reads ``--cameras`` streams for 10 s three ways,
measuring the process's CPU per packet:

- ``bare``: ``for packet in container.demux(stream): pass``, FFmpeg's RTSP/RTP demuxer
  and PyAV's packet objects, nothing else;
- ``reader``: the edge's ``CameraReader`` with the ``keyframes`` policy and a period so long
  that nothing is decoded after the first sample: the same demux plus the reader's Python
  per packet (timestamps, GOP and stall bookkeeping, the keyframe-due test);
- ``reader_sampling``: the same reader sampling a keyframe every 2 s (the fire profile),
  so keyframe decoding is included.

``reader - bare`` is what keyframe selection in C (in the decoder or the demuxer) could
save at most; ``bare`` is paid by any reader of an RTSP stream, in any language.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import CameraConfig  # noqa: E402
from edge.ingest.reader import CameraReader  # noqa: E402
from edgewatch import procs  # noqa: E402
from edgewatch.broker import free_port  # noqa: E402

WARMUP_S, WINDOW_S = 6.0, 10.0


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def bare(urls: list[str]) -> dict:
    count = [0] * len(urls)
    stop = threading.Event()

    def run(i: int) -> None:
        c = av.open(urls[i], options={"rtsp_transport": "tcp", "timeout": "5000000"})
        try:
            for _ in c.demux(c.streams.video[0]):
                count[i] += 1
                if stop.is_set():
                    return
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(urls))]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S)
    k0, c0, t0 = sum(count), cpu_s(), time.monotonic()
    time.sleep(WINDOW_S)
    k1, c1, t1 = sum(count), cpu_s(), time.monotonic()
    stop.set()
    return row("bare", len(urls), k1 - k0, c1 - c0, t1 - t0, 0)


def reader(urls: list[str], period_s: float, name: str) -> dict:
    readers = [
        CameraReader(
            CameraConfig.model_validate({"id": f"c{i}", "url": u, "decode": "keyframes"}),
            period_s=period_s,
        )
        for i, u in enumerate(urls)
    ]
    for r in readers:
        r.start()

    def take() -> None:  # the analytics' side: take each sample (the reader drops it then)
        last = [0] * len(readers)
        while not stopping.is_set():
            for i, r in enumerate(readers):
                f = r.next_frame(last[i], timeout=0)
                if f is not None:
                    last[i] = f.index
            time.sleep(0.05)

    stopping = threading.Event()
    threading.Thread(target=take, daemon=True).start()
    time.sleep(WARMUP_S)

    f0 = sum(r.stats().frames for r in readers)
    c0, t0 = cpu_s(), time.monotonic()
    time.sleep(WINDOW_S)
    c1, t1 = cpu_s(), time.monotonic()
    stats = [r.stats() for r in readers]
    pkts = sum(st.packets_fps for st in stats) * (t1 - t0)
    frames = sum(st.frames for st in stats) - f0
    stopping.set()
    for r in readers:
        r._stop.set()
    for r in readers:
        r.stop(timeout=2)
    return row(name, len(urls), int(pkts), c1 - c0, t1 - t0, frames)


def row(name: str, n: int, packets: float, cpu: float, wall: float, decoded: int) -> dict:
    return {
        "mode": name,
        "cameras": n,
        "packets_per_s": round(packets / wall, 1),
        "keyframes_decoded_per_s": round(decoded / wall, 1),
        "cpu_pct": round(100 * cpu / wall, 1),
        "cpu_ms_per_packet": round(1000 * cpu / max(1, packets), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=60)
    ap.add_argument("--json", type=Path, default=Path("bench_demux.json"))
    args = ap.parse_args()
    media = ROOT / ".bench" / "road_1080p.mp4"
    if not media.is_file():
        sys.exit(f"bench_demux: no {media}: run scripts/bench_edge.py once first")
    rows = []
    for mode in ("bare", "reader", "reader_sampling"):
        port = free_port()  # a fresh server per mode: no mode reads a stream another ended
        mounts = {f"m{i}": media for i in range(8)}
        srv = procs.start_rtsp_server(port, mounts, ROOT / ".bench" / "rtsp_demux.log",
                                      shared=True, copies=1)  # fmt: skip
        try:
            if not procs.wait_port(port, timeout=20):
                sys.exit("bench_demux: the RTSP server did not start")
            urls = [f"rtsp://127.0.0.1:{port}/m{i % 8}.0" for i in range(args.cameras)]
            if mode == "bare":
                r = bare(urls)
            else:
                r = reader(urls, 2.0 if mode == "reader_sampling" else 1e6, mode)
        finally:
            procs.stop(srv)
        rows.append(r)
        print(json.dumps(r), flush=True)
    base = rows[0]["cpu_ms_per_packet"]
    doc = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "command": "python scripts/bench_demux.py " + " ".join(sys.argv[1:]),
        "stream": "1080p H.264, 25 fps, GOP 50, RTSP/TCP on loopback (GStreamer)",
        "modes": rows,
        "reader_python_share": round(1 - base / rows[1]["cpu_ms_per_packet"], 3)
        if rows[1]["cpu_ms_per_packet"]
        else None,
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")
    os._exit(0)  # reader threads may sit in a socket read


if __name__ == "__main__":
    raise SystemExit(main())
