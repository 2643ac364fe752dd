"""Camera readers in worker processes: demux and decode off the analysing process's GIL.

With a hundred cameras in one process, the limit was not the cores but one interpreter:
every reader thread takes the GIL for each packet it demuxes (25 per second per camera),
and the analysis and inference threads queue behind them. At 120 fire cameras the worker
stopped keeping up at 148% CPU of 200% (issue 21). A reader pool runs the same
``CameraReader`` in ``reader_processes`` child processes (spawned, never forked from a
process with threads), so each has its own GIL; only the frames the analytics will
actually use cross to the worker.

How a frame crosses: each child has a few frame slots in a memory-backed file (/dev/shm)
that the worker maps too (``_Arena``). The child copies the decoded planes (YUV 4:2:0 as
they came from the decoder: 3 MB for 1080p, half of BGR) into a free slot and sends a small
header on a pipe; the worker copies them in one ``memcpy`` into an ``av.VideoFrame`` (one
it handed out before and nobody holds any more, or a new one) and hands the slot back.
A first version sent the planes through the pipe itself: 48 reads of 64 KB per 1080p
frame, each giving up the GIL and waiting to take it back behind a hundred analysis
threads, and the worker fell further behind than with no pool at all.
The frame is handed out as the same ``Frame`` an in-process reader gives, so the
analytics, ``bgr_fit`` and the snapshots do not know the difference. A sampled camera
(keyframes) sends each sample; a camera decoding every frame sends one frame per sampling
period (the newest): the analytics never wanted the others.

What stays as it was: decode policies, faults, reconnects, the stall watchdog and the
credential redaction are the reader's own, running in the child. Statistics come back once
a second. A child that dies is reported (its cameras offline, with the reason), and started
again with backoff, forever, with its cameras re-added. A child whose parent dies sees its
control pipe close and exits.

What runs in-process instead (``ReaderPool.takes``): snapshot cameras (a connection per
sample: their cost is in FFmpeg's open, not in Python per packet) and cameras whose
evidence ring is fed by their own reader (the ring lives with the worker's analytics).

Measured on a 2-core box (README, "Readers in child processes"): the split takes the GIL
away as the limit and the CPU then reaches the cores, but the work moves rather than
shrinks (64 fire cameras: 123.6% of CPU in one process, 117.2% split), so
``reader_processes`` is 0 by default.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import multiprocessing
import multiprocessing.connection
import os
import random
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from edge.config import CameraConfig
from edge.ingest.reader import (
    FAULTS,
    CameraReader,
    Frame,
    Policy,
    ReaderStats,
    backoff_delay,
    newest_frame,
)

log = logging.getLogger(__name__)

STATS_EVERY_S = 1.0
STATS_STALE_S = 5.0  # no statistics from a child for this long: its cameras are offline


# -- the child process ---------------------------------------------------------------------


class _Outbox:
    """The child's readers that have a frame to send, oldest first (one entry each)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ready: OrderedDict[str, _ChildReader] = OrderedDict()
        self.closed = False

    def put(self, reader: _ChildReader) -> None:
        with self.cond:
            self.ready[reader.cfg.id] = reader
            self.cond.notify()

    def take(self) -> _ChildReader | None:
        with self.cond:
            self.cond.wait_for(lambda: self.ready or self.closed)
            if self.closed:
                return None
            return self.ready.popitem(last=False)[1]


class _ChildReader(CameraReader):
    def __init__(self, cfg: CameraConfig, period_s: float, policy: Policy, outbox: _Outbox):
        super().__init__(cfg, period_s=period_s, policy=policy)
        self._outbox = outbox
        self.sent_index = 0
        self.next_due = 0.0  # when decoding all: the next frame to send, monotonic

    def _publish(self, frame: av.VideoFrame, captured: float) -> None:
        super()._publish(frame, captured)
        self._outbox.put(self)


SLOTS = 4  # frames in flight per reader process
FRAMES_KEPT = 16  # decoded frames kept for reuse per size, per reader process


