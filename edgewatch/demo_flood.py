"""Rendered flood scenes with known truth, for ``edgewatch demo``, the tests and
``scripts/eval_flood.py``.

It lives in the package (not in tests/) because the demo serves these scenes as its flood
cameras' video, and an installed package must not import ``tests``; ``tests/flood_scenes.py``
re-exports it, so the tests and the evaluation read the very scenes the demo shows.

Three views (640x480), each with a water surface at a scripted level:

- ``gauge``: a staff gauge (0-400 cm, E pattern every 10 cm) on an embankment wall;
- ``virtual_gauge``: a bridge pier with no gauge (two surveyed marks calibrate the line);
- ``road_cover``: a street with a kerb and a post; depth in cm above the road surface.

Conditions: ``day``, ``night`` (low light, noise, and a stretch with the lights out),
``rain`` (streaks, haze), ``droplets``, ``glare`` and ``moved`` (a stretch with drops on the
lens, a blinding light, or the camera knocked aside), and ``reflection`` (calm water, dusk:
the water mirrors the gauge or pier above it, bright, as in the real GRIME2 night frames;
the mirrored image ends below the waterline with a second, often stronger edge: the trap
the real frames set). ``Sample.usable`` is False for frames that are unusable by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

W, H = 640, 480
GAUGE_TOP, GAUGE_BOTTOM = 60, 440  # rows of 400 cm and 0 cm
GAUGE_X = (296, 326)
PX_PER_CM = (GAUGE_BOTTOM - GAUGE_TOP) / 400.0
PIER_X = (280, 360)
ROAD_BASE = 440  # row of the road surface at the post
POST_X = (556, 570)
POST_PX_PER_CM = 3.0
CONDITIONS = ("day", "night", "rain", "droplets", "glare", "moved", "reflection")
LEVELS = [{"name": "I", "level_cm": 100}, {"name": "II", "level_cm": 200},
          {"name": "III", "level_cm": 350}]  # fmt: skip
ROAD_LEVELS = [{"name": "ankle", "level_cm": 10}, {"name": "knee", "level_cm": 40},
               {"name": "impassable", "level_cm": 60}]  # fmt: skip


def level_to_row(level_cm: float) -> float:
    return GAUGE_BOTTOM - level_cm * PX_PER_CM


def analytic_config(setup: str, **over: object) -> dict:
    """The FloodAnalytic config that matches a rendered view."""
    cx = (GAUGE_X[0] + GAUGE_X[1]) / 2 / W
    if setup == "gauge":
        cfg: dict = {
            "line": [(cx, 40 / H), (cx, 460 / H)],
            "line_width": (GAUGE_X[1] - GAUGE_X[0] - 8) / W,
            "points": [
                {"at": (cx, GAUGE_TOP / H), "level_cm": 400},
                {"at": (cx, level_to_row(200) / H), "level_cm": 200},
                {"at": (cx, GAUGE_BOTTOM / H), "level_cm": 0},
            ],
            "levels": LEVELS,
        }
    elif setup == "virtual_gauge":
        px = (PIER_X[0] + PIER_X[1]) / 2 / W
        cfg = {
            "line": [(px, 40 / H), (px, 460 / H)],
            "line_width": 0.05,
            "points": [
                {"at": (px, level_to_row(350) / H), "level_cm": 350},
                {"at": (px, level_to_row(50) / H), "level_cm": 50},
            ],
            "levels": LEVELS,
        }
    else:
        cfg = {
            "road": [(0.06, 1.0), (0.42, 0.43), (0.58, 0.43), (0.94, 1.0)],
            "marks": [
                {
                    "at": ((POST_X[0] + POST_X[1]) / 2 / W, (ROAD_BASE - d * POST_PX_PER_CM) / H),
                    "depth_cm": d,
                }  # fmt: skip
                for d in (10, 25, 40, 60)
            ],
            "levels": ROAD_LEVELS,
        }
    cfg.update({"type": "flood", "hotspot": f"test-{setup}", "setup": setup, "hold_s": 600})
    cfg.update(over)
    return cfg


def level_curve(n: int = 300, road: bool = False) -> np.ndarray:
    """Rise, plateau, fall; one value per 60 s sample (cm)."""
    if road:  # depth on the street: dry, rising to 70 cm, draining
        up, flat = int(n * 0.45), int(n * 0.15)
        down = n - up - flat
        dry = min(20, up // 4)
        rise = np.concatenate([np.zeros(dry), np.linspace(0, 70, up - dry)])
        return np.concatenate([rise, np.full(flat, 70.0), np.linspace(70, 0, down)])
    up, flat = int(n * 0.5), int(n * 0.1)
    down = n - up - flat
    return np.concatenate(
        [np.linspace(60, 380, up), np.full(flat, 380.0), np.linspace(380, 80, down)]
    )


def affected(cond: str, n: int) -> np.ndarray:
    """Samples made unusable by construction in each condition."""
    bad = np.zeros(n, bool)
    if cond in ("droplets", "glare", "moved"):
        bad[int(n * 0.3) : int(n * 0.3) + 25] = True
        bad[int(n * 0.75) : int(n * 0.75) + 15] = True
    if cond == "night":
        bad[int(n * 0.55) : int(n * 0.55) + 10] = True  # lights out
    return bad


def _texture(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    noise = rng.normal(0, 1, (shape[0] // 4 + 1, shape[1] // 4 + 1)).astype(np.float32)
    noise = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 0.5, shape).astype(np.float32)
    return (noise + fine) * scale


class Scene:
    def __init__(self, setup: str, seed: int = 0) -> None:
        self.setup = setup
        self.rng = np.random.default_rng(seed)
        self.background = self._background()

    def _background(self) -> np.ndarray:
        rng = self.rng
        img = np.zeros((H, W, 3), np.float32)
        sky = np.linspace(200, 170, 120)[:, None, None] * np.array([1.0, 0.95, 0.85])
        img[:120] = sky
        trees = np.array([60, 95, 70], np.float32) + _texture(rng, (100, W), 18)[..., None]
        img[90:190] = trees
        if self.setup == "road_cover":
            return self._street(img)
        wall = np.array([150, 155, 160], np.float32) + _texture(rng, (H - 170, W), 10)[..., None]
        img[170:] = wall
        for y in range(200, H, 40):  # masonry joints
            img[y : y + 2, :] *= 0.75
        if self.setup == "virtual_gauge":
            x0, x1 = PIER_X
            pier = (
                np.array([185, 190, 192], np.float32)
                + _texture(rng, (H - 30, x1 - x0), 12)[..., None]
            )
            img[30:, x0:x1] = pier
            for y in range(45, H, 30):
                img[y : y + 2, x0:x1] *= 0.8
            for _ in range(25):  # stains
                cx, cy = rng.integers(x0, x1), rng.integers(40, H)
                cv2.circle(img, (int(cx), int(cy)), int(rng.integers(2, 6)), (120, 125, 130), -1)
            img[30:, x0 : x0 + 3] *= 0.6
            img[30:, x1 - 3 : x1] *= 0.6
        else:
            self._draw_gauge(img)
        return img

    @staticmethod
    def _draw_gauge(img: np.ndarray) -> None:
        x0, x1 = GAUGE_X
        img[GAUGE_TOP - 4 : GAUGE_BOTTOM + 20, x0 - 2 : x1 + 2] = (40, 40, 40)
        img[GAUGE_TOP - 2 : GAUGE_BOTTOM + 18, x0:x1] = (235, 238, 240)
        for cm in range(0, 400, 10):  # the E pattern: left or right half, 5 cm tall
            ya = level_to_row(cm + 10)
            yb = level_to_row(cm + 5)
            left = (cm // 10) % 2 == 0
            xa, xb = (x0, x0 + 16) if left else (x1 - 16, x1)
            img[int(ya) : int(yb), xa:xb] = (30, 30, 30) if cm % 100 else (30, 30, 200)
            for k in range(0, 10, 2):
                y = int(level_to_row(cm + k))
                img[y : y + 1, x0 + 12 : x1 - 12] = (30, 30, 30)

    def _street(self, img: np.ndarray) -> np.ndarray:
        rng = self.rng
        img[190:] = np.array([120, 130, 140], np.float32)  # buildings
        img[190:] += _texture(rng, (H - 190, W), 8)[..., None]
        for x in range(0, W, 90):
            img[230:300, x + 20 : x + 60] = (60, 70, 80)  # windows
        walk = np.array([150, 160, 165], np.float32)
        img[300:] = walk + _texture(rng, (H - 300, W), 6)[..., None]
        road = np.zeros((H, W), np.uint8)
        poly = np.array([[38, 479], [269, 206], [371, 206], [601, 479]], np.int32)
        cv2.fillPoly(road, [poly], 1)
        asphalt = np.array([85, 88, 90], np.float32) + _texture(rng, (H, W), 7)[..., None]
        img[road.astype(bool)] = asphalt[road.astype(bool)]
        cv2.line(img, (320, 210), (320, 479), (220, 220, 220), 4)  # lane marking
        for side in (poly[:2], poly[2:][::-1]):
            cv2.line(img, tuple(side[0]), tuple(side[1]), (200, 205, 205), 6)  # kerb
        self.road_mask = road.astype(bool)
        x0, x1 = POST_X
        img[ROAD_BASE - 260 : ROAD_BASE, x0:x1] = (60, 160, 220)  # a post in the road
        for d in (10, 25, 40, 60):
            y = int(ROAD_BASE - d * POST_PX_PER_CM)
            img[y - 1 : y + 2, x0:x1] = (20, 20, 20)
        return img

    # water --------------------------------------------------------------------------------

    def _water(self, img: np.ndarray, level_cm: float, t: int, mirror: float = 0.0) -> np.ndarray:
        rng = self.rng
        yy = np.arange(H, dtype=np.float32)[:, None]
        xx = np.arange(W, dtype=np.float32)[None, :]
        ripple = 6 * np.sin(xx / 9.0 + yy / 3.0 + t * 1.7) + 4 * np.sin(xx / 23.0 - t)
        water = np.array([70, 100, 118], np.float32) + ripple[..., None]
        water = water + rng.normal(0, 3, (H, W, 1)).astype(np.float32)
        if self.setup == "road_cover":
            mask = self._road_water(level_cm)
        else:
            y_w = level_to_row(level_cm) + 0.8 * np.sin(xx / 15.0 + t)  # a little wave
            mask = np.broadcast_to(yy >= y_w, (H, W))
            if mirror > 0:  # calm water mirrors what stands above it, a little wavy
                src_y = 2 * y_w - yy + 0.6 * np.sin(xx / 7.0 + yy / 5.0 + t)
                src_x = np.broadcast_to(xx, (H, W))
                above = cv2.remap(
                    img.astype(np.float32),
                    src_x.astype(np.float32),
                    np.clip(src_y, 0, H - 1).astype(np.float32),
                    cv2.INTER_LINEAR,
                )
                water = (1 - mirror) * water + mirror * above
        out = img.copy()
        out[mask] = water[mask]
        return out

    def _road_water(self, depth: float) -> np.ndarray:
        yy, xx = np.mgrid[0:H, 0:W]
        mask = np.zeros((H, W), bool)
        if depth <= 0:
            return mask
        road = self.road_mask
        if depth < 3:  # puddles spreading from the left gutter
            mask = road & (xx < 38 + (601 - 38) * depth / 3.0 * (yy / H))
        else:
            mask = road.copy()
        if depth > 15:  # over the kerb: the pavement floods too
            mask |= yy >= 300
        x0, x1 = POST_X
        post = (xx >= x0) & (xx < x1) & (yy < ROAD_BASE) & (yy >= ROAD_BASE - 260)
        mask &= ~post
        mask |= post & (yy >= ROAD_BASE - depth * POST_PX_PER_CM)
        return mask

    # conditions ---------------------------------------------------------------------------

    def render(self, level_cm: float, cond: str, t: int, bad: bool) -> np.ndarray:
        rng = self.rng
        mirror = 0.7 if cond == "reflection" and self.setup != "road_cover" else 0.0
        img = self._water(self.background, level_cm, t, mirror)
        if cond == "moved":
            dx, dy = rng.normal(0, 1.0, 2)  # a mast in the wind
            angle = 0.0
            if bad:
                dx, dy, angle = 38.0, 22.0, 2.5
            m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
            m[:, 2] += (dx, dy)
            img = cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_REFLECT)
        if cond == "rain":
            img = img * 0.85 + 25  # haze
            streaks = np.zeros((H, W), np.float32)
            for _ in range(350):
                x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
                ln = int(rng.integers(8, 22))
                cv2.line(streaks, (x, y), (x + ln // 4, y + ln), 1.0, 1)
            img = img + 55 * streaks[..., None]
        if cond == "night":
            gain = 0.05 if bad else 0.3
            img = img * gain * np.array([1.1, 1.0, 0.9]) + 4
            img = img + rng.normal(0, 4 if not bad else 1.5, (H, W, 1))
        else:
            img = img + rng.normal(0, 2, (H, W, 1))
        if cond == "droplets" and bad:
            img = _droplets(img, rng)
        if cond == "glare" and bad:
            cx, cy = (GAUGE_X[0] + 20, int(level_to_row(250))) if self.setup != "road_cover" else (
                430, 380)  # fmt: skip
            yy, xx = np.mgrid[0:H, 0:W]
            r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            bloom = 600 * np.exp(-((r / 170.0) ** 2))
            img = img + bloom[..., None]
        return np.clip(img, 0, 255).astype(np.uint8)


def _droplets(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Water drops on the lens: blurred, displaced discs over much of the view."""
    base = cv2.GaussianBlur(img, (0, 0), 2.0)
    heavy = cv2.GaussianBlur(img, (0, 0), 9.0)
    mask = np.zeros((H, W), np.float32)
    for _ in range(int(rng.integers(28, 40))):
        cx, cy = int(rng.integers(0, W)), int(rng.integers(0, H))
        cv2.circle(mask, (cx, cy), int(rng.integers(25, 60)), 1.0, -1)
    x0, x1 = GAUGE_X
    cv2.ellipse(mask, ((x0 + x1) // 2, H // 2), (70, 200), 0, 0, 360, 1.0, -1)  # over the line
    mask = cv2.GaussianBlur(mask, (0, 0), 4)[..., None]
    return base * (1 - mask) + (heavy * 0.9 + 20) * mask


@dataclass
class Sample:
    index: int
    level_cm: float
    usable: bool
    image: np.ndarray


def sequence(setup: str, cond: str, n: int = 300, seed: int = 0):  # type: ignore[no-untyped-def]
    """Yields the samples of one scripted sequence (one per 60 s)."""
    scene = Scene(setup, seed)
    curve = level_curve(n, road=setup == "road_cover")
    bad = affected(cond, n)
    for i in range(n):
        yield Sample(i, float(curve[i]), not bad[i], scene.render(curve[i], cond, i, bad[i]))


def sunlit(img: np.ndarray, seed: int, shadows: int = 45, gain: float = 1.8) -> np.ndarray:
    """The sun coming out over a real frame: brighter, with hard shadows of reeds across the
    view and the shade of the bank, the camera unmoved (for the camera-moved check)."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(seed)
    count = np.zeros((h, w), np.float32)
    bar = np.zeros((h, w), np.uint8)
    for _ in range(shadows):  # a reed's shadow: a straight bar, a little off the vertical
        x, half, lean = int(rng.integers(0, w)), int(rng.integers(3, 12)), rng.normal(0, 0.3)
        bar.fill(0)
        top, bottom = (int(x - lean * h / 2), 0), (int(x + lean * h / 2), h)
        cv2.line(bar, top, bottom, 1, thickness=2 * half)
        count += bar
    yy, xx = np.mgrid[0:h, 0:w]
    light = 0.5**count * np.where(xx - 0.6 * yy > 0.3 * w, 1.0, 0.5)  # and the bank's shade
    return np.clip(img.astype(np.float32) * light[..., None] * gain, 0, 255).astype(np.uint8)
