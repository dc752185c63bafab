"""The supervised recipe: one labelled batch, the head's own loss. Every DGSS paper's step
(Rein-G, the PEFT baselines, Causal-Tune) and the source-only stage of the UDA papers.

    L = L_head( head(F_θ(x_s)), y_s )         (Rein++ eq. 5 with Mask2Former; pixel CE for the light head)

Exactly the step ``fit`` ran before recipes existed (same forward, same loss, same generator),
so earlier results reproduce bit for bit on CPU. Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

from .base import Recipe


class Supervised(Recipe):
    """x_s, y_s -> the head's loss."""

    name = "supervised"
    streams = ("source",)

    def __init__(self):
        super().__init__()

    def step(self, model, batches, step):
        src = batches["source"]
        out = self.forward(src["image"])
        return model.loss(out, src["label"], generator=self.generator)
