"""Readers in child processes (edge/ingest/pool.py), on a real RTSP server and real H.264:
frames cross intact, at the analytics' rate, and a dead child or a dead worker is survived."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest

from edge.config import CameraConfig
from edge.ingest.pool import ReaderPool, _Arena, _Proc, _send_frame
from edge.ingest.reader import Frame
from tests.helpers import Mosquitto, RtspServer, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, h264_video: Path) -> Iterator[RtspServer]:
    srv = RtspServer(tmp_path_factory.mktemp("rtsp"), {"gop2s": h264_video})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def pool() -> Iterator[ReaderPool]:
    p = ReaderPool(2, "WARNING")
    yield p
    p.stop()


def camera(url: str, cid: str = "cam", **kw: object) -> CameraConfig:
    reconnect = {"initial_s": 0.2, "max_s": 1.0, "stall_timeout_s": 2.0, "open_timeout_s": 3.0}
    return CameraConfig.model_validate({"id": cid, "url": url, "reconnect": reconnect, **kw})


def collect(reader, seconds: float) -> list[Frame]:  # type: ignore[no-untyped-def]
    frames: list[Frame] = []
    last, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        f = reader.next_frame(last, timeout=0.2)
        if f is not None:
            frames.append(f)
            last = f.index
    return frames


def test_frames_cross_through_shared_memory_pixel_for_pixel(h264_video: Path) -> None:
    """Through the arena and its header, as between a child and the worker; a larger
    frame makes the arena again (a new generation), and no file is left in /dev/shm."""
    with av.open(str(h264_video)) as c:
        decoded = next(c.decode(video=0))
    ctx = multiprocessing.get_context("spawn")
    rx, tx = ctx.Pipe(duplex=False)
    arena, stop = _Arena(), threading.Event()
    proc = _Proc.__new__(_Proc)  # only its receiving half, in this process
    proc.lock, proc.arena, proc._frames = threading.Lock(), None, {}
    freed: list[tuple] = []
    proc.command = lambda *msg: freed.append(msg)  # type: ignore[method-assign]
    got: list[Frame] = []

    class Sink:
        def _deliver(self, f: Frame) -> None:
            got.append(f)

    proc.readers = {"cam": Sink()}  # type: ignore[dict-item]
    try:
        for i, size in enumerate([(640, 360), (482, 270), (1280, 720)]):  # 482: padded rows
            src = decoded.reformat(width=size[0], height=size[1])
            sent = Frame(index=i + 1, time=datetime.now(UTC), mono=time.monotonic(),
                         width=size[0], height=size[1], _frame=src)  # fmt: skip
            assert _send_frame(tx, arena, "cam", sent, stop)
            proc._frame(rx, rx.recv())
            f = got[-1]
            assert (f.index, f.width, f.height, f.mono) == (i + 1, *size, sent.mono)
            assert np.array_equal(f.bgr(), sent.bgr())
            # Scaled, within 2 of 255: the decoder's frame carries a field PyAV does not
            # expose (a frame made from its planes with from_ndarray differs the same way).
            a, _ = f.bgr_fit(320, 320)
            b, _ = sent.bgr_fit(320, 320)
            assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 2
            assert freed[-1][0] == "free"
            arena.release(*freed[-1][1:])
            assert arena.path is not None and not os.path.exists(arena.path)  # unlinked
        assert arena.generation == 2  # 640x360 and 482x270 fit one slot size; 720p did not
    finally:
        arena.close()
        proc._unmap()


def test_sampled_cameras_are_read_in_child_processes(server: RtspServer, pool: ReaderPool) -> None:
    readers = [
        pool.reader(camera(server.url("gop2s"), f"cam{i}", decode="keyframes"), 2.0, "keyframes")
        for i in range(3)
    ]
    for r in readers:
        r.start()
    try:
        wait_for(lambda: all(r.stats().state == "online" for r in readers), timeout=15)
        frames = collect(readers[0], 9.0)
        stats = [r.stats() for r in readers]
    finally:
        for r in readers:
            r.stop()
    assert len(set(pool.pids())) == 2 and os.getpid() not in pool.pids()
    assert 4 <= len(frames) <= 6, len(frames)  # one per 2 s, as in-process
    w, h = stats[0].width, stats[0].height
    assert w and h and all((f.width, f.height) == (w, h) for f in frames)
    img = frames[-1].bgr()
    assert img.shape == (h, w, 3) and img.std() > 10  # a picture, not a blank buffer
    assert time.monotonic() - frames[-1].mono < 2.5
    for st in stats:
        assert st.state == "online" and st.policy == "keyframes", st
        assert st.gop_s == pytest.approx(2.0, abs=0.1) and st.packets_fps > 15


def test_a_camera_decoding_all_sends_one_frame_per_period(
    server: RtspServer, pool: ReaderPool
) -> None:
    r = pool.reader(camera(server.url("gop2s"), decode="all"), 0.2, "all")
    r.start()
    try:
        wait_for(lambda: r.stats().fps > 15, timeout=15)
        frames = collect(r, 5.0)
        st = r.stats()
    finally:
        r.stop()
    assert st.policy == "all" and st.fps > 15  # the child decodes every frame
    assert 20 <= len(frames) <= 28, len(frames)  # ~5 per s cross, not 25
    gaps = np.diff([f.mono for f in frames])
    assert gaps.min() >= 0.1 and gaps.mean() == pytest.approx(0.2, abs=0.03), gaps


def test_a_killed_reader_process_is_reported_and_started_again(
    server: RtspServer, pool: ReaderPool
) -> None:
    r = pool.reader(camera(server.url("gop2s"), decode="keyframes"), 1.0, "keyframes")
    r.start()
    try:
        before = collect(r, 10.0)
        assert len(before) >= 6, "too few frames before the kill"
        (pid,) = [p.pid for p in pool.procs if p.readers]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: r.stats().state == "offline", timeout=5)
        assert "exited" in (r.stats().error or "")
        wait_for(lambda: r._proc is not None and r._proc.pid not in (None, pid), timeout=10)
        # as the worker asks: for a frame newer than the last it took (the new child's
        # reader counts from 1 again; the proxy's numbering goes on)
        wait_for(lambda: r.stats().state == "online", timeout=10)
        # within 4 s: a child counting from 1 again would not pass the old index by then
        after = wait_for(lambda: r.next_frame(before[-1].index, timeout=0.5), timeout=4)
        assert after.index > before[-1].index
        assert r._proc is not None and r._proc.restarts == 1
    finally:
        r.stop()


def test_reader_processes_exit_when_the_worker_dies(server: RtspServer) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from edge.config import CameraConfig
        from edge.ingest.pool import ReaderPool
        if __name__ == "__main__":
            pool = ReaderPool(1, "WARNING")
            cam = CameraConfig.model_validate({{"id": "c", "url": {server.url("gop2s")!r}}})
            pool.reader(cam, 2.0, "keyframes").start()
            while not pool.pids():
                time.sleep(0.1)
            print(pool.pids()[0], flush=True)
            time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # no clean-up of any kind
        parent.wait(5)

        wait_for(lambda: _gone(child), timeout=10)
        assert not list(Path("/dev/shm").glob(f"edgewatch-frames-{child}-*"))  # nothing left
    finally:
        parent.kill()


def test_a_frame_buffer_is_reused_only_when_nothing_holds_it() -> None:
    proc = _Proc.__new__(_Proc)
    proc._frames = {}
    a = proc._blank(64, 48, "yuv420p")
    held = Frame(index=1, time=datetime.now(UTC), mono=0.0, width=64, height=48, _frame=a)
    del a
    b = proc._blank(64, 48, "yuv420p")
    assert b is not held._frame  # an analytic still holds the first
    plane, b_id = b.planes[0], id(b)  # the plane keeps its frame alive (the id stays its)
    del b
    c = proc._blank(64, 48, "yuv420p")
    assert c is not held._frame and id(c) != b_id  # a plane of it is still viewed
    del c, plane, held
    d = proc._blank(64, 48, "yuv420p")
    assert any(d is f for f in proc._frames[(64, 48, "yuv420p")][:2])  # reused


def test_the_worker_reads_its_cameras_in_the_pool_and_publishes(
    tmp_path: Path,
    server: RtspServer,
    broker: Mosquitto,
    model_dir: Path,
    uid: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``reader_processes: 1``: the worker's sampled camera is read in a child process,
    its samples analysed and its status published as online; the camera decoding every
    frame beside it too; the child's logs hold no password; a stop ends the child."""
    from edge.config import EdgeConfig
    from edge.ingest.pool import RemoteReader
    from edge.worker import EdgeWorker

    def cam(cid: str, fps: float) -> dict:
        return {
            "id": cid,
            "url": server.url("gop2s", f"admin:pw{uid}"),
            "reconnect": {"initial_s": 0.5, "max_s": 2.0, "stall_timeout_s": 5.0},
            "analytics": [{"type": "objects", "classes": ["car"], "fps": fps}],
        }

    cfg = EdgeConfig.model_validate(
        {
            "edge_id": f"edge-{uid}",
            "site": "hue",
            "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
            "spool_dir": str(tmp_path / "spool"),
            "models": {"dir": str(model_dir)},
            "status_interval_s": 1,
            "reader_processes": 1,
            "cameras": [cam("sampled", 1.0), cam("every", 4.0)],
        }
    )
    worker = EdgeWorker(cfg)
    assert all(isinstance(c.reader, RemoteReader) for c in worker.cameras)
    assert [c.reader.policy for c in worker.cameras] == ["keyframes", "all"]
    worker.start()
    try:
        wait_for(lambda: all(c.groups[0].analysed >= 3 for c in worker.cameras), timeout=40)
        pipes = [worker.pipeline(c)[0] for c in worker.cameras]
        assert all(c.reader.stats().state == "online" for c in worker.cameras)
        pids = worker.reader_pool.pids() if worker.reader_pool else []
        assert len(pids) == 1 and pids[0] != os.getpid()
    finally:
        worker.stop()
    assert pipes and all(p is not None for p in pipes)
    err = capfd.readouterr().err
    assert '"msg": "camera connected"' in err and '"reader_process": 0' in err  # the child's
    assert f"pw{uid}" not in err
    wait_for(lambda: _gone(pids[0]), timeout=10)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (exited, not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_a_camera_rebuilt_before_its_old_reader_stops_keeps_reading(server: RtspServer) -> None:
    """A live configuration change may start a camera's new reader before stopping the old
    one: stopping the old must not remove the new one from the child."""
    pool = ReaderPool(1, "WARNING")
    try:
        old = pool.reader(camera(server.url("gop2s"), decode="keyframes"), 1.0, "keyframes")
        old.start()
        assert wait_for(lambda: old.next_frame(0, timeout=0.5), timeout=15)
        new = pool.reader(camera(server.url("gop2s"), decode="keyframes"), 1.0, "keyframes")
        new.start()
        old.stop()
        assert collect(new, 5.0), "the new reader got nothing after the old one stopped"
        assert new.stats().state == "online"
    finally:
        pool.stop()
