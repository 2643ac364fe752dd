"""The demo's camera videos, made once into its workdir as H.264 (what a camera streams).

Why each is what it is:

- **River and bridge (flood)**: no openly licensed flood footage exists (shared/assets
  README), so the views are the rendered scenes of :mod:`edgewatch.demo_flood`, whose
  level is known. The water follows a scripted *compressed day*: **1 s of video is 1 min
  of river**, so a rise through levels I and II and the fall back takes about three
  minutes. Timestamps are never faked: readings carry the real time they were taken; only
  the video is fast. Part of the day is night with the lights out and part has rain drops
  on the lens: those readings must come out ``unknown`` (too dark, lens blurred), never a
  level.
- **Forest**: the fire data set has no wildland view without fire or smoke in its test
  split, and an inpainted "before" is not allowed here, so the camera first shows a real
  wetland view with no fire (a GRIME2 frame, Apache-2.0; the fire model is quiet on it,
  checked when the video is made) and then a real fire from the data set's test split (an
  aerial view of a fire at the foot of a forested hillside). It is a cut, not a fire
  starting in the same view; the walkthrough says so.
- **Junction**: the real highway CCTV clip (the junction's signal controller is simulated
  by the demo, on MQTT).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# 1 s of video = this many seconds of river (said in the walkthrough and the names)
RIVER_SECONDS_PER_VIDEO_SECOND = 60
FLOOD_FPS = 2
FIRE_FPS = 5
FIRE_SCENE = "pexels-alan-w-8365993_mp4-10"  # test split: Fire and smoke boxes
NO_FIRE_SCENE = "water/grime2/2012_demo/06/NRmarshDN-12-06-30-09-45.jpg"
FIRE_BEFORE_S = 12
FIRE_AFTER_S = 48


@dataclass(frozen=True)
class Stretch:
    """A part of the flood cycle (video seconds) where the view cannot be read."""

    start_s: int
    end_s: int
    condition: str  # a demo_flood condition: night (lights out), droplets

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


# The cycle, in video seconds (= minutes of river): a rise through I and II, a peak in
# the dark, the fall with rain drops on the lens, then low water.
CYCLE_S = 180
NIGHT = Stretch(78, 96, "night")
DROPS = Stretch(120, 132, "droplets")


def level_at(t: float, low: float, peak: float) -> float:
    """The scripted level (cm) at video second ``t`` of the cycle."""
    t = t % CYCLE_S
    points = [(0, low), (12, low), (66, peak), (90, peak), (150, low), (CYCLE_S, low)]
    xs, ys = zip(*points, strict=True)
    return float(np.interp(t, xs, ys))


def _encode(frames_iter, path: Path, w: int, h: int, fps: int) -> Path:  # type: ignore[no-untyped-def]
    import av

    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "g": str(fps), "bf": "0", "crf": "28"}
        for i, img in enumerate(frames_iter):
            f = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    tmp.replace(path)
    return path


def flood_video(
    path: Path, setup: str, low: float, peak: float, seed: int, cycles: int = 2
) -> Path:
    """The compressed day, ``cycles`` times (the RTSP server plays a file once; the edge
    reconnects at its end and the day starts again)."""
    if path.is_file():
        return path
    from edgewatch import demo_flood as fs

    scene = fs.Scene(setup, seed)
    frames = []
    for i in range(CYCLE_S * FLOOD_FPS):
        t = i / FLOOD_FPS
        cond = next((s.condition for s in (NIGHT, DROPS) if s.covers(t)), "day")
        # bad=True: the lights out at night, drops over the gauge: unreadable by construction
        frames.append(scene.render(level_at(t, low, peak), cond, i, cond != "day"))
    return _encode((f for _ in range(cycles) for f in frames), path, fs.W, fs.H, FLOOD_FPS)


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a live camera adds frame to frame: sensor noise, gain wobble, a pixel of shake."""
    import cv2

    dx, dy = rng.integers(-1, 2, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    out = out.astype(np.float32) * float(rng.uniform(0.97, 1.03))
    out += rng.normal(0, 3, out.shape).astype(np.float32)
    return out.clip(0, 255).astype(np.uint8)


def fire_images(assets: Path) -> tuple[np.ndarray, np.ndarray]:
    """(before, fire), both 608x608: the real no-fire view and the real fire."""
    import cv2

    test = assets / "datasets" / "fire_smoke_ccby4" / "test" / "images"
    found = sorted(test.glob(f"{FIRE_SCENE}_*"))
    if not found:
        raise FileNotFoundError(f"{test}/{FIRE_SCENE}_*.jpg (the fire data set's test split)")
    fire = cv2.imread(str(found[0]))
    before = cv2.imread(str(assets / NO_FIRE_SCENE))
    if fire is None or before is None:
        raise FileNotFoundError(f"{found[0]} or {assets / NO_FIRE_SCENE} is not readable")
    h, w = fire.shape[:2]
    bh, bw = before.shape[:2]
    side = min(bh, bw)  # the centre square of the wetland view, scaled to the fire's size
    y0, x0 = (bh - side) // 2, (bw - side) // 2
    before = cv2.resize(before[y0 : y0 + side, x0 : x0 + side], (w, h), cv2.INTER_AREA)
    return before, fire


def fire_video(path: Path, assets: Path, loops: int = 3) -> Path:
    if path.is_file():
        return path
    before, fire = fire_images(assets)
    rng = np.random.default_rng(0)
    n_before, n_after = FIRE_BEFORE_S * FIRE_FPS, FIRE_AFTER_S * FIRE_FPS

    # a pool of jittered copies, drawn at random: a live look at a fraction of the cost
    pools = [[jitter(img, rng) for _ in range(10)] for img in (before, fire)]

    def frames():  # type: ignore[no-untyped-def]
        for _ in range(loops):
            for i in range(n_before + n_after):
                yield pools[i >= n_before][int(rng.integers(10))]

    h, w = fire.shape[:2]
    return _encode(frames(), path, w, h, FIRE_FPS)
