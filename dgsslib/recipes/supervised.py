"""The supervised recipe: one labelled batch, the head's own loss. Every DGSS paper's step
(Rein-G, the PEFT baselines, Causal-Tune) and the source-only stage of the UDA papers.

    L = L_head( head(F_θ(x_s)), y_s )         (Rein++ eq. 5 with Mask2Former; pixel CE for the light head)

Exactly the step ``fit`` ran before recipes existed (same forward, same loss, same generator),
so earlier results reproduce bit for bit on CPU. Taught in ``notebooks/01_frozen_vs_full.ipynb``.

``init_noise`` (default 0: off) is a stability probe, not a training choice: at step 0 every
trainable tensor is multiplied by (1 + ε·n), n ~ N(0, 1) from a fixed generator, ε = ``init_noise``
(1e-7 ≈ float32 rounding). Two runs that differ only by it show whether a schedule lands in the
same basin from float noise -- what another machine's arithmetic does to a run (notebook 11).
"""
from __future__ import annotations

import torch

from .base import Recipe


@torch.no_grad()
def perturb_trainable(model, eps: float, seed: int = 20260) -> int:
    """θ ← θ · (1 + ε·n) for every trainable parameter; returns the number of tensors touched."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = 0
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
            p.copy_((p.double() * (1.0 + eps * noise)).to(p.dtype))
            n += 1
    return n


class Supervised(Recipe):
    """x_s, y_s -> the head's loss."""

    name = "supervised"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"init_noise": (0, 1e-2)}
    streams = ("source",)

    def __init__(self, init_noise: float = 0.0):
        if not 0.0 <= float(init_noise) < 1e-2:
            raise ValueError(f"init_noise is a relative float-noise scale in [0, 1e-2), got {init_noise}")
        super().__init__(**({"init_noise": float(init_noise)} if init_noise else {}))
        self.init_noise = float(init_noise)

    def setup(self, model, cfg):
        if self.init_noise:  # a resumed run overwrites these weights from its checkpoint afterwards
            perturb_trainable(model, self.init_noise)

    def step(self, model, batches, step):
        src = batches["source"]
        out = self.forward(src["image"])
        return model.loss(out, src["label"], generator=self.generator)
