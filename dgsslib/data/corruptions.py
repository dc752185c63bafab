"""Cityscapes-C style image corruptions: 16 types x 5 severities, numpy (+ torch conv).

Re-implementations of the ImageNet-C recipes (Hendrycks & Dietterich, 2019) as used by
Cityscapes-C (Kamann & Rother): the severity parameters follow the published tables; the
spatial ones (blur radii, displacements, noise feature sizes) are given for a 224-px image
and scaled by ``min(H, W) / 224`` so they mean the same thing at every resolution. Where
ImageNet-C needs external data or libraries, an approximation is used: JPEG is real 8x8 DCT
quantisation with the standard tables and 4:2:0 chroma (no entropy coding), frost is a
procedural ice texture instead of frost photographs, motion blur is a one-sided Gaussian
line kernel, glass blur uses one vectorised random local pixel shuffle.

``corrupt(image, name, severity, seed)`` is deterministic for a given seed.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.random import Generator

from .synthetic.noise import blur, fbm, smear

NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
BLUR = ("defocus_blur", "glass_blur", "motion_blur", "gaussian_blur")
WEATHER = ("snow", "frost", "fog", "spatter")
DIGITAL = ("brightness", "contrast", "saturate", "jpeg_compression")
CORRUPTIONS = NOISE + BLUR + WEATHER + DIGITAL
SEVERITIES = (1, 2, 3, 4, 5)


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Convolve each channel of (H, W, 3) ``x`` with the 2-D kernel ``k`` (edge padded)."""
    kh, kw = k.shape
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]  # (1, 3, H, W)
    t = F.pad(t, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode="replicate")
    w = torch.from_numpy(k.astype(np.float32))[None, None].repeat(3, 1, 1, 1)  # (3, 1, kh, kw)
    return F.conv2d(t, w, groups=3)[0].numpy().transpose(1, 2, 0)