def _shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


class _Arena:
    """``SLOTS`` frame slots in a memory-backed file that the worker maps too.

    A frame is written into a free slot, the worker is told which (a small header on the
    pipe), copies it out in one ``memcpy`` and hands the slot back on the control pipe.
    The file is created here and unlinked by the worker as soon as it has mapped it, so
    nothing is left in /dev/shm whichever process dies first. A frame larger than the
    slots (a camera of a higher resolution) waits for every slot to come back, then the
    arena is made again, larger, under a new generation number.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.generation = 0
        self.slot_size = 0
        self.free: list[int] = []
        self.mm: mmap.mmap | None = None
        self.path: str | None = None

    def release(self, generation: int, slot: int) -> None:
        with self.cond:
            if generation == self.generation and slot not in self.free:
                self.free.append(slot)
                self.cond.notify_all()

    def take(self, nbytes: int, stop: threading.Event) -> tuple[int, int, str | None] | None:
        """(generation, slot, path of a new arena or None); None when stopping."""
        with self.cond:
            new = None
            if nbytes > self.slot_size:
                while self.mm is not None and len(self.free) < SLOTS:
                    if stop.is_set():
                        return None
                    self.cond.wait(0.5)
                self._grow(nbytes)
                new = self.path
            while not self.free:
                if stop.is_set():
                    return None
                self.cond.wait(0.5)
            return self.generation, self.free.pop(0), new

    def _grow(self, nbytes: int) -> None:
        self.close()
        size = -(-nbytes // (1 << 20)) << 20  # whole MiB
        self.generation += 1
        fd, path = tempfile.mkstemp(
            prefix=f"edgewatch-frames-{os.getpid()}-{self.generation}-", dir=_shm_dir()
        )
        try:
            os.ftruncate(fd, size * SLOTS)
            self.mm = mmap.mmap(fd, size * SLOTS)
        finally:
            os.close(fd)
        self.path, self.slot_size, self.free = path, size, list(range(SLOTS))

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.path is not None:
            try:
                os.unlink(self.path)  # normally the worker has done it already
            except FileNotFoundError:
                pass
            self.path = None


def _send_frame(
    conn: multiprocessing.connection.Connection,
    arena: _Arena,
    cam_id: str,
    f: Frame,
    stop: threading.Event,
    lock: threading.Lock | None = None,
) -> bool:
    """Copy ``f`` into a free slot (waiting for the worker to hand one back: ``lock``, the
    pipe's, is not held meanwhile, so statistics still go out) and send its header."""
    vf = f._frame
    planes = list(vf.planes)
    sizes = [p.buffer_size for p in planes]
    got = arena.take(sum(sizes), stop)
    if got is None:
        return False
    generation, slot, new_path = got
    assert arena.mm is not None
    pos = slot * arena.slot_size
    for p, size in zip(planes, sizes, strict=True):
        arena.mm[pos : pos + size] = memoryview(p).cast("B")
        pos += size
    with lock or contextlib.nullcontext():
        _send_header(
            conn, cam_id, f, vf, (generation, slot, new_path, arena.slot_size), planes, sizes
        )
    return True


def _send_header(
    conn: multiprocessing.connection.Connection,
    cam_id: str,
    f: Frame,
    vf: av.VideoFrame,
    where: tuple[int, int, str | None, int],
    planes: list,
    sizes: list[int],
) -> None:
    conn.send(
        (
            "frame",
            cam_id,
            f.index,
            f.time,
            f.mono,
            vf.width,
            vf.height,
            vf.format.name,
            getattr(vf, "colorspace", None),
            getattr(vf, "color_range", None),
            where,
            [(p.line_size, size) for p, size in zip(planes, sizes, strict=True)],
        )
    )


def _child_main(
    ctrl: multiprocessing.connection.Connection,
    out: multiprocessing.connection.Connection,
    log_level: str,
    index: int,
) -> None:
    from edge.memory import pin_mmap_threshold
    from edgewatch.logs import setup_logging

    setup_logging(log_level)
    pin_mmap_threshold()
    readers: dict[str, _ChildReader] = {}
    outbox = _Outbox()
    arena = _Arena()
    send_lock = threading.Lock()
    stop = threading.Event()

    def send(*msg: Any) -> None:
        with send_lock:
            out.send(msg)

    def sender() -> None:
        while (r := outbox.take()) is not None:
            f = r.next_frame(r.sent_index, timeout=0)
            if f is None:
                continue
            if r.policy == "all":
                # the worker wants one per period (on average, exactly): the others stay here
                if f.mono < r.next_due:
                    continue
                r.next_due = max(r.next_due + r.period_s, f.mono + r.period_s / 2)
            r.sent_index = f.index
            try:
                if not _send_frame(out, arena, r.cfg.id, f, stop, send_lock):
                    return
            except (OSError, EOFError, ValueError):
                stop.set()  # the worker is gone
                return
            except Exception:
                if stop.is_set():
                    return
                # A sender that died quietly would leave the child looking healthy (its
                # statistics still flow) while no frame crosses: end the child instead,
                # and the worker starts it again.
                log.exception(
                    "reader process: sending frames failed", extra={"reader_process": index}
                )
                os._exit(1)

    def stats_loop() -> None:
        while not stop.wait(STATS_EVERY_S):
            snap = {cid: r.stats() for cid, r in list(readers.items())}
            try:
                send("stats", snap)
            except (OSError, EOFError, ValueError):
                stop.set()
                return

    sending = threading.Thread(target=sender, name="pool-sender", daemon=True)
    sending.start()
    threading.Thread(target=stats_loop, name="pool-stats", daemon=True).start()
    log.info("reader process started", extra={"reader_process": index, "pid": os.getpid()})
    try:
        while not stop.is_set():
            try:
                msg = ctrl.recv()
            except (EOFError, OSError):
                break  # the worker is gone
            kind = msg[0]
            if kind == "free":
                arena.release(msg[1], msg[2])
            elif kind == "add":
                _, cfg, period_s, policy = msg
                old = readers.pop(cfg.id, None)
                if old is not None:
                    _stop_soon(old)
                r = _ChildReader(cfg, period_s, policy, outbox)
                readers[cfg.id] = r
                r.start()
            elif kind == "period":
                r = readers.get(msg[1])
                if r is not None:
                    r.period_s = msg[2]
            elif kind == "remove":
                r = readers.pop(msg[1], None)
                if r is not None:
                    _stop_soon(r)
            elif kind == "stop":
                break
    finally:
        stop.set()
        for r in readers.values():
            r._stop.set()
        deadline = time.monotonic() + 3.0  # all together, not 2 s each
        for r in readers.values():
            r._thread.join(max(0.0, deadline - time.monotonic()))
        with outbox.cond:
            outbox.closed = True
            outbox.cond.notify_all()
        with arena.cond:
            arena.cond.notify_all()
        sending.join(2.0)  # it is not writing into the arena any more
        arena.close()


def _stop_soon(r: CameraReader) -> None:
    """Stop a reader without waiting for it here: one stuck in a connect (up to its open
    timeout) must not hold up the control loop, and with it the slots handed back."""
    r._stop.set()
    threading.Thread(target=r.stop, kwargs={"timeout": 30}, daemon=True).start()


# -- the worker's side ---------------------------------------------------------------------


class RemoteReader:
    """A camera read in a pool process, with the interface of ``CameraReader`` the worker
    uses: ``start``, ``stop``, ``next_frame``, ``stats``, ``period_s``, ``policy``."""

    def __init__(self, pool: ReaderPool, cfg: CameraConfig, period_s: float, policy: Policy):
        self.cfg = cfg
        self.policy: Policy = policy
        self._pool = pool
        self._period_s = period_s
        self._proc: _Proc | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._stats: ReaderStats | None = None
        self._stats_mono = 0.0
        self._received = 0  # frames delivered: the index this side gives them

    @property
    def period_s(self) -> float:
        return self._period_s

    @period_s.setter
    def period_s(self, value: float) -> None:
        old, self._period_s = self._period_s, value
        if self._proc is not None and abs(value - old) > 0.01 * max(old, 1e-6):
            self._proc.command("period", self.cfg.id, value)

    def start(self) -> None:
        self._pool._attach(self)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._pool._detach(self)

    def next_frame(self, after_index: int, timeout: float) -> Frame | None:
        return newest_frame(
            self._cond, self._stop, lambda: self._latest, after_index, timeout, self._took
        )

    def _took(self, frame: Frame) -> None:  # with _cond held
        self._latest = None  # the analytics own it now; the next one comes from the child

    def stats(self) -> ReaderStats:
        with self._cond:
            st, at = self._stats, self._stats_mono
        proc = self._proc
        why = None
        if proc is None or not proc.alive:
            why = proc.down_reason if proc is not None else "not started"
        elif st is not None and time.monotonic() - at > STATS_STALE_S:
            why = f"reader process {proc.index} has not reported for {STATS_STALE_S:.0f} s"
        if st is None:
            return ReaderStats(
                state="offline", policy=self.policy, decoder="none", fps=0.0, packets_fps=0.0,
                last_frame_time=None, reconnects=0, connects=0, frames=0, skipped=0,
                error=why, faults=dict.fromkeys(FAULTS, 0), gop_s=None, width=None, height=None,
            )  # fmt: skip
        if why is not None:
            return replace(st, state="offline", error=why)
        return st

    # called by the pool's receiver thread
    def _deliver(self, frame: Frame) -> None:
        with self._cond:
            # Numbered here, not by the child: a restarted child (or the reader of a camera
            # rebuilt live) counts from 1 again, and the analytics wait for an index above
            # the last one they took.
            self._received += 1
            self._latest = replace(frame, index=self._received)
            self._cond.notify_all()

    def _set_stats(self, st: ReaderStats) -> None:
        with self._cond:
            self._stats, self._stats_mono = st, time.monotonic()


class _Proc:
    """One child process, its pipes, and the thread that receives what it sends."""

    def __init__(self, pool: ReaderPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.readers: dict[str, RemoteReader] = {}
        self.lock = threading.Lock()
        self.alive = False
        self.down_reason: str | None = "starting"
        self.process: multiprocessing.process.BaseProcess | None = None
        self.ctrl: multiprocessing.connection.Connection | None = None
        self.frames: multiprocessing.connection.Connection | None = None
        self.restarts = 0
        self.arena: mmap.mmap | None = None  # the child's frame slots (_Arena)
        self._frames: dict[tuple[int, int, str], list[av.VideoFrame]] = {}  # for reuse
        self.thread = threading.Thread(target=self._run, name=f"reader-pool-{index}", daemon=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self, *msg: Any) -> None:
        with self.lock:
            self._send(msg)

    def _send(self, msg: tuple) -> None:
        """With ``lock`` held. A process that is down gets nothing: its cameras are sent
        again (as "add") when it is started again."""
        if self.ctrl is None or not self.alive:
            return
        try:
            self.ctrl.send(msg)
        except (OSError, EOFError, ValueError):
            self.alive = False

    def add(self, r: RemoteReader) -> None:
        with self.lock:
            self.readers[r.cfg.id] = r
            self._send(("add", r.cfg, r.period_s, r.policy))

    def remove(self, r: RemoteReader) -> None:
        with self.lock:
            # A camera rebuilt live (a new configuration) may be added again before the
            # old one is stopped: the child then already reads the new one, keep it.
            if self.readers.get(r.cfg.id) is r:
                del self.readers[r.cfg.id]
                self._send(("remove", r.cfg.id))

    def _spawn(self) -> None:
        ctx = self.pool.ctx
        ctrl_child, ctrl = ctx.Pipe(duplex=False)
        frames, frames_child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child_main,
            args=(ctrl_child, frames_child, self.pool.log_level, self.index),
            name=f"edgewatch-readers-{self.index}",
            daemon=True,
        )
        proc.start()
        ctrl_child.close()
        frames_child.close()
        with self.lock:
            self.process, self.ctrl, self.frames = proc, ctrl, frames
            self.alive = True
            self.down_reason = None
            for r in self.readers.values():
                self._send(("add", r.cfg, r.period_s, r.policy))

    def _run(self) -> None:
        attempt = 0
        rng = random.Random()
        while not self.pool.stopping.is_set():
            try:
                self._spawn()
                started = time.monotonic()
                self._receive()
            except Exception as exc:  # never let the pool thread die quietly
                log.exception("reader pool receiver failed", extra={"reader_process": self.index})
                self.down_reason = f"reader process {self.index}: {type(exc).__name__}"
                started = time.monotonic()
            if self.pool.stopping.is_set():
                break
            code = self._reap()
            self.alive = False
            self.restarts += 1
            self.down_reason = f"reader process {self.index} exited (code {code}); restarting"
            if time.monotonic() - started > 60:
                attempt = 0
            delay = backoff_delay(attempt, 0.5, 30.0, rng)
            attempt += 1
            log.error(
                "reader process exited; starting it again",
                extra={
                    "reader_process": self.index,
                    "exit_code": code,
                    "cameras": len(self.readers),
                    "retry_in_s": round(delay, 2),
                    "restarts": self.restarts,
                },
            )
            if self.pool.stopping.wait(delay):
                break
        self._reap()

    def _reap(self) -> int | None:
        with self.lock:  # no command is being sent meanwhile
            self.alive = False
            proc, self.process = self.process, None
            for conn in (self.ctrl, self.frames):
                if conn is not None:
                    try:
                        conn.close()
                    except OSError:
                        pass
            self.ctrl = self.frames = None
        self._unmap()
        if proc is None:
            return None
        proc.join(2)
        if proc.is_alive():
            proc.kill()
            proc.join(2)
        # an arena the child made just before it died, before this side mapped and
        # unlinked it
        for left in Path(_shm_dir()).glob(f"edgewatch-frames-{proc.pid}-*"):
            left.unlink(missing_ok=True)
        return proc.exitcode

    def _receive(self) -> None:
        conn = self.frames
        assert conn is not None
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "frame":
                self._frame(conn, msg)
            elif msg[0] == "stats":
                with self.lock:
                    readers = dict(self.readers)
                for cid, st in msg[1].items():
                    r = readers.get(cid)
                    if r is not None:
                        r._set_stats(st)

    def _frame(self, conn: multiprocessing.connection.Connection, msg: tuple) -> None:
        _, cid, index, wall, mono, w, h, fmt, colorspace, color_range, where, planes = msg
        generation, slot, new_path, slot_size = where
        if new_path is not None:
            self._map(new_path, slot_size)
        mm = self.arena
        assert mm is not None
        vf = self._blank(w, h, fmt)
        pos = slot * slot_size
        for plane, (line_size, size) in zip(vf.planes, planes, strict=True):
            src = np.frombuffer(mm, np.uint8, count=size, offset=pos)
            pos += size
            if plane.line_size == line_size and plane.buffer_size == size:
                np.frombuffer(plane, np.uint8)[:] = src  # one memcpy, the GIL released
            else:  # another row padding: copy row by row
                dst = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
                src2 = src.reshape(-1, line_size)
                rows, cols = min(len(src2), len(dst)), min(line_size, plane.line_size)
                dst[:rows, :cols] = src2[:rows, :cols]
        del src
        self.command("free", generation, slot)
        if colorspace is not None:
            vf.colorspace = colorspace
        if color_range is not None:
            vf.color_range = color_range
        with self.lock:
            r = self.readers.get(cid)
        if r is not None:
            r._deliver(Frame(index=index, time=wall, mono=mono, width=w, height=h, _frame=vf))

    def _blank(self, w: int, h: int, fmt: str) -> av.VideoFrame:
        """A frame to copy into: one handed out earlier that nobody holds any more, or a
        new one. A new 1080p frame costs 1.9 ms of page faults and zeroing before the copy
        (0.08 ms): FFmpeg's decoders reuse their buffers from a pool, and so does this."""
        key = (w, h, fmt)
        frames = self._frames.setdefault(key, [])
        for vf in frames:
            # referenced only by the list and this loop: free (a Frame, a plane or an array
            # viewing it would each hold a reference)
            if sys.getrefcount(vf) <= _FREE_REFS:
                return vf
        vf = av.VideoFrame(w, h, fmt)
        if len(frames) < FRAMES_KEPT:
            frames.append(vf)
        return vf

    def _map(self, path: str, slot_size: int) -> None:
        """Map a reader process's new frame arena, and unlink its file: from now on only
        the two mappings hold it (nothing is left behind if either process dies)."""
        self._unmap()
        fd = os.open(path, os.O_RDONLY)
        try:
            self.arena = mmap.mmap(fd, slot_size * SLOTS, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _unmap(self) -> None:
        if self.arena is not None:
            self.arena.close()
            self.arena = None


def _free_refcount() -> int:
    """What ``getrefcount`` says of an object held only by a list and the loop over it, as
    in ``_Proc._blank``: the count differs between interpreter versions (3.14 borrows the
    loop's reference), so it is measured, not assumed."""
    for x in [object()]:
        return sys.getrefcount(x)
    raise AssertionError


_FREE_REFS = _free_refcount()


class ReaderPool:
    """``processes`` child processes reading cameras; a camera is placed on the one with
    the least work (frames decoded per second, demuxing counted as one), so a camera
    decoding every frame weighs more than a sampled one."""

    def __init__(self, processes: int, log_level: str = "INFO") -> None:
        if processes < 1:
            raise ValueError("a reader pool needs at least one process")
        self.ctx = multiprocessing.get_context("spawn")
        self.log_level = log_level
        self.stopping = threading.Event()
        self.procs = [_Proc(self, i) for i in range(processes)]
        self._load: dict[int, float] = dict.fromkeys(range(processes), 0.0)
        self._placed: dict[int, tuple[int, float]] = {}  # id(reader) -> (process, weight)
        self._lock = threading.Lock()
        self._started = False

    @staticmethod
    def takes(policy: str, own_ring: bool) -> bool:
        """Whether a camera is read in the pool (see the module docstring)."""
        return policy in ("keyframes", "all") and not own_ring

    def reader(self, cfg: CameraConfig, period_s: float, policy: Policy) -> RemoteReader:
        return RemoteReader(self, cfg, period_s, policy)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for p in self.procs:
            p.thread.start()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def _attach(self, r: RemoteReader) -> None:
        self.start()
        weight = _weight(r)
        with self._lock:
            i = min(self._load, key=lambda k: self._load[k])
            self._load[i] += weight
            self._placed[id(r)] = (i, weight)
        r._proc = self.procs[i]
        self.procs[i].add(r)

    def _detach(self, r: RemoteReader) -> None:
        with self._lock:
            placed = self._placed.pop(id(r), None)
            if placed is not None:
                self._load[placed[0]] -= placed[1]
        if r._proc is not None:
            r._proc.remove(r)

    def stop(self) -> None:
        self.stopping.set()
        for p in self.procs:
            p.command("stop")
        for p in self.procs:
            if p.thread.is_alive():
                p.thread.join(5)


def _weight(r: RemoteReader) -> float:
    """Work, roughly: frames decoded per second (a stream's 25 when decoding all), plus
    one for demuxing."""
    return 26.0 if r.policy == "all" else 1.0 / max(r.period_s, 0.04) + 1.0
