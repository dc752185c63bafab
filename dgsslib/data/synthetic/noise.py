"""Small numpy image toolbox: value noise, fractal noise and separable blurs.

Value noise is a coarse grid of random numbers bilinearly upsampled to the image size; a
sum of octaves gives fractal (fBm) noise used for textures, clouds, stains, fog and snow
cover. The interpolation weights only depend on (size, period), so they are cached. The
blurs are separable convolutions written as a few shifted adds of an edge-padded array,
which is fast for the small kernels used here. Shared by the renderer and by the
Cityscapes-C corruptions.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=256)
def _interp(n: int, period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Lower grid index, upper grid index and smooth weight for ``n`` pixels; grid size."""
    t = (np.arange(n, dtype=np.float32) + 0.5) / period
    i0 = np.floor(t).astype(np.int64)
    w = t - i0
    w = w * w * (3 - 2 * w)  # smoothstep: no grid-line artefacts
    return i0, i0 + 1, w.astype(np.float32), int(i0[-1]) + 2


def value_noise(rng: np.random.Generator, H: int, W: int, period: float) -> np.ndarray:
    """(H, W) float32 noise in [-1, 1] with features about ``period`` pixels wide."""
    period = max(float(period), 1.0)
    r0, r1, wr, gh = _interp(H, period)
    c0, c1, wc, gw = _interp(W, period)
    g = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)        # (gh, gw) grid
    top = g[r0][:, c0] * (1 - wc) + g[r0][:, c1] * wc            # (H, W)
    bot = g[r1][:, c0] * (1 - wc) + g[r1][:, c1] * wc            # (H, W)
    return top * (1 - wr)[:, None] + bot * wr[:, None]


def fbm(rng: np.random.Generator, H: int, W: int, period: float, octaves: int = 3,
        gain: float = 0.5) -> np.ndarray:
    """Fractal noise: octaves of value noise, halving the period; roughly in [-1, 1]."""
    out = np.zeros((H, W), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        out += amp * value_noise(rng, H, W, period)
        total += amp
        amp *= gain
        period = max(period / 2, 1.0)
    return out / total


def _kernel1d(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def conv1d(img: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Convolve along ``axis`` (0 = rows, 1 = columns) with edge padding."""
    r = len(k) // 2
    pad = [(0, 0)] * img.ndim
    pad[axis] = (r, r)
    p = np.pad(img, pad, mode="edge")
    n = img.shape[axis]
    out = np.zeros(img.shape, np.float32)
    for i, w in enumerate(k):
        out += w * (p[i:i + n] if axis == 0 else p[:, i:i + n])
    return out


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, C) float image; ``sigma`` in pixels."""
    if sigma <= 0.05:
        return img.astype(np.float32, copy=False)
    k = _kernel1d(sigma)
    return conv1d(conv1d(img.astype(np.float32, copy=False), k, 0), k, 1)


def box_blur(img: np.ndarray, rx: int, ry: int) -> np.ndarray:
    """Mean over a (2*ry+1) x (2*rx+1) window (cumulative sums), edge padded."""
    out = img.astype(np.float32, copy=False)
    for axis, r in ((0, ry), (1, rx)):
        if r <= 0:
            continue
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = out.shape[axis]
        hi = c[2 * r + 1:2 * r + 1 + n] if axis == 0 else c[:, 2 * r + 1:2 * r + 1 + n]
        lo = c[:n] if axis == 0 else c[:, :n]
        out = ((hi - lo) / (2 * r + 1)).astype(np.float32)
    return out


def smear(img: np.ndarray, dx: float, dy: float, length: int) -> np.ndarray:
    """Average ``length`` copies shifted along (dx, dy) per step (a line / motion kernel)."""
    H, W = img.shape[:2]
    out = np.zeros(img.shape, np.float32)
    pad = int(np.ceil(max(abs(dx), abs(dy)) * length)) + 1
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (img.ndim - 2)
    p = np.pad(img.astype(np.float32, copy=False), widths, mode="edge")
    for k in range(length):
        oy, ox = pad + int(round(k * dy)), pad + int(round(k * dx))
        out += p[oy:oy + H, ox:ox + W]
    return out / max(length, 1)
