"""Causal-Tune: Rein's tokens refine a band-passed frequency spectrum of every block's features.

Paper card
----------
*Causal-Tune: Mining Causal Factors from Vision Foundation Models for Domain Generalized Semantic
Segmentation* (Zhang et al., AAAI 2026; code github.com/zhangyin1996/Causal-Tune, built on Rein).
The text lost Eq. 3-10; they are rebuilt from the text and the official code. For the patch
features f_i after block i::

    F̂_i   = DCT(f_i)                                   (Eq. 3)
    F̂_c,i = F̂_i ⊙ H                                     (Eq. 4-5, H: band-pass; the rest is dropped)
    S_i   = Softmax(F̂_c,i T_iᵀ / √c)                   (Eq. 7)   T_i = A_i B_i   (Eq. 6, LoRA tokens)
    ΔF̂    = S_i[:, 1:] · MLP_t2f(T_i[1:])               (Eq. 8)
    F̂'    = MLP_Δ(ΔF̂ + F̂_c,i)                           (Eq. 9)
    f_i'  = f_i + s · iDCT(F̂')                          (Eq. 10; s: Rein's learnable scale, 1e-3)

Eq. 7-9 are exactly :meth:`Rein.token_update` applied to spectrum rows (one row = one coefficient
position, c channels), so Causal-Tune *is* a :class:`Rein` with another ``after_block``.

Two modes (presets; every switch is also an option that overrides the preset):

=========== ========== ========= ========= ======= ======== =================================
mode        layout     transform filter    detach  inverse  what it is
=========== ========== ========= ========= ======= ======== =================================
paper       spatial    dct       bandpass  False   exact    the paper's text: per-channel DCT
                                                            over the h×w token grid, Gaussian
                                                            band-pass 0.2/0.7, true iDCT
official    flat       dct       mad       True    official what the released code computes
=========== ========== ========= ========= ======= ======== =================================

Official-code quirks reproduced by ``mode=official`` (vectorised on the device, no scipy loop):

- ``layout=flat``: the (N,B,C)-ordered features are reshaped to (B,C,h,w) *without a permute*,
  so each h×w "image" is N consecutive values of that flattening. When N = C (DINOv2-L at 512²)
  that is one token's channel vector folded into 32×32; otherwise grids straddle tokens (and
  batch items). The official code folds the N tokens into √N×√N whenever the token *count* is a
  perfect square -- a 16×64 grid (N = 1024) is folded as 32×32, which gives another delta -- and
  raises otherwise (a 24×40 grid). We use the true h×w grid (identical on square grids, defined on
  every grid); ``official_fold=True`` reproduces the official folding (and its error) on any layout.
- ``detach=True``: the DCT input is detached (the code goes through numpy), no gradient reaches it.
- ``filter=mad``: MAD's piecewise mask, Chebyshev index radius, cutoffs 0.1/0.7 (not 0.2/0.7).
- ``inverse=official``: real(ifft2(·, ortho)) then clamp to [0, 255]: not an inverse DCT; the
  returned delta is ≥ 0 and gradients die where the pre-clamp value is negative.
- the residual is the *unfiltered* f_i (``residual=original``, also the paper-mode default;
  ``residual=filtered`` uses iDCT(F̂_c) instead, i.e. the non-causal part leaves the stream).
- ``radius`` is recorded as used: MAD always takes the Chebyshev index radius (``euclid`` applies to
  the Gaussian band-pass, ``lf`` and ``hf`` only).
- ``official_unused=True`` also creates the code's unused ``learnable_tokens2`` [L,m,c],
  ``mlp_token2feat2`` and ``mlp_delta_f2`` (no gradient ever), to count parameters its way.

Ablations (Tables 2-3): ``transform=dct|fft|hwt``, ``filter=none|lf|hf|bandpass|mad``, cutoffs
``low``/``high``, ``radius=euclid|chebyshev``. Rein options (``m``, ``r``, ``variant``, ``link``...)
pass through; the default is the official LoRAReins config (m=100, r=16, link on).
Spectral transforms run in float32 outside autocast. Taught in ``notebooks/40_causal_tune.ipynb``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import freq
from .rein import Rein

MODES: dict[str, dict[str, Any]] = {
    "paper": dict(layout="spatial", transform="dct", filter="bandpass", detach=False, inverse="exact"),
    "official": dict(layout="flat", transform="dct", filter="mad", detach=True, inverse="official"),
}
LAYOUTS = ("spatial", "flat")
INVERSES = ("exact", "official")
RESIDUALS = ("original", "filtered")


def official_grid(n: int) -> tuple[int, int]:
    """The official code's grid for N tokens: √N×√N, and an error when N is not a perfect square."""
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"official_fold: the official Causal-Tune folds the {n} tokens into a √N×√N grid and fails "
                         "when N is not a perfect square (e.g. a 24×40 token grid); use official_fold=False")
    return side, side


