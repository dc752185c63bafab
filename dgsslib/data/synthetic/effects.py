"""Weather (fog, night, rain, snow) and camera artefacts applied to a rendered image.

Weather uses the scene's geometry, not just the pixels: fog is a depth-dependent blend
to a haze colour, night relights the scene with its light sources (street lamps,
head/tail lights, signals, lit windows), rain darkens and wets the ground (reflections)
and adds streaks, snow whitens ground and roofs by a cover noise and adds flakes. The
camera stage then adds optics blur, chromatic aberration, vignetting, sensor noise and
JPEG-like 8x8 blockiness. All images are float (H, W, 3) in [0, 1].

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import draw as d
from .noise import blur, fbm, smear
from .scene import ROAD, SIDEWALK, SKY, TERRAIN, VEG, Scene
from .styles import Style

# emissive colour and (halo, pool) strength of each light kind (part code)
LIGHTS = {d.LAMP: ((1.0, 0.78, 0.45), 1.0, 1.0), d.HEAD: ((1.0, 0.97, 0.85), 1.0, 0.7),
          d.TAIL: ((1.0, 0.08, 0.05), 0.7, 0.15), d.SIGNAL_R: ((1.0, 0.1, 0.05), 0.8, 0.1),
          d.SIGNAL_G: ((0.1, 1.0, 0.5), 0.8, 0.1)}


def _gauss(acc: np.ndarray, row: float, col: float, sigma: float, rgb: np.ndarray) -> None:
    """Add a Gaussian blob of colour ``rgb`` to ``acc`` (H, W, 3) inside its 3-sigma box."""
    H, W = acc.shape[:2]
    r0, r1 = max(int(row - 3 * sigma), 0), min(int(row + 3 * sigma) + 1, H)
    c0, c1 = max(int(col - 3 * sigma), 0), min(int(col + 3 * sigma) + 1, W)
    if r1 <= r0 or c1 <= c0:
        return
    gy = np.exp(-0.5 * ((np.arange(r0, r1) + 0.5 - row) / sigma) ** 2)  # (h,)
    gx = np.exp(-0.5 * ((np.arange(c0, c1) + 0.5 - col) / sigma) ** 2)  # (w,)
    acc[r0:r1, c0:c1] += (gy[:, None] * gx[None, :])[..., None] * rgb


def _night(img: np.ndarray, scene: Scene, rng: np.random.Generator, s: float) -> np.ndarray:
    H, W = img.shape[:2]
    light = np.empty((H, W, 3), np.float32)
    light[:] = np.array((0.11, 0.12, 0.17), np.float32)            # moonlight ambient
    halo = np.zeros((H, W, 3), np.float32)
    for row, col, rad, kind in scene.lights:
        rgb, h, p = LIGHTS.get(int(kind), ((1, 1, 1), 0.5, 0.3))
        rgb = np.array(rgb, np.float32)
        rad = max(float(rad), 1.0)
        _gauss(halo, row, col, min(0.3 * rad, 4 * s) + 0.5, rgb * h * 0.7)
        pool = min(1.5 * rad, 18 * s)
        _gauss(light, row + pool, col, pool, rgb * p * 0.6)          # pool of light below
    img = img * light
    t = np.clip((np.arange(H, dtype=np.float32) + 0.5) / (scene.horizon * H), 0, 1)[:, None, None]
    zenith = np.array((0.01, 0.015, 0.04), np.float32)
    glow = np.array((0.09, 0.08, 0.1), np.float32)
    night_sky = zenith * (1 - t) + glow * t                          # city glow at the horizon
    img = np.where((scene.label == SKY)[..., None], night_sky, img)
    for code, rgb in ((d.LIT_WINDOW, (1.0, 0.82, 0.5)), (d.LAMP, (1.0, 0.9, 0.7)),
                      (d.HEAD, (1.0, 1.0, 0.95)), (d.TAIL, (1.0, 0.1, 0.05)),
                      (d.SIGNAL_R, (1.0, 0.15, 0.1)), (d.SIGNAL_G, (0.2, 1.0, 0.6))):
        m = scene.part == code
        img[m] = np.array(rgb, np.float32) * (0.6 + 0.4 * rng.random())
    return img + halo


def _fog(img: np.ndarray, scene: Scene, rng: np.random.Generator, s: float) -> np.ndarray:
    H, W = img.shape[:2]
    vis = rng.uniform(25, 60)                                         # metres
    patchy = 1 + 0.3 * fbm(rng, H, W, 30 * s, 2)                      # (H, W)
    t = np.exp(-scene.depth / vis * patchy)[..., None]
    fog = np.array((0.78, 0.8, 0.82), np.float32) * rng.uniform(0.9, 1.05)
    return img * t + fog * (1 - t)


def _rain(img: np.ndarray, scene: Scene, rng: np.random.Generator, s: float) -> np.ndarray:
    H, W = img.shape[:2]
    img = img * 0.75
    ground = (scene.face == d.GROUND)[..., None]
    refl = smear(img, 0.0, 1.0, max(2, int(8 * s)))                  # reflections below objects
    puddle = np.clip(fbm(rng, H, W, 12 * s, 2) * 2, 0, 1)[..., None] * 0.5 + 0.25
    img = np.where(ground, img * 0.6 * (1 - puddle) + refl * puddle, img)
    drops = (rng.random((H, W)) < 0.004 * s).astype(np.float32)
    slant = rng.uniform(-0.3, 0.3)
    streak = smear(drops, slant, 1.0, max(3, int(10 * s))) * max(3, int(10 * s))
    streak = blur(np.clip(streak, 0, 1), 0.5 * s)[..., None]
    return img * (1 - 0.35 * streak) + 0.8 * 0.35 * streak


def _snow(img: np.ndarray, scene: Scene, rng: np.random.Generator, s: float) -> np.ndarray:
    H, W = img.shape[:2]
    white = np.array((0.9, 0.92, 0.96), np.float32)
    cover = (fbm(rng, H, W, 10 * s, 3) + 1) / 2                      # (H, W)
    lab = scene.label
    amount = np.zeros((H, W), np.float32)
    amount[lab == TERRAIN] = 0.95
    amount[lab == SIDEWALK] = 0.8
    amount[lab == ROAD] = 0.45
    amount[scene.face == d.TOP] = 0.85
    amount[lab == VEG] = 0.4
    c = np.clip((cover - (1 - amount)) * 3, 0, 1)[..., None]
    img = img * (1 - c) + white * c
    img = img * 0.9 + 0.1                                            # flat, bright light
    flakes = (rng.random((H, W)) < 0.006).astype(np.float32)
    big = (rng.random((H, W)) < 0.0008 * s).astype(np.float32)
    big = np.maximum(big, np.roll(big, 1, 0))
    big = np.maximum(big, np.roll(big, 1, 1))
    f = np.clip(blur(flakes + big, 0.4 * s), 0, 1)[..., None]
    return img * (1 - 0.8 * f) + 0.97 * 0.8 * f


WEATHER = {"night": _night, "fog": _fog, "rain": _rain, "snow": _snow}


def apply_weather(img: np.ndarray, scene: Scene, style: Style, rng: np.random.Generator,
                  s: float) -> np.ndarray:
    """Apply ``style.weather`` (or nothing) to a float image."""
    if style.weather is None:
        return img
    return WEATHER[style.weather](img, scene, rng, s)


@lru_cache(maxsize=16)
def _vignette_map(H: int, W: int) -> np.ndarray:
    yy = (np.arange(H, dtype=np.float32) + 0.5) / H - 0.5
    xx = (np.arange(W, dtype=np.float32) + 0.5) / W - 0.5
    return (yy[:, None] ** 2 + xx[None, :] ** 2) / 0.5              # (H, W), 1 at corners


def _blocky(img: np.ndarray, strength: float, block: int) -> np.ndarray:
    """JPEG-like artefact: pull chroma (and a little luma) to its block mean."""
    H, W = img.shape[:2]
    Hc, Wc = H - H % block, W - W % block
    if Hc == 0 or Wc == 0:
        return img
    x = img[:Hc, :Wc]
    h, w = Hc // block, Wc // block
    m = x.reshape(h, block, Wc, 3).sum(1)                        # (h, Wc, 3) sum of rows
    m = m.reshape(h, w, block, 3).sum(2) / (block * block)       # (h, w, 3) block means
    m = np.repeat(np.repeat(m, block, 0), block, 1)              # (Hc, Wc, 3)
    luma = (x[..., 0] + x[..., 1] + x[..., 2]) / 3               # (Hc, Wc)
    mluma = (m[..., 0] + m[..., 1] + m[..., 2]) / 3
    # chroma from the block mean, luma mostly kept (pulled 30 % of the way to the block)
    shift = (luma + 0.3 * (mluma - luma)) * strength             # (Hc, Wc)
    out = img.copy()
    out[:Hc, :Wc] = x * (1 - strength) + (m - mluma[..., None]) * strength + shift[..., None]
    return out


def apply_camera(img: np.ndarray, style: Style, rng: np.random.Generator,
                 s: float) -> np.ndarray:
    """Optics blur, chromatic aberration, vignetting, sensor noise, blockiness."""
    H, W = img.shape[:2]
    if style.blur > 0:
        img = blur(img, style.blur * s)
    if style.chroma:
        c = max(1, int(round(style.chroma * s)))
        img = np.stack([np.roll(img[..., 0], c, 1), img[..., 1], np.roll(img[..., 2], -c, 1)], -1)
    if style.vignette > 0:
        img = img * (1 - style.vignette * _vignette_map(H, W))[..., None]
    if style.noise > 0:
        n = (rng.random((H, W, 3), dtype=np.float32) - 0.5) * np.float32(3.464)  # unit variance
        lum = (n[..., 0] + n[..., 1] + n[..., 2]) * np.float32(0.4 / 3)  # partly luma noise
        n *= np.float32(0.6)
        n += lum[..., None]
        img = img + np.float32(style.noise) * n * (0.5 + np.sqrt(np.clip(img, 0, 1)))
    if style.jpeg > 0:
        img = _blocky(img, style.jpeg, max(2, int(round(4 * s))))
    return img

