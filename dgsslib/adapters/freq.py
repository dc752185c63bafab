"""Frequency transforms and spectral filters for feature maps (Causal-Tune's building blocks).

Paper card
----------
*Causal-Tune: Mining Causal Factors from Vision Foundation Models for Domain Generalized Semantic
Segmentation* (AAAI 2026; code github.com/zhangyin1996/Causal-Tune), Eq. 3-5: a feature map x
(h×w per channel) goes to the frequency domain, a band-pass mask keeps the "causal" band, the
extreme low and high frequencies ("non-causal") are dropped. Taught in ``notebooks/40_causal_tune.ipynb``.

Transforms (all orthonormal, differentiable, on the tensor's device; x: [..., h, w])::

    dct : X = D_h x D_wᵀ,  D[k, i] = a_k cos(π(2i+1)k / 2n),  a_0 = √(1/n), a_k = √(2/n)   (DCT-II)
          x = D_hᵀ X D_w   (the exact inverse, DCT-III)
    hwt : X = H_h x H_wᵀ with H the full-depth orthonormal Haar matrix (rows: the scaling row,
          then wavelets coarse -> fine, so index u grows with frequency like the DCT's); odd
          lengths carry the unpaired sample to the next level (still orthonormal).
    fft : X = fft2(x, norm="ortho") returned as its real and imaginary parts ([2, ...]);
          the inverse is real(ifft2(Re + i·Im)).

``spectrum(x, kind)`` returns [P, *x.shape] (P = 1 for dct/hwt, 2 for fft); ``inverse``
undoes it. The basis matrices are cached per (n, device, dtype) in a module-level cache:
they are never buffers, so they never enter a ``state_dict`` or a checkpoint.

Filters (pass weights in [0, 1] on the h×w coefficient grid, DC at [0, 0])::

    ν_u = u/h (dct, hwt) or 2·min(u, h−u)/h (fft)        normalised frequency, 1 = Nyquist
    ρ   = √((ν_u² + ν_v²)/2)  ("euclid", default)  or  max(ν_u, ν_v)  ("chebyshev")
    bandpass : (1 − exp(−ρ²/2σ_L²)) · exp(−ρ²/2σ_H²),   σ_L = 0.2, σ_H = 0.7 (paper's cutoffs)
    lf       : 1 − exp(−ρ²/2σ_L²)   (only the low frequencies removed: Table 3 row "LF")
    hf       : exp(−ρ²/2σ_H²)       (only the high frequencies removed: row "HF")
    none     : 1
    mad      : the official code's piecewise mask (from MAD's SCG.py), Chebyshev *index* radius
               m = max(u, v), v1 = ⌊0.1·min(h,w)⌋, v2 = ⌊0.7·min(h,w)⌋, v3 = min(h,w):
               non-causal M = 1 − 0.95·m/v1 (m ≤ v1), 0.01 (≤ v2), 0.3·(m−v2)/(v3−v2) (≤ v3), 0.5;
               pass = 1 − M  (DC fully removed, high band only attenuated to ~0.73).

The paper's Eq. 4 (a Gaussian band-pass with cutoffs D_L = 0.2, D_H = 0.7) was lost in the text
extraction; the product of a Gaussian high-pass at D_L and a Gaussian low-pass at D_H is our
reading (its two factors are exactly the LF-only / HF-only ablation rows).
"""
from __future__ import annotations

import functools
import math

import torch

TRANSFORMS = ("dct", "fft", "hwt")
FILTERS = ("bandpass", "lf", "hf", "none", "mad")
RADII = ("euclid", "chebyshev")
DEFAULT_CUTOFFS = {"bandpass": (0.2, 0.7), "lf": (0.2, 0.7), "hf": (0.2, 0.7), "none": (0.2, 0.7),
                   "mad": (0.1, 0.7)}


