"""Rendering: a rasterised :class:`~.scene.Scene` plus a domain :class:`~.styles.Style` -> RGB.

The pipeline is a handful of vectorised passes over the whole image: instance colours
(each instance picks a colour from its class's set in this domain with its tone) and
part colours (glass, tyres, lane marks, lamps), a sky gradient with clouds, multiplicative
texture noise per class, face shading and ground shadows, aerial haze by depth, the
weather, then colour grading and camera artefacts. Every random number comes from a
generator seeded by ``(seed, index, domain)``, so a rendering is reproducible; the label
map is never touched.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import draw as d
from .effects import apply_camera, apply_weather
from .noise import fbm, value_noise
from .scene import SKY, Scene
from .styles import DOMAINS, HOOD, PARTS, Style, colour_table, get_style

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def render_rng(seed: int, index: int, domain: str) -> np.random.Generator:
    """The generator of all rendering noise for ``(seed, index, domain)``."""
    code = DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS)
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index),
                                                          101 + code]))


@lru_cache(maxsize=32)
def _table(domain: str) -> tuple[np.ndarray, np.ndarray]:
    return colour_table(get_style(domain))


def _hue_rotation(deg: np.ndarray) -> np.ndarray:
    """(K, 3, 3) rotations of RGB about the grey axis by ``deg`` degrees (hue shifts)."""
    a = np.deg2rad(deg)[:, None, None]
    u = np.full(3, 1 / np.sqrt(3), np.float32)
    K = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]], np.float32)
    eye = np.eye(3, dtype=np.float32)
    return (np.cos(a) * eye + np.sin(a) * K + (1 - np.cos(a)) * np.outer(u, u)).astype(np.float32)


def instance_colours(scene: Scene, style: Style, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) colour of every instance: its class's colour set indexed by its tone."""
    table, sizes = _table(style.name)
    cls = scene.inst_cls.astype(np.int64)
    cls = np.where(cls > 18, HOOD, cls)                          # (N,) 255 -> hood slot
    n = sizes[cls]
    pos = scene.inst_tone * n                                    # (N,)
    idx = np.minimum(pos.astype(np.int64), n - 1)
    col = table[cls, idx] * (0.85 + 0.3 * (pos % 1.0))[:, None]  # (N, 3) brightness jitter
    if style.hue_jitter > 0:
        rot = _hue_rotation(rng.normal(0, style.hue_jitter, 20))  # (20, 3, 3) per class
        col = np.einsum("nij,nj->ni", rot[cls], col)
    return col.astype(np.float32)


def _sky(H: int, W: int, horizon: float, style: Style, rng: np.random.Generator,
         s: float) -> np.ndarray:
    """(H, W, 3) sky: zenith-to-horizon gradient plus fractal clouds."""
    t = np.clip((np.arange(H, dtype=np.float32) + 0.5) / max(horizon * H, 1.0), 0, 1) ** 1.5
    zen, hor = np.array(style.sky[0], np.float32), np.array(style.sky[1], np.float32)
    sky = np.broadcast_to((zen * (1 - t[:, None]) + hor * t[:, None])[:, None, :], (H, W, 3))
    if style.clouds <= 0:
        return sky
    c = (fbm(rng, H, W, 40 * s, 3) + 1) / 2                     # (H, W) in ~[0, 1]
    cover = np.clip((c - (1 - style.clouds) * 0.7) * 3, 0, 1)[..., None]
    grey = 0.95 - 0.25 * np.clip(c - 0.5, 0, 1)[..., None]
    return sky * (1 - cover) + grey * cover


def render(scene: Scene, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Render ``scene`` in ``domain``: (H, W, 3) uint8 RGB."""
    style = get_style(domain)
    H, W = scene.label.shape
    s = H / 112.0                                  # pixel-size parameters are set at H=112
    col = instance_colours(scene, style, rng)      # (N, 3)
    img = col[scene.inst]                          # (H, W, 3)
    # parts: fixed colours, skin / clothes brightness varies per instance
    pm = scene.part > 0
    if pm.any():
        pcol = PARTS.copy()
        pcol[d.MARKING] = style.marking
        pcol[d.GLASS] = pcol[d.LIT_WINDOW] = 0.7 * PARTS[d.GLASS] + 0.3 * np.array(style.sky[1])
        pv = scene.part[pm]
        f = 0.55 + 0.8 * ((scene.inst_tone * 7.31) % 1.0)[scene.inst[pm]]   # (P,)
        f = np.where((pv == d.SKIN) | (pv == d.LOWER), f, 1.0)
        img[pm] = pcol[pv] * f[:, None]
    sky = scene.label == SKY
    rows = np.nonzero(sky.any(1))[0]
    if rows.size:  # only the rows that show sky
        r = int(rows[-1]) + 1
        img[:r][sky[:r]] = _sky(r, W, scene.horizon * H / r, style, rng, s)[sky[:r]]
    # texture: fine grain + mid blotches + coarse stains, amplitude per class
    cls = np.where(scene.label > 18, HOOD, scene.label)
    amp = style.tex[cls]                           # (H, W, 3)
    grain = (rng.random((H, W), dtype=np.float32) - 0.5) * np.float32(3.464)  # unit variance
    tex = (amp[..., 0] * grain
           + amp[..., 1] * value_noise(rng, H, W, style.tex_period[0] * s)
           + amp[..., 2] * fbm(rng, H, W, style.tex_period[1] * s, 2))
    shade = np.array(style.shade, np.float32)[scene.face] * (1 + tex)  # (H, W)
    ground = scene.face == d.GROUND
    if style.shadows > 0:  # building shadows (a ragged edge along the road) and tree blobs
        cam = scene.camera
        xn = (np.arange(W, dtype=np.float32) + 0.5 - W / 2) / (cam.f * H) - cam.yaw  # (W,)
        X = xn[None, :] * np.minimum(scene.depth, 500.0)      # (H, W) lateral metres
        zs = np.arange(0.0, 520.0, 6.0)
        edge = np.interp(scene.depth, zs, rng.uniform(-1, 5) + rng.uniform(-1.5, 1.5, zs.size))
        sh = (rng.choice((-1.0, 1.0)) * X > edge) | (fbm(rng, H, W, 9 * s, 2) > 0.45)
        shade = np.where(ground & sh, shade * np.float32(1 - style.shadows), shade)
    # aerial perspective: far things fade to the haze colour (the sky keeps its own colour)
    t = np.exp(-scene.depth / np.float32(style.haze))
    t[sky] = 1.0
    haze = np.array(style.haze_colour, np.float32)
    img *= (shade * t)[..., None]
    img += haze * (1 - t)[..., None]
    img = apply_weather(img, scene, style, rng, s)
    # colour grading: white balance x exposure, saturation, contrast, gamma
    wb = np.array(style.wb) * (1 + style.jitter * rng.normal(0, 0.5, 3))
    img *= (wb * style.exposure * (1 + style.jitter * rng.normal())).astype(np.float32)
    if style.saturation != 1.0:
        luma = (img @ LUMA)[..., None]
        img -= luma
        img *= np.float32(style.saturation)
        img += luma
    if style.contrast != 1.0:
        img -= np.float32(0.45)
        img *= np.float32(style.contrast)
        img += np.float32(0.45)
    np.clip(img, 0, 1, out=img)
    if style.gamma != 1.0:
        img = img ** np.float32(1 / style.gamma)
    img = apply_camera(img, style, rng, s)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
