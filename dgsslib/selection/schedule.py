"""FisherTune's growing selection schedule (eq. 16), with the reading this kit takes.

Paper card: *FisherTune* (CVPR 2025, arXiv 2503.17940), §3.3.3:

    DRF_thresh(t) = δ_min + (δ_max − δ_min) · exp(−t / T)                     (eq. 16, as printed)

Eq. 16 is a *threshold on the DRF score*: parameters whose DRF exceeds it are selected, so a
threshold that falls over training admits more and more of them -- the text ("fine-tune only the most
sensitive δ_min % ... gradually increase the percentage ... reaching δ_max % by the end") and the
formula agree; only "δ as a percentage of parameters" is loose (a threshold on scores is not a share of
parameters). The kit schedules the *share* directly: ρ(t), the fraction of the backbone selected at
step t, grows from δ_min to δ_max (δ in fractions; a share is what the budget of Table 1 counts). T is
the paper's "total number of training steps" with ``schedule_steps=total`` (default, the paper: t = the
global step, so the selection has grown part of the way when T3 starts), or the fine-tuning phase T3 with
``schedule_steps=t3`` (t counted from the start of T3, the kit's earlier reading):

    ``exp``   (default)  ρ(t) = δ_min + (δ_max − δ_min) · (1 − e^{−κt/T}) / (1 − e^{−κ}),  κ = 1
                         -- eq. 16's exponential, turned to grow and normalised to reach δ_max at t = T
    ``printed_growing``  ρ(t) = δ_max − (δ_max − δ_min) · e^{−t/T}   -- the same curve unnormalised
                         (ends at δ_max − 0.37(δ_max − δ_min): the budget is never reached)
    ``linear``           ρ(t) = δ_min + (δ_max − δ_min) · t / T
    ``fixed``            ρ(t) = δ_max                                      (Child-Tuning-D, Random)

ρ is evaluated at t / (T − 1), so the last fine-tuning step trains exactly δ_max. Selection at
step t = the top ⌊ρ(t)·N_backbone⌉ elements of the fixed DR-FIM ranking, so masks
are nested and grow. Plotted in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import math

SHAPES = ("exp", "printed_growing", "linear", "fixed")


def selected_fraction(t: int, total: int, delta_min: float, delta_max: float, shape: str = "exp",
                      kappa: float = 1.0) -> float:
    """ρ(t) for fine-tuning step t in [0, total) (clamped), δ as fractions of the backbone."""
    if shape not in SHAPES:
        raise ValueError(f"schedule must be one of {SHAPES}, got {shape!r}")
    if not 0.0 <= delta_min <= delta_max:
        raise ValueError(f"need 0 <= delta_min <= delta_max, got {delta_min}, {delta_max}")
    if shape == "fixed":
        return delta_max
    u = min(max(t, 0), total - 1) / max(total - 1, 1)  # t = 0 .. T-1: ρ reaches δ_max at the last step
    if shape == "linear":
        return delta_min + (delta_max - delta_min) * u
    if shape == "printed_growing":
        return delta_max - (delta_max - delta_min) * math.exp(-u)
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    return delta_min + (delta_max - delta_min) * (1 - math.exp(-kappa * u)) / (1 - math.exp(-kappa))


def selected_count(t: int, total: int, n_backbone: int, delta_min: float, delta_max: float,
                   shape: str = "exp", kappa: float = 1.0) -> int:
    """Elements selected at fine-tuning step t: round(ρ(t) · N_backbone)."""
    return int(round(selected_fraction(t, total, delta_min, delta_max, shape, kappa) * n_backbone))


__all__ = ["SHAPES", "selected_count", "selected_fraction"]
