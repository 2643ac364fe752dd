#!/usr/bin/env python3
"""Where a worker's CPU goes, per thread, with its cameras read in-process or in children.

    python scripts/bench_edge_threads.py --json docs/benchmarks/bench_edge_threads.json

Runs ``bench_edge.py``'s fire profile (1080p over RTSP, a sample every 2 s, YOLOX-Nano on
two parallel runs of one thread) at ``--cameras`` cameras, once with ``reader_processes: 0``
and once with ``--reader-processes``, and after a 20 s warm-up reads every thread's CPU
from /proc over 10 s. Threads of a kind (reader-*, analyse-*) are summed. The figure
that matters is the inference threads' CPU per image: what one inference costs with the
cameras' demuxing and decoding beside it, in the same process or in others.

Needs what ``bench_edge.py`` needs (``bash scripts/setup.sh``, the assets mirror, the
media it generated in ``.bench/``: run it once first).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def tick() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def threads_cpu() -> dict[int, tuple[str, float]]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            f = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue
        out[int(tid)] = (names.get(int(tid), comm), (int(f[11]) + int(f[12])) / tick())
    return out


def kind(name: str) -> str:
    for prefix in ("analyse-", "reader-cam", "recorder-"):
        if name.startswith(prefix):
            return prefix.rstrip("-") + "*"
    return name


def trial(spec: dict) -> dict:
    import bench_edge as b

    from edge.config import EdgeConfig
    from edge.worker import EdgeWorker
    from edgewatch.logs import setup_logging

    setup_logging("WARNING")
    p = b.PROFILES["fire"]
    cams = [
        {
            "id": f"cam{i:04d}",
            "url": spec["urls"][i % len(spec["urls"])],
            "reconnect": {"stall_timeout_s": 5.0, "open_timeout_s": 10.0},
            "analytics": [b.analytic_config(p)],
        }
        for i in range(spec["n"])
    ]
    cfg = EdgeConfig.model_validate(
        {
            "edge_id": b.EDGE_ID,
            "site": b.SITE,
            "mqtt": spec["mqtt"],
            "spool_dir": spec["spool"],
            "models": {"dir": spec["models"], "threads": 1, "max_batch": 8, "parallel": 2},
            "status_interval_s": 10,
            "reader_processes": spec["reader_processes"],
            "cameras": cams,
        }
    )
    worker = EdgeWorker(cfg)
    worker.start()
    time.sleep(20)
    window = 10.0
    a, ra = threads_cpu(), {pid: b.proc_cpu_s(pid) or 0.0 for pid in b.pool_pids(worker)}
    images0 = {m: e.images for m, e in worker.engines.items()}
    time.sleep(window)
    z, rz = threads_cpu(), {pid: b.proc_cpu_s(pid) or 0.0 for pid in b.pool_pids(worker)}
    images = sum(e.images - images0[m] for m, e in worker.engines.items())
    per: collections.Counter[str] = collections.Counter()
    for tid, (name, t) in z.items():
        if tid in a:
            per[kind(name)] += 100 * (t - a[tid][1]) / window
    engine = sum(v for k, v in per.items() if k.startswith("engine-"))
    return {
        "cameras": spec["n"],
        "online": sum(c.reader.stats().state == "online" for c in worker.cameras),
        "reader_processes": spec["reader_processes"],
        "worker_cpu_pct": round(sum(per.values()), 1),
        "reader_processes_cpu_pct": round(
            sum(100 * (rz.get(pid, 0.0) - ra[pid]) / window for pid in ra), 1
        ),
        "images_per_s": round(images / window, 1),
        "inference_cpu_ms_per_image": round(10 * engine * window / max(1, images), 1),
        "threads_cpu_pct": {k: round(v, 1) for k, v in per.most_common() if v >= 0.1},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=64)
    ap.add_argument("--reader-processes", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench_edge_threads.json"))
    ap.add_argument("--trial", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trial:
        print(json.dumps(trial(json.loads(args.trial))), flush=True)
        os._exit(0)
    import bench_edge as b

    from edgewatch import procs
    from edgewatch.broker import free_port

    work = ROOT / ".bench"
    media = work / "road_1080p.mp4"
    if not media.is_file():
        sys.exit(f"bench_edge_threads: no {media}: run scripts/bench_edge.py once first")
    broker, mqtt = b.start_broker(work)
    mounts = {f"1080p_{i}": media for i in range(b.MOUNTS_PER_SIZE)}
    rows = []
    try:
        for rp in (0, args.reader_processes):
            for _attempt in range(3):
                # a fresh RTSP server per attempt: the test server sometimes leaves a set of
                # mounts unanswered when dozens of clients join at once (bench_edge retries
                # the same way); an attempt counts only when every camera came online
                port = free_port()
                rtsp = procs.start_rtsp_server(
                    port, mounts, work / "rtsp_threads.log", shared=True, copies=1
                )
                try:
                    if not procs.wait_port(port, timeout=20):
                        sys.exit("bench_edge_threads: the RTSP server did not start")
                    urls = [
                        f"rtsp://127.0.0.1:{port}/1080p_{i}.0" for i in range(b.MOUNTS_PER_SIZE)
                    ]
                    spec = {"n": args.cameras, "urls": urls, "mqtt": mqtt,
                            "spool": tempfile.mkdtemp(dir=work), "models": str(work / "models"),
                            "reader_processes": rp}  # fmt: skip
                    out = subprocess.run(
                        [sys.executable, __file__, "--trial", json.dumps(spec)],
                        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
                    )  # fmt: skip
                finally:
                    procs.stop(rtsp)
                line = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if not line:
                    sys.exit(f"bench_edge_threads: trial failed: {out.stderr[-800:]}")
                row = json.loads(line[-1])
                print(json.dumps(row))
                if row["online"] == args.cameras:
                    rows.append(row)
                    break
                print(f"  {row['online']} of {args.cameras} cameras online (source); again")
    finally:
        procs.stop(broker)
    doc = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "command": "python scripts/bench_edge_threads.py " + " ".join(sys.argv[1:]),
        "profile": "fire (1080p, 1 sample / 2 s, YOLOX-Nano, threads 1, parallel 2)",
        "trials": rows,
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
