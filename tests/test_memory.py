"""The worker's memory policy (edge/memory.py): with the mmap threshold pinned, frame-sized
buffers freed by many threads go back to the system. Run in a fresh interpreter, as the
worker's process is, so that nothing else in the test process has moved the threshold."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, threading
import numpy as np
from edge.memory import pin_mmap_threshold

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

pinned = pin_mmap_threshold()
base = rss_mb()
def decode_like():  # as a reader thread: frames of 1080p (3 MB YUV, 6 MB BGR), freed
    for _ in range(20):
        frames = [np.ones(3 * 1024 * 1024 // 2, np.uint8), np.ones(6 * 1024 * 1024, np.uint8)]
        del frames
threads = [threading.Thread(target=decode_like) for _ in range(32)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"pinned": pinned, "grew_mb": rss_mb() - base}))
"""


def test_frames_freed_by_many_threads_go_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["pinned"] is True
    # 32 threads x (1.5 + 6) MB live at once would be 240 MB; all of it was given back
    assert got["grew_mb"] < 20, got
