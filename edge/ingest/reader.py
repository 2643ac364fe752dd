"""One camera's stream, read by PyAV in its own thread, decoding only what is needed.

Decode policies (``CameraConfig.decode``; ``auto`` picks from the analytics' rate):

- ``all``: every packet is decoded (tracking needs every frame); the newest frame is kept.
- ``keyframes``: every packet is demuxed, but only keyframes are sent to the decoder, and
  only when a sample is due (one per ``period_s`` on average). If the stream's keyframe
  interval is longer than the sample period (a "long GOP"), keyframes alone cannot meet the
  rate: the reader then decodes every packet of that connection and samples from it, and
  counts and reports the fault.
- ``snapshot``: connect, take the first keyframe, disconnect; again when the next sample
  is due. For rates of about a frame a minute or slower, where holding a stream open and
  demuxing it costs more than a reconnect.

In every policy the reader keeps only the newest frame (a slow consumer never builds a
backlog). Faults are survived and counted: decoder errors and corrupt packets, resolution
changes, timestamp jumps, long GOPs, stalls (no packet for ``stall_timeout_s``: the stall
watchdog) and connections that never yield a frame. Hardware decoding is tried through
PyAV's hwaccel when configured, falling back to software with a log line. Reconnects run
forever with capped exponential backoff and jitter. Credentials never reach a log line,
status message or exception text.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import av
import numpy as np

from edge.config import CameraConfig
from edge.events.evidence import PacketRing
from edgewatch.logs import redact_url

log = logging.getLogger(__name__)

Policy = Literal["snapshot", "keyframes", "all"]
FAULTS = (
    "decode_errors",  # packets the decoder rejected
    "corrupt_frames",  # frames decoded with errors concealed, or packets flagged corrupt
    "size_changes",  # resolution / codec parameter changes mid-stream
    "timestamp_jumps",  # pts going backwards or jumping ahead
    "long_gop",  # connections whose keyframe interval exceeded the sample period
    "stalls",  # reads that timed out (no packet for stall_timeout_s)
    "no_frame",  # connections that delivered packets but never a decodable frame
)
HWACCEL_ORDER = ("cuda", "vaapi", "qsv", "videotoolbox", "d3d11va", "drm")
_hw_failed: dict[str, str] = {}  # device type -> why it failed, once per process
_hw_lock = threading.Lock()


def choose_policy(decode: str, period_s: float) -> Policy:
    """The decode policy for a camera whose fastest analytic samples every ``period_s``."""
    if decode != "auto":
        return decode  # type: ignore[return-value]
    if period_s >= 30.0:
        return "snapshot"
    if period_s >= 1.0:
        return "keyframes"
    return "all"


@dataclass(frozen=True)
class Frame:
    index: int  # counts frames handed out since the reader started
    time: datetime  # wall-clock capture time (packet received), UTC
    mono: float  # the same instant on the monotonic clock, for lag
    width: int
    height: int
    _frame: av.VideoFrame = field(repr=False)

    def bgr(self) -> np.ndarray:
        """The full frame as an (H, W, 3) uint8 BGR array (converted on demand)."""
        return self._frame.to_ndarray(format="bgr24")

    def bgr_fit(self, width: int, height: int) -> tuple[np.ndarray, float]:
        """Scaled to fit (width, height) keeping aspect, converted in one swscale pass.

        Much cheaper than converting a 1080p frame to BGR and resizing it afterwards.
        Returns the array and the scale from source pixels to the returned pixels.
        """
        ratio = min(width / self.width, height / self.height)
        nw = max(2, int(round(self.width * ratio)))
        nh = max(2, int(round(self.height * ratio)))
        out = self._frame.reformat(width=nw, height=nh, format="bgr24", interpolation="AREA")
        return out.to_ndarray(), ratio

    def gray_thumb(self, width: int = 64, height: int = 36) -> np.ndarray:
        """A tiny grayscale thumbnail, for motion gating."""
        out = self._frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
        return out.to_ndarray()


@dataclass(frozen=True)
class ReaderStats:
    state: str  # online / offline
    policy: str  # effective decode policy (``keyframes+all`` when a long GOP forced it)
    decoder: str  # e.g. "h264 (software)" or "hevc (cuda)"
    fps: float  # frames decoded per second
    packets_fps: float
    last_frame_time: datetime | None
    reconnects: int
    connects: int  # successful opens (a snapshot camera opens once per sample)
    frames: int  # frames handed out
    skipped: int  # frames handed out but replaced before anyone took them
    error: str | None
    faults: dict[str, int]
    gop_s: float | None
    width: int | None
    height: int | None


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


class _NoFrame(Exception):
    pass


class CameraReader:
    """Reads one camera. ``period_s`` is the sampling period the analytics need."""

    # At most this many snapshot grabs connect at once, box-wide.
    snapshot_slots = threading.BoundedSemaphore(8)

    def __init__(
        self,
        cfg: CameraConfig,
        period_s: float = 0.0,
        policy: Policy | None = None,
        seed: int | None = None,
        ring: PacketRing | None = None,
        record_only: bool = False,
    ) -> None:
        self.cfg = cfg
        self.ring = ring  # keeps the last seconds of packets for evidence clips
        # A camera's record stream: its packets go to the ring and nothing is decoded
        # (the analytics read the detect stream, another reader).
        self.record_only = record_only
        self._pts_seen: dict[int, float] = {}  # pts -> monotonic arrival of its packet
        self._next_due = 0.0  # monotonic time the next sample is due (keyframes/snapshot)
        self._last_sample: float | None = None  # when the last sample was handed out
        self.period_s = period_s
        # a record stream is held open and read whole (never per snapshot), whatever the
        # detect stream's sampling
        self.policy: Policy = (
            "all" if record_only else (policy or choose_policy(cfg.decode, period_s))
        )
        self.safe_url = redact_url(cfg.url)
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._frames = 0
        self._skipped = 0
        self._reconnects = 0
        self._connects = 0
        self._error: str | None = None
        self._faults = dict.fromkeys(FAULTS, 0)
        self._decoder = "none"
        self._decoder_kind = "software"
        self._label_pending = True
        self._effective = str(self.policy)
        self._gop_s: float | None = None
        self._size: tuple[int, int] | None = None
        self._recent: deque[float] = deque(maxlen=512)  # monotonic times of decoded frames
        self._recent_packets: deque[float] = deque(maxlen=2048)
        self._last_frame_mono: float | None = None
        self._last_packet_mono: float | None = None
        self._last_frame_time: datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"reader-{cfg.id}", daemon=True)

    # -- public ----------------------------------------------------------------------------

    @property
    def period_s(self) -> float:
        return self._period_s

    @period_s.setter
    def period_s(self, value: float) -> None:
        """A shorter period takes effect at once. A sample scheduled under a longer one (a
        moment of overload, when the engine's fair share was small) is brought forward to
        one new period after the last sample: the camera is never left silent for the rest
        of an old, long period (issue 21)."""
        old = getattr(self, "_period_s", value)
        self._period_s = value
        if value < old and self._last_sample is not None:
            self._next_due = min(self._next_due, self._last_sample + value)

    def start(self) -> None:
        if self.policy == "snapshot":
            # Spread the cameras over the period so they do not all connect (and ask the
            # model) at the same moment every period.
            self._next_due = time.monotonic() + self._rng.uniform(0, min(self.period_s / 2, 30))
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def next_frame(self, after_index: int, timeout: float) -> Frame | None:
        """The newest frame with an index above ``after_index``, waiting up to ``timeout``."""
        return newest_frame(
            self._cond, self._stop, lambda: self._latest, after_index, timeout, self._took
        )

    def _took(self, frame: Frame) -> None:  # with _cond held
        self._taken_index = frame.index
        if self.policy != "all":
            # Sampled policies: the consumer owns it now. Holding a decoded 1080p frame
            # (3 MB) per idle camera would dominate memory on a box with hundreds.
            self._latest = None

    def liveness_window_s(self) -> float:
        """How long without news before the camera counts as offline."""
        stall = self.cfg.reconnect.stall_timeout_s
        if self.policy == "snapshot":
            return 2 * self.period_s + self.cfg.reconnect.open_timeout_s + stall
        return stall + 1.0

    def stats(self) -> ReaderStats:
        now = time.monotonic()
        with self._cond:
            fps = _rate(self._recent, now)
            pfps = _rate(self._recent_packets, now)
            news = self._last_frame_mono
            if self.policy != "snapshot" and self._last_packet_mono is not None:
                news = max(news or 0.0, self._last_packet_mono)
            fresh = news is not None and now - news <= self.liveness_window_s()
            return ReaderStats(
                state="online" if fresh else "offline",
                policy=self._effective,
                decoder=self._decoder,
                fps=round(fps, 2),
                packets_fps=round(pfps, 2),
                last_frame_time=self._last_frame_time,
                reconnects=self._reconnects,
                connects=self._connects,
                frames=self._frames,
                skipped=self._skipped,
                error=self._error,
                faults=dict(self._faults),
                gop_s=None if self._gop_s is None else round(self._gop_s, 2),
                width=self._size[0] if self._size else None,
                height=self._size[1] if self._size else None,
            )

    # -- the reading thread ----------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self.policy == "snapshot":
                wait = self._next_due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                with self.snapshot_slots:
                    got = self._read_once()
                if got and self._error is None:
                    attempt = 0
                    continue  # a snapshot was taken: sleep until the next one is due
            else:
                got = self._read_once()
            if self._stop.is_set():
                break
            if got:
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

    def _open(self) -> av.container.InputContainer:
        # Where FFmpeg's protocol has an I/O timeout of its own (RTSP's ``timeout``,
        # HTTP's ``rw_timeout``: open_options sets them to stall_timeout_s), PyAV's read
        # timeout is left off. PyAV implements it as an interrupt callback that takes the
        # GIL on every check, and FFmpeg checks several times per network read: with a
        # hundred cameras in one process, every reader thread queued for the GIL many
        # times per packet (issue 21). The open timeout stays: opening is once.
        own = open_options(self.cfg)
        if self.policy == "snapshot" and not self.cfg.is_file:
            # A snapshot camera opens once per sample, and FFmpeg's stream probe decoded
            # several 1080p frames at each open: 58 ms of CPU of the ~70 a flood sample
            # cost (issue 21). The first keyframe is all a snapshot needs, and RTSP's SDP
            # carries the codec parameters: probe as little as FFmpeg allows.
            own |= {"analyzeduration": "0", "probesize": "32768"}
        read_timeout = (
            None
            if ("timeout" in own or "rw_timeout" in own)
            else (self.cfg.reconnect.stall_timeout_s)
        )
        kwargs = dict(options=own, timeout=(self.cfg.reconnect.open_timeout_s, read_timeout))
        for device in self._hw_candidates():
            try:
                accel = av.codec.hwaccel.HWAccel(device_type=device, allow_software_fallback=True)
                container = av.open(self._source(), hwaccel=accel, **kwargs)
                self._decoder_kind = device
                return container
            except (av.FFmpegError, OSError, ValueError, NotImplementedError) as exc:
                with _hw_lock:
                    if device not in _hw_failed:
                        _hw_failed[device] = f"{type(exc).__name__}: {exc}"
                        log.warning(
                            "hardware decoder unavailable; trying the next",
                            extra={"camera": self.cfg.id, "device": device, "error": str(exc)},
                        )
        self._decoder_kind = "software"
        return av.open(self._source(), **kwargs)

    def _hw_candidates(self) -> list[str]:
        want = self.cfg.hwaccel
        if want == "none":
            return []
        available = set(av.codec.hwaccel.hwdevices_available())
        names = HWACCEL_ORDER if want == "auto" else (want,)
        with _hw_lock:
            return [d for d in names if d in available and d not in _hw_failed]

    def _read_once(self) -> bool:
        """Open, read until the stream ends or fails; True if any frame came."""
        got = False
        container = None
        self._decoder_kind = "software"
        try:
            container = self._open()
            self._connects += 1
            stream = container.streams.video[0]
            # Frame threading delays output by a frame per thread: fine when decoding
            # everything, wasteful for a lone keyframe. (Slice threading would hide
            # concealed errors: FFmpeg then does not flag corrupt frames.)
            stream.thread_type = "AUTO" if self.policy == "all" else "NONE"
            cc = self._m2m(stream.codec_context)
            if self.ring is not None:
                self.ring.new_segment(stream)
            self._label_pending = True
            log.info(
                "camera connected",
                extra={
                    "camera": self.cfg.id,
                    "url": self.safe_url,
                    "codec": cc.name,
                    "size": f"{stream.width}x{stream.height}",
                    "policy": self.policy,
                },
            )
            got = self._demux(container, stream, cc)
            if not got and not self._stop.is_set() and self._error is None:
                raise _NoFrame
        except _NoFrame:
            self._faults["no_frame"] += 1
            self._error = "connected but no frame was decoded"
        except (av.FFmpegError, OSError, IndexError, ValueError) as exc:
            if isinstance(exc, av.ExitError | TimeoutError) or "timed out" in str(exc).lower():
                self._faults["stalls"] += 1
            self._error = redact_url(self._describe(exc))
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception:
                    pass
        return got

    def _label_decoder(self, cc: av.CodecContext) -> None:
        """Name the decoder actually in use, once it has produced a frame."""
        self._label_pending = False
        kind = self._decoder_kind
        if kind not in ("software", "v4l2m2m") and not cc.is_hwaccel:
            kind = "software"  # the device opened but FFmpeg fell back to software
        decoder = f"{cc.name.removesuffix('_v4l2m2m')} ({kind})"
        if decoder != self._decoder:
            log.info(
                "decoder", extra={"camera": self.cfg.id, "decoder": decoder, "policy": self.policy}
            )
        self._decoder = decoder

    def _m2m(self, cc: av.CodecContext) -> av.CodecContext:
        """A V4L2 memory-to-memory decoder (Jetson, Raspberry Pi) when asked for and present."""
        if self.cfg.hwaccel != "v4l2m2m":
            return cc
        with _hw_lock:
            if "v4l2m2m" in _hw_failed:
                return cc
        try:
            m2m = av.CodecContext.create(f"{cc.name}_v4l2m2m", "r")
            m2m.extradata = cc.extradata
            m2m.open()
        except (av.FFmpegError, OSError, ValueError) as exc:
            with _hw_lock:
                _hw_failed["v4l2m2m"] = str(exc)
            log.warning(
                "hardware decoder unavailable; software decoding",
                extra={"camera": self.cfg.id, "device": "v4l2m2m", "error": str(exc)},
            )
            return cc
        self._decoder_kind = "v4l2m2m"
        return m2m

    def _demux(
        self, container: av.container.InputContainer, stream: av.VideoStream, cc: av.CodecContext
    ) -> bool:
        tb = float(stream.time_base) if stream.time_base else 1 / 90000
        rate = stream.average_rate or stream.guessed_rate
        frame_s = 1.0 / float(rate) if rate else 0.04
        jump_s = max(2.0, 10 * frame_s)
        pace = self.cfg.is_file and self.cfg.realtime
        t0_wall: float | None = None
        t0_media = 0.0
        last_ts: float | None = None
        last_key_ts: float | None = None
        decode_all = self.policy == "all"
        long_gop = False
        untimed = 0
        key_untimed: int | None = None
        connected_at = time.monotonic()
        first_frame_deadline = connected_at + self.cfg.reconnect.first_frame_timeout_s
        got = False
        self._effective = str(self.policy)
        for packet in container.demux(stream):
            if self._stop.is_set():
                return got
            if packet.size == 0:
                continue  # the demuxer's flush packet at the end
            now = time.monotonic()
            pts = packet.pts if packet.pts is not None else packet.dts
            ts = float(pts * tb) if pts is not None else None
            if ts is None:
                untimed += 1  # e.g. RTSP's first packet; placed from the next timed one
                if packet.is_keyframe:
                    key_untimed = untimed
            elif key_untimed is not None:
                last_key_ts = ts - (untimed - key_untimed + 1) * frame_s
                key_untimed = None
                untimed = 0
            if ts is not None and last_ts is not None:
                delta = ts - last_ts
                if delta < -jump_s or delta > jump_s:
                    self._faults["timestamp_jumps"] += 1
                    t0_wall = None  # re-anchor real-time pacing; never sleep a jump away
                    last_key_ts = None
                    log.warning(
                        "timestamp jump",
                        extra={"camera": self.cfg.id, "jump_s": round(delta, 3)},
                    )
            if ts is not None:
                last_ts = ts
            if pace and ts is not None:
                if t0_wall is None:
                    t0_wall, t0_media = now, ts
                ahead = (ts - t0_media) - (now - t0_wall)
                if ahead > 0 and self._stop.wait(ahead):
                    return got
                now = time.monotonic()
            with self._cond:
                self._recent_packets.append(now)
                self._last_packet_mono = now
            if self.ring is not None:
                self.ring.add(packet, time.time() - (time.monotonic() - now))
            if self.record_only:
                got = True  # packets are what a record stream is for
                self._error = None
                continue
            if decode_all and pts is not None:
                # the decoder returns frames packets later (threads): remember when each
                # frame's own packet arrived, so its capture time is that, not the later one
                self._pts_seen[pts] = now
                if len(self._pts_seen) > 256:
                    for k in list(self._pts_seen)[:128]:
                        del self._pts_seen[k]
            if packet.is_corrupt:
                self._faults["corrupt_frames"] += 1
            if packet.is_keyframe and ts is not None:
                if last_key_ts is not None and ts > last_key_ts:
                    self._gop_s = ts - last_key_ts
                    if (
                        self.policy == "keyframes"
                        and not long_gop
                        and self._gop_s > self.period_s * 1.1 + frame_s
                    ):
                        long_gop = decode_all = True
                        self._faults["long_gop"] += 1
                        self._effective = "keyframes+all"
                        log.warning(
                            "keyframe interval longer than the sample period; decoding all",
                            extra={
                                "camera": self.cfg.id,
                                "gop_s": round(self._gop_s, 2),
                                "period_s": self.period_s,
                            },
                        )
                last_key_ts = ts
            due = now >= self._next_due
            if not decode_all and not (packet.is_keyframe and due):
                if not got and now > first_frame_deadline:
                    raise _NoFrame
                continue
            try:
                frames = cc.decode(packet)
                if not decode_all and not frames:  # a lone keyframe may sit in the decoder
                    frames = cc.decode(None)
                    cc.flush_buffers()
            except av.FFmpegError as exc:
                self._faults["decode_errors"] += 1
                if self._faults["decode_errors"] % 100 == 1:
                    log.warning(
                        "decoder error; skipping the packet",
                        extra={"camera": self.cfg.id, "error": str(exc)[:200]},
                    )
                continue
            if frames and self._label_pending:
                self._label_decoder(cc)
            for frame in frames:
                if frame.is_corrupt:
                    self._faults["corrupt_frames"] += 1
                if self.policy != "all" and now < self._next_due:
                    continue  # long-GOP decoding: not due yet
                self._publish(frame, self._pts_seen.pop(frame.pts, now) if decode_all else now)
                got = True
                self._error = None
                if self.policy != "all":
                    # Average rate = 1 / period even when keyframes do not line up with it;
                    # after a stall, at most one extra sample half a period later (no burst).
                    self._next_due = max(self._next_due + self.period_s, now + self.period_s / 2)
                    self._last_sample = now
                    if self.policy == "snapshot":
                        return True
            if not got and now > first_frame_deadline:
                raise _NoFrame
        if self.cfg.is_file and self.cfg.loop:
            return got
        if self._error is None:
            self._error = "stream ended"
        return got

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if isinstance(exc, IndexError):
            return "no video stream"
        if isinstance(exc, av.ExitError):
            return "timed out (no data)"
        return f"{type(exc).__name__}: {exc}"

    def _publish(self, frame: av.VideoFrame, captured: float) -> None:
        size = (frame.width, frame.height)
        if self._size is not None and size != self._size:
            self._faults["size_changes"] += 1
            log.warning(
                "resolution changed",
                extra={
                    "camera": self.cfg.id,
                    "from": f"{self._size[0]}x{self._size[1]}",
                    "to": f"{size[0]}x{size[1]}",
                },
            )
        self._size = size
        wall = datetime.now(UTC) - timedelta(seconds=max(0.0, time.monotonic() - captured))
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken_index:
                self._skipped += 1
            self._frames += 1
            self._latest = Frame(
                index=self._frames,
                time=wall,
                mono=captured,
                width=frame.width,
                height=frame.height,
                _frame=frame,
            )
            self._recent.append(captured)
            self._last_frame_mono = captured
            self._last_frame_time = wall
            self._cond.notify_all()


def newest_frame(
    cond: threading.Condition,
    stop: threading.Event,
    latest: Callable[[], Frame | None],
    after_index: int,
    timeout: float,
    took: Callable[[Frame], None],
) -> Frame | None:
    """Wait on ``cond`` up to ``timeout`` for ``latest()`` to have an index above
    ``after_index`` (or for ``stop``); that frame, after ``took(frame)`` (with ``cond``
    still held), or None. Shared by the in-process reader and the reader pool's proxy
    (edge/ingest/pool.py)."""
    with cond:
        cond.wait_for(
            lambda: stop.is_set() or ((f := latest()) is not None and f.index > after_index),
            timeout,
        )
        frame = latest()
        if frame is None or frame.index <= after_index:
            return None
        took(frame)
        return frame


def _rate(times: deque[float], now: float, window: float = 5.0) -> float:
    recent = [t for t in times if now - t <= window]
    if len(recent) >= 2:
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
    return len(recent) / window
