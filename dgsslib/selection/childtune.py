"""Child-Tuning-D: the Fisher-masked baseline of FisherTune's Tables 1–2, at the same budget.

Paper card: *Raise a Child in Large Language Model: Towards Effective and Generalizable
Fine-tuning* (Xu et al., EMNLP 2021; official code alibaba/AliceMind ``ChildTuning``), as
FisherTune (CVPR 2025) compares it on VFMs ("ChildTune", 15.21M):

    F = (1/N) Σ_batches clip(∂L(x, y)/∂θ)²         over the training set, ground-truth labels,
                                                    each tensor's gradient clipped to max_grad_norm
    M = 1[F ≥ percentile(F, 1 − p)]                 one global percentile, fixed for the whole run
    g ← g ⊙ M   (no 1/p rescaling)

Here p is FisherTune's budget (5 % of the backbone), θ the same Q/K/V/FFN weights, the mask fixed
from the first fine-tuning step (``schedule=fixed``), no feature perturbation, estimated in the
same phased recipe (T2 = the pass over the training set; ``t2`` sets how many batches) after the
same decoder warm-up, so the only difference from FisherTune's F-only row is the fixed mask and the
per-tensor clipping. Unlike the original optimiser, weight decay is masked too (unselected weights
never move), as for every selection method in the kit. Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

from .fishertune import FisherTune


class ChildTuneD(FisherTune):
    """Child-Tuning-D: fixed top-budget mask by the empirical Fisher over the training set."""

    name = "childtune"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"budget": (0, None), "max_grad_norm": (0, None), "lr_mult": (0, None)}

    def __init__(self, budget: float = 0.05, targets: str = "q,k,v,ffn", max_grad_norm: float = 1.0,
                 lr_mult: float = 0.1):
        super().__init__(budget=budget, delta_min=0.0, schedule="fixed", score="fim", estimator="direct",
                         targets=targets, lr_mult=lr_mult, grad_clip=float(max_grad_norm))
        self.options = {"budget": self.budget, "targets": self.options["targets"],
                        "max_grad_norm": float(max_grad_norm), "lr_mult": float(lr_mult)}