class CausalTune(Rein):
    """Causal-Tune as a :class:`Method` hook (see the module docstring for every option)."""

    name = "causal_tune"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {**Rein.option_ranges, "low": (0, None), "high": (0, None)}

    def __init__(self, mode: str = "paper", layout: str | None = None, transform: str | None = None,
                 filter: str | None = None, low: float | None = None, high: float | None = None,
                 radius: str = "euclid", detach: bool | None = None, inverse: str | None = None,
                 residual: str = "original", official_unused: bool = False, official_fold: bool = False,
                 **rein_options: Any):
        if mode not in MODES:
            raise ValueError(f"unknown Causal-Tune mode {mode!r}; choose one of: {', '.join(MODES)}")
        cfg = dict(MODES[mode])
        for key, val in dict(layout=layout, transform=transform, filter=filter, detach=detach,
                             inverse=inverse).items():
            if val is not None:
                cfg[key] = val
        cfg["detach"] = bool(cfg["detach"])
        if cfg["layout"] not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {cfg['layout']!r}")
        if cfg["inverse"] not in INVERSES:
            raise ValueError(f"inverse must be one of {INVERSES}, got {cfg['inverse']!r}")
        if residual not in RESIDUALS:
            raise ValueError(f"residual must be one of {RESIDUALS}, got {residual!r}")
        if residual == "filtered" and cfg["inverse"] != "exact":
            raise ValueError("residual=filtered needs inverse=exact (the official inverse is not an inverse)")
        low, high = freq.check_filter(cfg["filter"], cfg["transform"], low, high, radius)  # resolved cutoffs
        super().__init__(**rein_options)
        self.mode, self.layout, self.kind = mode, cfg["layout"], cfg["transform"]  # (self.transform is Rein's link Linear)
        self.filter, self.detach, self.inverse = cfg["filter"], cfg["detach"], cfg["inverse"]
        self.low, self.high, self.radius = low, high, radius
        self.residual, self.official_unused = residual, bool(official_unused)
        self.official_fold = bool(official_fold)
        used_radius = "chebyshev" if cfg["filter"] == "mad" else radius  # MAD ignores the radius option
        self.options.update(mode=mode, **cfg, low=low, high=high, radius=used_radius, residual=residual,
                            official_unused=self.official_unused, official_fold=self.official_fold)

    def _build(self, L: int, c: int, device, dtype) -> None:
        super()._build(L, c, device, dtype)
        if self.official_unused:  # created by the official LoRAReins, never used in forward
            dd = dict(device=device, dtype=dtype)
            self.learnable_tokens2 = nn.Parameter(torch.empty(L, self.m, c, **dd))
            v = math.sqrt(6.0 / float(3 * self.patch_size ** 2 + c))
            nn.init.uniform_(self.learnable_tokens2, -v, v)
            self.mlp_token2feat2 = nn.Linear(c, c, **dd)
            self.mlp_delta_f2 = nn.Linear(c, c, **dd)

    # ------------------------------------------------------------------ layouts
    def to_grids(self, f: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Patch tokens [B, N, c] -> the "images" the transform sees, [B, c, h, w]."""
        B, N, c = f.shape
        if self.layout == "spatial":
            return f.transpose(1, 2).reshape(B, c, h, w)  # channel c's h×w token map
        return f.transpose(0, 1).reshape(B, c, h, w)  # official: (N,B,c) order reshaped without permute

    def from_grids(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_grids`: [B, c, h, w] -> [B, N, c]."""
        B, c, h, w = x.shape
        if self.layout == "spatial":
            return x.reshape(B, c, h * w).transpose(1, 2)
        return x.reshape(h * w, B, c).transpose(0, 1)

    def to_rows(self, X: torch.Tensor) -> torch.Tensor:
        """Spectrum [P, B, c, h, w] -> rows [P·B, N, c] for the tokens (one row per coefficient)."""
        P, B, c, h, w = X.shape
        if self.layout == "spatial":
            return X.reshape(P * B, c, h * w).transpose(1, 2)
        return X.reshape(P, h * w, B, c).transpose(1, 2).reshape(P * B, h * w, c)

    def from_rows(self, R: torch.Tensor, P: int, h: int, w: int) -> torch.Tensor:
        """The inverse of :meth:`to_rows`: [P·B, N, c] -> [P, B, c, h, w]."""
        PB, N, c = R.shape
        B = PB // P
        if self.layout == "spatial":
            return R.transpose(1, 2).reshape(P, B, c, h, w)
        return R.reshape(P, B, N, c).transpose(1, 2).reshape(P, B, c, h, w)

    # ------------------------------------------------------------------ the method
    def mask(self, h: int, w: int, device) -> torch.Tensor:
        """Pass weights [h, w] of the configured filter (cached per grid and device)."""
        return freq.filter_mask(self.filter, h, w, self.kind, self.low, self.high, self.radius, device)

    def causal_spectrum(self, f: torch.Tensor, grid_hw) -> torch.Tensor:
        """F̂_c = T(f) ⊙ H as [P, B, c, h, w] (float32) for patch tokens ``f`` [B, N, c]."""
        h, w = int(grid_hw[0]), int(grid_hw[1])
        if h * w != f.shape[1]:
            raise ValueError(f"grid {h}x{w} does not match {f.shape[1]} patch tokens; pass the VFM's grid_hw")
        x = self.to_grids(f if f.dtype == torch.float64 else f.float(), h, w)  # fp32 (or fp64) spectra
        if self.detach:
            x = x.detach()
        return freq.spectrum(x, self.kind) * self.mask(h, w, f.device)

    def to_spatial(self, dX: torch.Tensor) -> torch.Tensor:
        """[P, B, c, h, w] -> [B, c, h, w] with the configured inverse."""
        if self.inverse == "exact":
            return freq.inverse(dX, self.kind)
        return freq.official_inverse(dX[0] if dX.shape[0] == 1 else torch.complex(dX[0], dX[1]))

    def refine(self, f: torch.Tensor, k: int, grid_hw=None) -> torch.Tensor:
        """f' = base + s·T⁻¹(MLP_Δ(ΔF̂ + F̂_c)) for patch tokens ``f`` [B, N, c] at layer slot ``k``."""
        if grid_hw is None:
            raise ValueError("Causal-Tune needs the token grid (h, w); call it through VFM.forward_features")
        if self.official_fold:
            grid_hw = official_grid(f.shape[1])
        with torch.autocast(device_type=f.device.type, enabled=False):
            Fc = self.causal_spectrum(f, grid_hw)  # [P, B, c, h, w]
        dF = self.token_update(self.to_rows(Fc).to(f.dtype), k)  # Eq. 7-9 on [P·B, N, c] rows
        with torch.autocast(device_type=f.device.type, enabled=False):
            delta = self.from_grids(self.to_spatial(self.from_rows(dF.to(Fc.dtype), *Fc.shape[:1], *Fc.shape[-2:])))
            base = f if self.residual == "original" else self.from_grids(freq.inverse(Fc, self.kind)).to(f.dtype)
        return base + self.scale.to(f.dtype) * delta.to(f.dtype)

    def after_block(self, i: int, tokens: torch.Tensor, grid_hw=None) -> torch.Tensor:
        k = self._slot.get(i)
        return tokens if k is None else self.refine(tokens, k, grid_hw)


__all__ = ["CausalTune", "MODES", "official_grid"]
