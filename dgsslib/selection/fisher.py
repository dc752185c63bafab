"""Fisher information of a VFM's weights: θ = {Q, K, V, FFN} of every block, the direct
estimators and FisherTune's domain-related Fisher (DR-FIM).

Paper card: *FisherTune: Fisher-Guided Robust Tuning of Vision Foundation Models for Domain
Generalized Segmentation* (Zhao et al., CVPR 2025, arXiv 2503.17940), §3.2, eq. 3, 5, 7, 9:

    θ = {θ_Q, θ_K, θ_V, θ_FFN} of every block                                          (eq. 3)
    F_θ(x)  = E[ (∂ log p(y|x,θ) / ∂θ)² ]        per element; labels y = ground truth     (eq. 5/9, empirical)
    F_θ(x′) = the same on features perturbed by DSU (x′, :mod:`dgsslib.selection.perturb`)
    DRF_θ   = F_θ(x) + e^{−(ε_μ+ε_σ)} · |F_θ(x) − F_θ(x′)| / (min(F_θ(x), F_θ(x′)) + ε)     (eq. 7)

Per element, ranked globally (our reading, stated in ``notebooks/20_fishertune.ipynb``): the
paper's 15.21M budget is 5.0 % of ViT-L's 304.2M elements, an element count. DINOv2's fused
``qkv`` weight is one tensor; its rows [0, C), [C, 2C), [2C, 3C) are Q, K and V (used to report
and to restrict a selection to some of them); FFN = every linear layer of the block's MLP
(fc1/fc2, EVA02's SwiGLU fc1_g/fc1_x/fc2). Biases, norms and the attention output projection
are not in θ (eq. 3 does not list them).

The direct estimator averages squared gradients over T2 batches: by default of each batch's mean
segmentation loss (``fisher_samples=batch``: Child-Tuning-D's form, one backward per batch), or of
each sample's loss (``fisher_samples=per_sample``: eq. 9's 1/N Σ_i g_i², the form FISH uses with
batch size 1; one forward, B backwards). The default stays ``batch`` for now: the committed mini
results were made with it, and whether the per-sample form changes the mini ranking is measured in
the FisherTune evidence rerun;
:mod:`dgsslib.selection.variational` is the paper's SGVB estimate of the same quantity.
``damping`` is eq. 7's ε (1e-8 in the paper); the variational estimate amounts to ε = γ/τ².
Term scales differ by orders of magnitude (F ~ 1e-8..1e-4, the ratio ~ O(1)), so ``combine``
offers ``scale="none"`` (the literal sum, this function's default) and ``"mean"`` (each term over its
global mean; :class:`~dgsslib.selection.fishertune.FisherTune`'s default, see its docstring).
"""
from __future__ import annotations

import math

import torch
from torch import nn

PARTS = ("q", "k", "v", "ffn")


def theta_tensors(vfm) -> dict[str, tuple[nn.Parameter, dict[str, slice | None]]]:
    """name (relative to ``vfm.model``) -> (weight, {part: rows or None = all}) for θ of every block.

    A fused ``qkv`` weight maps q/k/v to its row thirds; q_proj/k_proj/v_proj map to their part;
    every ``nn.Linear`` inside the block's ``mlp`` maps to "ffn"."""
    out = {}
    for i, blk in enumerate(vfm.model.blocks):
        for name, mod in blk.named_modules():
            if not isinstance(mod, nn.Linear):
                continue
            leaf, full = name.split(".")[-1], f"blocks.{i}.{name}.weight"
            if leaf == "qkv":
                c = mod.weight.shape[0] // 3
                out[full] = (mod.weight, {"q": slice(0, c), "k": slice(c, 2 * c), "v": slice(2 * c, 3 * c)})
            elif leaf in ("q_proj", "k_proj", "v_proj"):
                out[full] = (mod.weight, {leaf[0]: None})
            elif name.startswith("mlp."):
                out[full] = (mod.weight, {"ffn": None})
    if not out:
        raise ValueError("no Q/K/V/FFN linear layer found in the backbone's blocks")
    return out


def parse_parts(parts) -> tuple[str, ...]:
    """"q,k,v,ffn" / ["q", "ffn"] -> a validated tuple of parts."""
    tup = tuple(p.strip() for p in parts.split(",")) if isinstance(parts, str) else tuple(parts)
    bad = [p for p in tup if p not in PARTS]
    if bad or not tup:
        raise ValueError(f"targets must be a non-empty subset of {PARTS}, got {list(tup)}")
    return tup


