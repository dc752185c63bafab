"""Random element selection at a budget: the "Random" baseline of FisherTune's Table 4.

Paper card: *FisherTune: Fisher-Guided Robust Tuning of Vision Foundation Models for Domain
Generalized Segmentation* (CVPR 2025), Table 4 compares Fisher-guided selection with choosing
the same number of backbone elements at random. Here:

    S ~ Uniform{ subsets of θ with |S| = round(δ · |θ|) },   θ = {W_qkv, W_proj, W_fc1, W_fc2} of every block
    g ← g ⊙ 1_S,   decoupled weight decay ⊙ 1_S                   (dgsslib.optim)

One global ranking over all candidate elements (a seeded random score per element), so the
budget is exact. The mask is fixed (it does not change with the step); the decode head always
trains. Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..adapters.base import Method

TARGETS = ("qkv", "proj", "fc1", "fc2")


def candidate_parameters(vfm, targets=TARGETS) -> dict[str, nn.Parameter]:
    """name -> weight matrix of the targeted linear layers of every block (biases excluded)."""
    out = {}
    for i, blk in enumerate(vfm.model.blocks):
        for name, mod in blk.named_modules():
            if isinstance(mod, nn.Linear) and name.split(".")[-1] in targets:
                out[f"blocks.{i}.{name}.weight"] = mod.weight
    if not out:
        raise ValueError(f"no linear layer named {targets} in the backbone's blocks")
    return out


def top_fraction_masks(scores: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """0/1 masks selecting the round(fraction·N) highest scores over all tensors together."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = int(round(fraction * flat.numel()))
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.topk(flat, k, sorted=False).indices] = True
    out, pos = {}, 0
    for name, s in scores.items():
        out[name] = keep[pos:pos + s.numel()].view_as(s).float()  # flat slice -> the tensor's shape
        pos += s.numel()
    return out


class RandomSelect(Method):
    """Train a random ``fraction`` of the Q/K/V/proj/FFN weight elements; everything else frozen."""

    name = "random_select"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"fraction": (0, 1), "seed": (0, None)}

    def __init__(self, fraction: float = 0.05, seed: int = 0, targets=TARGETS):
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        tg = tuple(targets.split(",")) if isinstance(targets, str) else tuple(targets)
        bad = [t for t in tg if t not in TARGETS]
        if bad:
            raise ValueError(f"targets must be a subset of {TARGETS}, got {bad}")
        super().__init__(fraction=float(fraction), seed=int(seed), targets=",".join(tg))
        self.fraction, self.seed, self.targets = float(fraction), int(seed), tg
        self._params: dict[str, nn.Parameter] = {}
        self._masks: dict[str, torch.Tensor] = {}

    def attach(self, vfm) -> "RandomSelect":
        super().attach(vfm)
        self._params = candidate_parameters(vfm, self.targets)
        g = torch.Generator().manual_seed(self.seed)
        scores = {n: torch.rand(p.shape, generator=g) for n, p in self._params.items()}
        self._masks = top_fraction_masks(scores, self.fraction)
        for p in self._params.values():
            p.requires_grad_(True)
        return self

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {f"backbone.{n}": p for n, p in self._params.items()}

    def num_trainable(self) -> int:
        """Selected elements (the papers count the budget, not the tensors that hold it)."""
        return int(sum(m.sum().item() for m in self._masks.values()))

    def selection_parameters(self) -> list[nn.Parameter]:
        return list(self._params.values())

    def grad_masks(self, step=None):
        return {self._params[n]: m for n, m in self._masks.items()}