# -- noise -------------------------------------------------------------------------------
def gaussian_noise(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[sev - 1]
    return x + rng.normal(0, c, x.shape)


def shot_noise(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (60, 25, 12, 5, 3)[sev - 1]
    return rng.poisson(np.clip(x, 0, 1) * c) / c


def impulse_noise(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[sev - 1]
    u = rng.random(x.shape)
    return np.where(u < c / 2, 0.0, np.where(u < c, 1.0, x))


def speckle_noise(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (0.15, 0.2, 0.35, 0.45, 0.6)[sev - 1]
    return x + x * rng.normal(0, c, x.shape)


# -- blur --------------------------------------------------------------------------------
def gaussian_blur(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    return blur(x, (1, 2, 3, 4, 6)[sev - 1] * sc)


def defocus_blur(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[sev - 1]
    r = max(radius * sc, 1.0)
    n = int(np.ceil(r))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    disk = (xx ** 2 + yy ** 2 <= r ** 2).astype(np.float32)
    disk = blur(disk, alias * max(sc, 0.5))
    return _conv(x, disk / disk.sum())


def motion_blur(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[sev - 1]
    r, s = max(radius * sc, 1.0), max(sigma * sc, 0.5)
    angle = np.deg2rad(rng.uniform(-45, 45))
    n = int(np.ceil(r))
    k = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
    for t in np.linspace(0, r, 4 * n + 1):          # splat a one-sided Gaussian line
        px, py = n + t * np.cos(angle), n + t * np.sin(angle)
        x0, y0 = int(np.floor(px)), int(np.floor(py))
        fx, fy, w = px - x0, py - y0, np.exp(-0.5 * (t / s) ** 2)
        for dy, dx, ww in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                           (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= y0 + dy <= 2 * n and 0 <= x0 + dx <= 2 * n:
                k[y0 + dy, x0 + dx] += w * ww
    return _conv(x, k / k.sum())


def glass_blur(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    sigma, delta, iters = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[sev - 1]
    H, W = x.shape[:2]
    # ImageNet-C swaps each pixel with a neighbour up to ``delta`` away, ``iters`` times;
    # one vectorised random displacement of the same spread (random walk: sqrt(iters)).
    d = 0.7 * delta * np.sqrt(iters) * sc + 0.5
    x = blur(x, sigma * sc)
    rows, cols = np.arange(H)[:, None], np.arange(W)[None, :]
    dy = np.rint(rng.uniform(-d, d, (H, W))).astype(np.int64)
    dx = np.rint(rng.uniform(-d, d, (H, W))).astype(np.int64)
    x = x[np.clip(rows + dy, 0, H - 1), np.clip(cols + dx, 0, W - 1)]
    return blur(x, sigma * sc)


# -- weather -----------------------------------------------------------------------------
def _plasma(rng: Generator, H: int, W: int, sc: float, decay: float) -> np.ndarray:
    """Fractal cloud field in [0, 1]; larger ``decay`` = smoother (like wibbledecay)."""
    f = fbm(rng, H, W, 128 * sc, octaves=6, gain=1.0 / decay)
    return (f - f.min()) / max(float(f.max() - f.min()), 1e-6)


def fog(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c0, c1 = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[sev - 1]
    m = x.max()
    x = x + c0 * _plasma(rng, *x.shape[:2], sc, c1)[..., None]
    return x * m / (m + c0)


def _grey(x: np.ndarray) -> np.ndarray:
    return (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def snow(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    loc, scale, zoom, thr, rad, sig, mix = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[sev - 1]
    H, W = x.shape[:2]
    f = zoom * max(sc, 0.5)                          # flakes of ~zoom px at 224 px
    h, w = int(np.ceil(H / f)) + 1, int(np.ceil(W / f)) + 1
    layer = rng.normal(loc, scale, (h, w)).astype(np.float32)
    ri = np.minimum((np.arange(H) / f).astype(int), h - 1)
    ci = np.minimum((np.arange(W) / f).astype(int), w - 1)
    layer = layer[ri][:, ci]                          # (H, W) zoomed
    layer[layer < thr] = 0
    angle = np.deg2rad(rng.uniform(-135, -45))
    n = max(2, int(round(min(2 * sig, rad) * sc)))  # streak length ~ the motion kernel
    layer = blur(smear(layer, np.cos(angle), np.sin(angle), n), 0.5 * max(sc, 0.5))
    layer = layer[..., None]
    x = mix * x + (1 - mix) * np.maximum(x, _grey(x) * 1.5 + 0.5)
    return x + layer + layer[::-1, ::-1]


def _frost_texture(rng: Generator, H: int, W: int, sc: float) -> np.ndarray:
    """Procedural ice on glass: cloudy fractal base plus needle-like crystals, bluish."""
    base = (fbm(rng, H, W, 48 * sc, 4) + 1) / 2                   # (H, W) in ~[0, 1]
    needles = np.zeros((H, W), np.float32)
    for _ in range(4):
        seeds = (rng.random((H, W)) < 0.01).astype(np.float32)
        a = rng.uniform(0, np.pi)
        needles += smear(seeds, np.cos(a), np.sin(a), max(3, int(12 * sc)))
    needles = np.clip(needles * 4, 0, 1) * (base > 0.45)
    ice = np.clip(0.45 + 0.45 * base + 0.4 * needles, 0, 1)
    return ice[..., None] * np.array([0.86, 0.93, 1.0], np.float32)


def frost(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c0, c1 = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[sev - 1]
    return c0 * x + c1 * _frost_texture(rng, *x.shape[:2], sc)


def spatter(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    loc, scale, sigma, thr, inten, mud = (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))[sev - 1]
    H, W = x.shape[:2]
    z = blur(rng.normal(0, 1, (H, W)).astype(np.float32), max(sigma * sc, 0.5))
    std = scale / (2 * np.sqrt(np.pi) * sigma)      # std of the blurred layer at 224 px
    layer = loc + std * z / max(float(z.std()), 1e-6)
    if not mud:  # clear water: soft-edged drops, blurry, brighter, cyan tint
        m = np.clip((layer - thr) / (0.5 * std) + 0.5, 0, 1)
        m = blur(m, 0.5 * max(sc, 0.5))[..., None]
        water = 0.6 * blur(x, 2 * max(sc, 0.5)) + 0.4 * np.array([0.69, 0.93, 0.93], np.float32)
        return x * (1 - m * inten) + water * m * inten
    m = blur((layer > thr).astype(np.float32), inten * max(sc, 0.5) * 2)  # mud splashes
    m = np.where(m >= 0.6, m, 0.0)[..., None]
    mud_col = np.array([63, 42, 20], np.float32) / 255
    return x * (1 - m) + mud_col * m


# -- digital -----------------------------------------------------------------------------
def brightness(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[sev - 1]
    v = x.max(-1, keepdims=True)                      # HSV value; hue, saturation kept
    vn = np.minimum(v + c, 1.0)
    return np.where(v > 1e-6, x * vn / np.maximum(v, 1e-6), vn)


def contrast(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[sev - 1]
    m = x.mean(axis=(0, 1), keepdims=True)
    return (x - m) * c + m


def saturate(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    c0, c1 = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))[sev - 1]
    v = x.max(-1, keepdims=True)
    s = (v - x.min(-1, keepdims=True)) / np.maximum(v, 1e-6)       # HSV saturation
    sn = np.clip(s * c0 + c1, 0, 1)
    ratio = np.where(s > 1e-6, sn / np.maximum(s, 1e-6), 0.0)       # grey stays grey
    return v - (v - x) * ratio


_QY = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24,
                40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103,
                77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72,
                92, 95, 98, 112, 100, 103, 99], np.float32).reshape(8, 8)
_QC = np.full((8, 8), 99, np.float32)
_QC[:4, :4] = np.array([17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99]
                       ).reshape(4, 4)
_D = np.array([[np.sqrt((1 if k == 0 else 2) / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
                for n in range(8)] for k in range(8)], np.float32)  # (8, 8) DCT-II matrix


def _jpeg_plane(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantise an (H, W) plane (H, W multiples of 8, values 0..255) in 8x8 DCT blocks."""
    H, W = p.shape
    b = (p - 128).reshape(H // 8, 8, W // 8, 8).transpose(0, 2, 1, 3)  # (h, w, 8, 8) blocks
    coef = _D @ b @ _D.T
    coef = np.round(coef / q) * q
    b = _D.T @ coef @ _D
    return b.transpose(0, 2, 1, 3).reshape(H, W) + 128


def jpeg_compression(x: np.ndarray, sev: int, rng: Generator, sc: float) -> np.ndarray:
    quality = (25, 18, 15, 10, 7)[sev - 1]
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    qy = np.clip(np.floor((_QY * scale + 50) / 100), 1, 255)
    qc = np.clip(np.floor((_QC * scale + 50) / 100), 1, 255)
    H, W = x.shape[:2]
    Hp, Wp = -(-H // 16) * 16, -(-W // 16) * 16
    rgb = np.pad(np.clip(x, 0, 1) * 255, ((0, Hp - H), (0, Wp - W), (0, 0)), mode="edge")
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                 np.float32)
    ycc = rgb @ m.T + np.array([0, 128, 128], np.float32)           # (Hp, Wp, 3)
    y = _jpeg_plane(ycc[..., 0], qy)
    chans = [y]
    for i in (1, 2):                                                 # 4:2:0 chroma
        c = ycc[..., i].reshape(Hp // 2, 2, Wp // 2, 2).mean(axis=(1, 3))
        cq = -(-c.shape[0] // 8) * 8, -(-c.shape[1] // 8) * 8
        c = np.pad(c, ((0, cq[0] - c.shape[0]), (0, cq[1] - c.shape[1])), mode="edge")
        c = _jpeg_plane(c, qc)[:Hp // 2, :Wp // 2]
        chans.append(np.repeat(np.repeat(c, 2, 0), 2, 1))
    ycc = np.stack(chans, -1) - np.array([0, 128, 128], np.float32)
    out = ycc @ np.linalg.inv(m).T.astype(np.float32)
    return out[:H, :W] / 255


_FUNCS = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to an (H, W, 3) uint8 image."""
    if name not in _FUNCS:
        raise ValueError(f"unknown corruption {name!r}; expected one of {CORRUPTIONS}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {image.dtype} "
                         f"{image.shape}")
    # the same random field at every severity: only the strength changes
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF,
                                                        CORRUPTIONS.index(name)]))
    sc = min(image.shape[:2]) / 224.0
    x = image.astype(np.float32) / 255
    out = _FUNCS[name](x, int(severity), rng, sc)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


__all__ = ["CORRUPTIONS", "SEVERITIES", "NOISE", "BLUR", "WEATHER", "DIGITAL", "corrupt"]