def candidate_masks(theta: dict, parts) -> dict[str, torch.Tensor]:
    """name -> bool mask of the elements a selection may choose (the rows of the chosen parts)."""
    parts = parse_parts(parts)
    out = {}
    for name, (w, rows) in theta.items():
        m = torch.zeros(w.shape, dtype=torch.bool, device="cpu")  # CPU even under a meta default device
        for part, sl in rows.items():
            if part in parts:
                if sl is None:
                    m[:] = True
                else:
                    m[sl] = True
        if m.any():
            out[name] = m
    return out


class FisherAccumulator:
    """Running mean of squared gradients per element (the direct, empirical Fisher of eq. 5/9).

    ``clip``: per-tensor gradient-norm clip before squaring (Child-Tuning-D clips each tensor's
    gradient to ``max_grad_norm``); None = no clipping (FisherTune)."""

    def __init__(self, names: list[str], clip: float | None = None):
        self.names, self.clip = list(names), clip
        self.sum: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, grads: dict[str, torch.Tensor]) -> None:
        for n in self.names:
            g = grads[n].detach().float()
            if self.clip is not None:
                norm = g.norm()
                if norm > self.clip:
                    g = g * (self.clip / (norm + 1e-6))
            g2 = g.pow(2).cpu()
            self.sum[n] = self.sum[n] + g2 if n in self.sum else g2
        self.count += 1

    def mean(self) -> dict[str, torch.Tensor]:
        if not self.count:
            raise ValueError("no gradient was accumulated (T2 = 0?)")
        return {n: s / self.count for n, s in self.sum.items()}

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.{n}": s for n, s in self.sum.items()}
        out[f"{prefix}.__count__"] = torch.tensor(self.count)
        return out

    def load(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        key = f"{prefix}.__count__"
        self.count = int(tensors[key]) if key in tensors else 0
        self.sum = {n: tensors[f"{prefix}.{n}"].clone() for n in self.names if f"{prefix}.{n}" in tensors}


def combine(score: str, f_x: dict, f_xp: dict | None = None, weight: float = math.exp(-2.0),
            damping: float = 1e-8, scale: str = "none") -> dict[str, torch.Tensor]:
    """The selection score per element: ``fim`` = F(x); ``delta`` = the domain term
    e^{−(ε_μ+ε_σ)}·|F(x) − F(x′)| / (min + damping) alone; ``drfim`` = their sum (eq. 7/15)."""
    if score not in ("fim", "delta", "drfim"):
        raise ValueError(f"score must be fim, delta or drfim, got {score!r}")
    if scale not in ("none", "mean"):
        raise ValueError(f"scale must be none or mean, got {scale!r}")
    if score == "fim":
        return {n: f.clone() for n, f in f_x.items()}
    if f_xp is None:
        raise ValueError(f"score {score!r} needs F(x') from perturbed features")
    delta = {n: weight * (f_x[n] - f_xp[n]).abs() / (torch.minimum(f_x[n], f_xp[n]) + damping) for n in f_x}
    if score == "delta":
        return delta
    fx = f_x
    if scale == "mean":
        mf = torch.cat([v.flatten() for v in f_x.values()]).mean().clamp_min(1e-30)
        md = torch.cat([v.flatten() for v in delta.values()]).mean().clamp_min(1e-30)
        fx = {n: v / mf for n, v in f_x.items()}
        delta = {n: v / md for n, v in delta.items()}
    return {n: fx[n] + delta[n] for n in f_x}


def part_summary(scores: dict[str, torch.Tensor], theta: dict, depth: int) -> torch.Tensor:
    """depth × 4 (Q, K, V, FFN) mean of a per-element score (of 0/1 masks: the share selected) --
    the sensitivity heat map of the paper's Fig. 6."""
    total = torch.zeros(depth, len(PARTS))
    count = torch.zeros(depth, len(PARTS))
    for name, s in scores.items():
        blk = int(name.split(".")[1])
        for part, rows in theta[name][1].items():
            v = s if rows is None else s[rows]
            j = PARTS.index(part)
            total[blk, j] += v.float().sum().item()
            count[blk, j] += v.numel()
    return total / count.clamp_min(1)


__all__ = ["PARTS", "FisherAccumulator", "candidate_masks", "combine", "parse_parts", "part_summary", "theta_tensors"]
