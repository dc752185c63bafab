"""DSU feature perturbation: FisherTune's simulated unseen-domain features x' (eq. 6).

Paper card
----------
*FisherTune: Fisher-Guided Robust Tuning of Vision Foundation Models for Domain Generalized
Segmentation* (CVPR 2025, arXiv 2503.17940) builds x' with the uncertainty modelling of *DSU*
(Li et al., *Uncertainty Modeling for Out-of-Distribution Generalization*, ICLR 2022, code
github.com/lixiaotong97/DSU). For patch tokens x ∈ R^{B×N×C} (cls/registers excluded)::

    μ = mean_N(x)               σ = sqrt(var_N(x) + eps)           (per sample, channel: B×1×C)
    Σ_μ = sqrt(Var_B(μ) + eps)  Σ_σ = sqrt(Var_B(σ) + eps)         (over the batch, per channel)
    β = μ + ε_μ⊙Σ_μ             γ = σ + ε_σ⊙Σ_σ                    ε ~ N(0, 1)·factor per (b, c)
    x' = γ⊙(x − μ)/σ + β                                           (eq. 6; the paper's α ≡ β, β ≡ γ)

Both variances are torch's default, *unbiased* (as DSU's ``x.var(dim=[2, 3])`` and
``mean.var(dim=0)``); the statistics are *not* detached. For B = 1 the batch variance is
undefined and Σ = sqrt(eps) is used (almost no perturbation); N = 1 raises ValueError.
Noise is drawn on the CPU from ``generator`` (ε_μ then ε_σ, each B×C, float32) and moved to the
tokens' device/dtype, so a seeded run gives the same x' on every device. Half-precision tokens are
processed in float32 and cast back.

Where it is inserted (FisherTune §3.3; the paper has no public code): after patch
+ position embedding (:meth:`DSU.before_blocks`, ``embed=True``) and optionally after chosen blocks
(:meth:`DSU.after_block`, ``blocks=(...)``, e.g. 5, 11, 17 mirroring DSU's per-stage insertion
in ResNet; only blocks in ``vfm.hook_layers`` are ever called). Prefix tokens stay untouched.

Why p = 1: DSU *trains* with the module on by a coin flip (p = 0.5) as augmentation. FisherTune
instead needs a second, perturbed pass x' next to the clean pass x to compare the two Fisher
maps F(x, y) and F(x', y), so the hook is always on (p = 1) for the x' pass and off (identity,
``active=False``) for the x pass, with the same labels y.

The weight e^{-(ε_μ+ε_σ)} of eq. 7/15 reads the ε as DSU's scalar noise factors (our reading):
:func:`domain_weight`. Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import torch
from torch import nn

Tensor = torch.Tensor


def token_statistics(x: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Patch tokens B×N×C -> (μ, σ), each B×1×C, over the N tokens; σ = sqrt(unbiased var + eps)."""
    if x.dim() != 3:
        raise ValueError(f"expected patch tokens B×N×C, got shape {tuple(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError(f"need at least 2 tokens for the (unbiased) token variance, got N={x.shape[1]}")
    mu = x.mean(dim=1, keepdim=True)  # B×1×C
    sigma = (x.var(dim=1, keepdim=True) + eps).sqrt()  # B×1×C, unbiased (torch default, as DSU)
    return mu, sigma


def _batch_uncertainty(s: Tensor, eps: float) -> Tensor:
    """B×1×C statistic -> Σ = sqrt(Var_B(s) + eps), 1×1×C (sqrt(eps) when B = 1)."""
    if s.shape[0] < 2:
        return torch.full_like(s[:1], math.sqrt(eps))
    return (s.var(dim=0, keepdim=True) + eps).sqrt()


def _draw(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normal noise drawn on the CPU, then moved to ``like``'s device/dtype."""
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"the noise generator must be a CPU torch.Generator, got {generator.device}")
    return torch.randn(shape, generator=generator).to(device=like.device, dtype=like.dtype)


def _dsu(x: Tensor, factor: float, eps: float, generator: torch.Generator | None):
    """Eq. 6 returning (x', μ, σ, β, γ); statistics B×1×C, computed in float32 for half inputs."""
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    mu, sigma = token_statistics(xf, eps)
    B, _, C = xf.shape
    eps_mu = _draw((B, C), generator, xf).unsqueeze(1) * factor  # B×C -> B×1×C
    eps_sigma = _draw((B, C), generator, xf).unsqueeze(1) * factor
    beta = mu + eps_mu * _batch_uncertainty(mu, eps)
    gamma = sigma + eps_sigma * _batch_uncertainty(sigma, eps)
    out = (xf - mu) / sigma * gamma + beta
    return out.to(x.dtype), mu, sigma, beta, gamma


def dsu(x: Tensor, factor: float = 1.0, eps: float = 1e-6, generator: torch.Generator | None = None) -> Tensor:
    """FisherTune eq. 6 / DSU on patch tokens B×N×C (see the module docstring); not detached."""
    if factor < 0:
        raise ValueError(f"factor must be >= 0, got {factor}")
    return _dsu(x, factor, eps, generator)[0]


def domain_weight(factor_mu: float = 1.0, factor_sigma: float = 1.0) -> float:
    """e^{-(ε_μ+ε_σ)} of FisherTune eq. 7/15 with the ε read as DSU's noise factors (e^{-2} by default)."""
    if factor_mu < 0 or factor_sigma < 0:
        raise ValueError(f"noise factors must be >= 0, got {factor_mu}, {factor_sigma}")
    return math.exp(-(factor_mu + factor_sigma))


class DSU(nn.Module):
    """DSU as a :meth:`VFM.forward_features` hook (no parameters); the identity unless ``active``.

    ``p``: probability to perturb, one coin per hook call (drawn from ``generator``); ``factor``:
    noise scale; ``embed``: perturb in ``before_blocks``; ``blocks``: block indices where
    ``after_block`` perturbs. ``active`` is independent of ``train()``/``eval()`` (FisherTune's x'
    pass may run in either); use :meth:`perturbing`. ``last`` holds the statistics of the latest
    perturbation (detached B×C: mu, sigma, mu_new, sigma_new); ``calls`` counts perturbations.
    """

    def __init__(self, p: float = 1.0, factor: float = 1.0, embed: bool = True,
                 blocks: Sequence[int] = (), eps: float = 1e-6):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if factor < 0:
            raise ValueError(f"factor must be >= 0, got {factor}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        blocks = tuple(blocks)
        bad = [b for b in blocks if isinstance(b, bool) or not isinstance(b, int) or b < 0]
        if bad:
            raise ValueError(f"blocks must be integer block indices >= 0, got {bad}")
        if not embed and not blocks:
            raise ValueError("DSU perturbs nowhere: set embed=True or give blocks")
        self.p, self.factor, self.embed, self.blocks, self.eps = float(p), float(factor), bool(embed), blocks, eps
        self.active = False
        self.generator: torch.Generator | None = None
        self.last: dict[str, Tensor] | None = None
        self.calls = 0

    def extra_repr(self) -> str:
        return f"p={self.p}, factor={self.factor}, embed={self.embed}, blocks={self.blocks}, active={self.active}"

    @contextlib.contextmanager
    def perturbing(self) -> Iterator["DSU"]:
        """Turn the hook on inside the block; the previous ``active`` comes back even on errors."""
        prev = self.active
        self.active = True
        try:
            yield self
        finally:
            self.active = prev

    def _maybe_perturb(self, tokens: Tensor) -> Tensor:
        if not self.active or self.p == 0.0:
            return tokens
        if self.p < 1.0 and torch.rand((), generator=self.generator).item() >= self.p:
            return tokens
        out, mu, sigma, beta, gamma = _dsu(tokens, self.factor, self.eps, self.generator)
        self.last = {k: v.detach().squeeze(1) for k, v in  # B×1×C -> B×C
                     dict(mu=mu, sigma=sigma, mu_new=beta, sigma_new=gamma).items()}
        self.calls += 1
        return out

    def before_blocks(self, tokens: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        """Patch tokens B×(h·w)×C after patch + position embedding."""
        return self._maybe_perturb(tokens) if self.embed else tokens

    def after_block(self, i: int, tokens: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        """Patch tokens B×(h·w)×C after block ``i``; perturbed only if ``i`` is in ``blocks``."""
        return self._maybe_perturb(tokens) if i in self.blocks else tokens
