"""The worker's memory policy: decoded frames go back to the system when they are freed.

glibc's malloc serves a large allocation with its own mmap, returned to the kernel on
free, until a large block is freed: then it raises its "mmap threshold" to that size, and
later frames of that size come from the heap arenas instead. There they stay: each of up
to 8 arenas per core keeps the high-water mark of the frames decoded by the threads bound
to it. On a box with hundreds of snapshot cameras (a 1080p frame is 3 MB of YUV and 6 MB
as BGR) that was most of the worker's memory: 200 snapshot readers alone held 599 MB of
RSS; with the threshold pinned at glibc's own default of 128 KiB, 140 MB (issue 21).
Pinning it (``mallopt(M_MMAP_THRESHOLD, ...)``, which also stops the adjustment) costs an
mmap and its page faults per frame, a fraction of a millisecond.

Only glibc has this; elsewhere (musl, macOS) nothing is done and nothing fails.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
DEFAULT_THRESHOLD = 128 * 1024

_pinned: int | None = None


def pin_mmap_threshold(nbytes: int = DEFAULT_THRESHOLD) -> bool:
    """Serve allocations of ``nbytes`` and more by mmap, always; True when it took effect."""
    global _pinned
    if _pinned == nbytes:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, nbytes) != 1:
        return False
    _pinned = nbytes
    log.debug("malloc mmap threshold pinned", extra={"bytes": nbytes})
    return True
