"""One camera's stream, read by PyAV in its own thread, latest frame only.

- URLs: ``rtsp://`` (TCP by default), ``rtsps://``, ``http(s)://`` and files.
- Socket timeouts on open and read; a read that stalls for ``stall_timeout_s``
  (no packet) is interrupted and counts as a disconnect: that is the stall watchdog.
- Reconnects forever, with capped exponential backoff and jitter.
- Keeps only the newest decoded frame (a slow consumer never builds a backlog);
  frames replaced before anyone looked at them are counted as ``skipped``.
- Credentials never reach a log line, status message or exception text we raise.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import av
import numpy as np

from edge.config import CameraConfig
from edgewatch.logs import redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    index: int  # counts decoded frames since the reader started
    time: datetime  # wall-clock capture (decode) time, UTC
    width: int
    height: int
    _frame: av.VideoFrame

    def bgr(self) -> np.ndarray:
        """The frame as an (H, W, 3) uint8 BGR array (converted on demand)."""
        return self._frame.to_ndarray(format="bgr24")


@dataclass(frozen=True)
class ReaderStats:
    state: str  # online / offline / degraded
    fps: float
    last_frame_time: datetime | None
    reconnects: int
    frames: int
    skipped: int
    error: str | None


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": in [cap/2, cap]."""
    cap = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return cap / 2 + rng.random() * cap / 2


def open_options(cfg: CameraConfig) -> dict[str, str]:
    opts: dict[str, str] = {}
    url = cfg.url
    if url.startswith(("rtsp://", "rtsps://")):
        opts["rtsp_transport"] = cfg.transport
        opts["timeout"] = str(int(cfg.reconnect.stall_timeout_s * 1_000_000))  # socket I/O, µs
    elif url.startswith(("http://", "https://")):
        opts["rw_timeout"] = str(int(cfg.reconnect.stall_timeout_s * 1_000_000))
        opts["reconnect"] = "0"  # we reconnect ourselves, with backoff
    return opts


class CameraReader:
    def __init__(self, cfg: CameraConfig, seed: int | None = None) -> None:
        self.cfg = cfg
        self.safe_url = redact_url(cfg.url)
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._frames = 0
        self._skipped = 0
        self._reconnects = 0
        self._error: str | None = None
        self._connected = False
        self._nominal_fps: float | None = None
        self._recent: deque[float] = deque(maxlen=256)  # monotonic times of recent frames
        self._last_frame_mono: float | None = None
        self._last_frame_time: datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"reader-{cfg.id}", daemon=True)

    # -- public ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def next_frame(self, after_index: int, timeout: float) -> Frame | None:
        """The newest frame with an index above ``after_index``, waiting up to ``timeout``."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._stop.is_set()
                    or (self._latest is not None and self._latest.index > after_index)
                ),
                timeout,
            )
            frame = self._latest
            if frame is None or frame.index <= after_index:
                return None
            self._taken_index = frame.index
            return frame

    def stats(self) -> ReaderStats:
        now = time.monotonic()
        with self._cond:
            recent = [t for t in self._recent if now - t <= 5.0]
            fps = len(recent) / 5.0 if recent else 0.0
            if len(recent) >= 2 and now - recent[0] < 5.0:
                fps = (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
            fresh = (
                self._last_frame_mono is not None
                and now - self._last_frame_mono <= self.cfg.reconnect.stall_timeout_s
            )
            if not fresh:
                state = "offline"
            elif self._nominal_fps and fps < 0.5 * self._nominal_fps and len(recent) >= 3:
                state = "degraded"
            else:
                state = "online"
            return ReaderStats(
                state=state,
                fps=round(fps, 2),
                last_frame_time=self._last_frame_time,
                reconnects=self._reconnects,
                frames=self._frames,
                skipped=self._skipped,
                error=self._error,
            )

    # -- the reading thread ----------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            got_frames = self._read_once()
            if self._stop.is_set():
                break
            if got_frames:
                attempt = 0
            if self.cfg.is_file and self.cfg.loop and self._error is None:
                continue  # a looping file: start again at once
            self._reconnects += 1
            delay = backoff_delay(
                attempt, self.cfg.reconnect.initial_s, self.cfg.reconnect.max_s, self._rng
            )
            attempt += 1
            log.warning(
                "camera disconnected; reconnecting",
                extra={
                    "camera": self.cfg.id,
                    "url": self.safe_url,
                    "error": self._error,
                    "retry_in_s": round(delay, 2),
                    "reconnects": self._reconnects,
                },
            )
            self._stop.wait(delay)

    def _source(self) -> str:
        url = self.cfg.url
        return url[len("file://") :] if url.startswith("file://") else url

    def _read_once(self) -> bool:
        """Open, decode until the stream ends or fails; True if any frame came."""
        got = False
        container = None
        try:
            container = av.open(
                self._source(),
                options=open_options(self.cfg),
                timeout=(self.cfg.reconnect.open_timeout_s, self.cfg.reconnect.stall_timeout_s),
            )
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            self._nominal_fps = float(rate) if rate else None
            log.info(
                "camera connected",
                extra={
                    "camera": self.cfg.id,
                    "url": self.safe_url,
                    "codec": stream.codec_context.name,
                    "size": f"{stream.width}x{stream.height}",
                },
            )
            pace = self.cfg.is_file and self.cfg.realtime
            t0_wall: float | None = None
            t0_media = 0.0
            for frame in container.decode(stream):
                if self._stop.is_set():
                    break
                if pace and frame.time is not None:
                    if t0_wall is None:
                        t0_wall, t0_media = time.monotonic(), float(frame.time)
                    ahead = (float(frame.time) - t0_media) - (time.monotonic() - t0_wall)
                    if ahead > 0 and self._stop.wait(ahead):
                        break
                self._publish(frame)
                got = True
                self._error = None
            else:
                if not self.cfg.is_file or not self.cfg.loop:
                    self._error = "stream ended"
        except (av.FFmpegError, OSError, IndexError, ValueError) as exc:
            self._error = redact_url(self._describe(exc))
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception:
                    pass
        return got

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if isinstance(exc, IndexError):
            return "no video stream"
        if isinstance(exc, av.ExitError):
            return "timed out (no data)"
        return f"{type(exc).__name__}: {exc}"

    def _publish(self, frame: av.VideoFrame) -> None:
        now_mono = time.monotonic()
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken_index:
                self._skipped += 1
            self._frames += 1
            self._latest = Frame(
                index=self._frames,
                time=datetime.now(UTC),
                width=frame.width,
                height=frame.height,
                _frame=frame,
            )
            self._recent.append(now_mono)
            self._last_frame_mono = now_mono
            self._last_frame_time = self._latest.time
            self._cond.notify_all()