# ----------------------------------------------------------------------------- bases
def _dct_matrix64(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64, device="cpu")[:, None]
    i = torch.arange(n, dtype=torch.float64, device="cpu")[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d  # [n, n], rows = frequencies


def _haar_matrix64(n: int) -> torch.Tensor:
    if n == 1:
        return torch.ones(1, 1, dtype=torch.float64, device="cpu")
    lo, hi = (n + 1) // 2, n // 2  # an odd length carries its last sample into the low half
    step = torch.zeros(n, n, dtype=torch.float64, device="cpu")
    s = 1.0 / math.sqrt(2.0)
    for j in range(hi):
        step[j, 2 * j] = step[j, 2 * j + 1] = s  # averages
        step[lo + j, 2 * j], step[lo + j, 2 * j + 1] = -s, s  # differences
    if n % 2:
        step[lo - 1, n - 1] = 1.0
    rec = torch.eye(n, dtype=torch.float64, device="cpu")
    rec[:lo, :lo] = _haar_matrix64(lo)  # recurse on the low half: coarse -> fine ordering
    return rec @ step


@functools.lru_cache(maxsize=64)
def basis(kind: str, n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The orthonormal [n, n] analysis matrix of ``kind`` ("dct" | "hwt"), cached (never a buffer)."""
    if kind == "dct":
        m = _dct_matrix64(int(n))
    elif kind == "hwt":
        m = _haar_matrix64(int(n))
    else:
        raise ValueError(f"basis kind must be 'dct' or 'hwt' (fft uses torch.fft), got {kind!r}")
    return m.to(device=device, dtype=dtype)


def _check(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform {kind!r}; choose one of: {', '.join(TRANSFORMS)}")


def spectrum(x: torch.Tensor, kind: str = "dct") -> torch.Tensor:
    """x [..., h, w] -> coefficients [P, ..., h, w] (P = 2 for fft: real, imaginary)."""
    _check(kind)
    h, w = x.shape[-2:]
    if kind == "fft":
        z = torch.fft.fft2(x, norm="ortho")
        return torch.stack([z.real, z.imag])
    bh, bw = basis(kind, h, x.device, x.dtype), basis(kind, w, x.device, x.dtype)
    return (bh @ x @ bw.T).unsqueeze(0)


def inverse(X: torch.Tensor, kind: str = "dct") -> torch.Tensor:
    """The exact inverse of :func:`spectrum`: [P, ..., h, w] -> [..., h, w]."""
    _check(kind)
    if X.shape[0] != (2 if kind == "fft" else 1):
        raise ValueError(f"{kind} coefficients need a leading part dim of {2 if kind == 'fft' else 1}, got {tuple(X.shape)}")
    if kind == "fft":
        return torch.fft.ifft2(torch.complex(X[0], X[1]), norm="ortho").real
    h, w = X.shape[-2:]
    bh, bw = basis(kind, h, X.device, X.dtype), basis(kind, w, X.device, X.dtype)
    return bh.T @ X[0] @ bw


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dims."""
    return spectrum(x, "dct")[0]


def idct2(X: torch.Tensor) -> torch.Tensor:
    """The exact inverse of :func:`dct2` (orthonormal 2-D DCT-III)."""
    return inverse(X.unsqueeze(0), "dct")


def official_inverse(X: torch.Tensor) -> torch.Tensor:
    """The official code's "iDCT": real(ifft2(X, ortho)) clamped to [0, 255] (not an inverse DCT)."""
    if not X.is_complex():  # the official code casts the real DCT-domain tensor to complex64
        X = X.to(torch.complex128 if X.dtype == torch.float64 else torch.complex64)
    return torch.fft.ifft2(X, norm="ortho").real.clamp(0, 255)


# ----------------------------------------------------------------------------- filters
def frequencies(n: int, kind: str = "dct") -> torch.Tensor:
    """Normalised frequency of each coefficient index along one axis, in [0, 1] (1 = Nyquist)."""
    _check(kind)
    u = torch.arange(n, dtype=torch.float64, device="cpu")
    if kind == "fft":
        return 2.0 * torch.minimum(u, n - u) / n
    return u / n


def radius(h: int, w: int, kind: str = "dct", metric: str = "euclid") -> torch.Tensor:
    """ρ [h, w] in [0, 1]: normalised radial frequency of every coefficient."""
    if metric not in RADII:
        raise ValueError(f"unknown radius {metric!r}; choose one of: {', '.join(RADII)}")
    nu, nv = frequencies(h, kind)[:, None], frequencies(w, kind)[None, :]
    if metric == "chebyshev":
        return torch.maximum(nu, nv)
    return torch.sqrt((nu ** 2 + nv ** 2) / 2.0)


def gaussian_lowpass(rho: torch.Tensor, cutoff: float) -> torch.Tensor:
    return torch.exp(-rho ** 2 / (2.0 * cutoff ** 2))


def gaussian_highpass(rho: torch.Tensor, cutoff: float) -> torch.Tensor:
    return 1.0 - gaussian_lowpass(rho, cutoff)


def gaussian_bandpass(rho: torch.Tensor, low: float = 0.2, high: float = 0.7) -> torch.Tensor:
    """(1 − e^{−ρ²/2σ_L²}) · e^{−ρ²/2σ_H²}: 0 at DC, peaks between the cutoffs, decays beyond."""
    return gaussian_highpass(rho, low) * gaussian_lowpass(rho, high)


def mad_mask(h: int, w: int, low: float = 0.1, high: float = 0.7) -> torch.Tensor:
    """The official code's *non-causal* weight M [h, w] (pass weight = 1 − M)."""
    cpu64 = dict(dtype=torch.float64, device="cpu")
    m = torch.maximum(torch.arange(h, **cpu64)[:, None], torch.arange(w, **cpu64)[None, :])  # Chebyshev index radius
    v1, v2, v3 = int(min(h, w) * low), int(min(h, w) * high), min(h, w)
    out = torch.full((h, w), 0.5, **cpu64)
    out = torch.where(m <= v3, (m - v2) / max(v3 - v2, 1) * 0.3, out)
    out = torch.where(m <= v2, torch.full_like(m, 0.01), out)
    out = torch.where(m <= v1, 1.0 - m / (v1 + 1e-10) * 0.95, out)
    return out


@functools.lru_cache(maxsize=128)
def _mask64(name: str, h: int, w: int, kind: str, low: float, high: float, metric: str) -> torch.Tensor:
    if name == "mad":
        return 1.0 - mad_mask(h, w, low, high)
    rho = radius(h, w, kind, metric)
    if name == "bandpass":
        return gaussian_bandpass(rho, low, high)
    if name == "lf":
        return gaussian_highpass(rho, low)
    if name == "hf":
        return gaussian_lowpass(rho, high)
    return torch.ones(h, w, dtype=torch.float64, device="cpu")


def check_filter(name: str, kind: str = "dct", low: float | None = None, high: float | None = None,
                 metric: str = "euclid") -> tuple[float, float]:
    """Validate a filter spec (no tensors made) and return its resolved (low, high) cutoffs."""
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of: {', '.join(FILTERS)}")
    _check(kind)
    d_low, d_high = DEFAULT_CUTOFFS[name]
    low, high = float(d_low if low is None else low), float(d_high if high is None else high)
    if not 0.0 < low < high:
        raise ValueError(f"cutoffs must satisfy 0 < low < high, got low={low}, high={high}")
    if metric not in RADII:
        raise ValueError(f"unknown radius {metric!r}; choose one of: {', '.join(RADII)}")
    return low, high


def filter_mask(name: str, h: int, w: int, kind: str = "dct", low: float | None = None,
                high: float | None = None, metric: str = "euclid", device=None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pass weights [h, w] of filter ``name`` for a ``kind`` coefficient grid (cached)."""
    low, high = check_filter(name, kind, low, high, metric)
    return _cached_on(name, int(h), int(w), kind, low, high, metric, torch.device(device or "cpu"), dtype)


@functools.lru_cache(maxsize=256)
def _cached_on(name, h, w, kind, low, high, metric, device, dtype) -> torch.Tensor:
    return _mask64(name, h, w, kind, low, high, metric).to(device=device, dtype=dtype)


__all__ = ["TRANSFORMS", "FILTERS", "RADII", "DEFAULT_CUTOFFS", "basis", "spectrum", "inverse", "dct2", "idct2",
           "official_inverse", "frequencies", "radius", "gaussian_lowpass", "gaussian_highpass",
           "gaussian_bandpass", "mad_mask", "check_filter", "filter_mask"]
