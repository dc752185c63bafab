"""Self-training with an EMA teacher: the DACS/DAFormer baseline every UDA recipe builds on.

Per iteration (DAFormer §3.3-3.4 without ClassMix; the confidence weight of DAFormer eq. 6):

    L_src = L_head(model(x_s), y_s)                                          supervised source loss
    p_T   = softmax(teacher(x_t)),   ŷ_t = argmax_c p_T,   q_t = mean_pixels[max_c p_T > τ]
    L_pl  = (1/HW) Σ_pixels q_t · CE(student(x_t), ŷ_t)                      τ = 0.968
    L     = L_src + λ · L_pl
    φ ← α_t φ + (1 − α_t) θ,  α_t = min(1 − 1/(t+1), α)                       (EMA, after the step)

``ignore_top`` / ``ignore_bottom`` zero the weight of those pixel rows (DAFormer's crop
pseudo-label option, 15 / 120 rows on 512 crops of Cityscapes; 0 by default). Rein-A adds
ClassMix, a masked-image branch and the STM on top of this (``notebooks/11_rein_a.ipynb``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.labels import IGNORE_INDEX
from .ema import EMATeacher, TeacherRecipe


def confidence_weight(probs: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """B×K×H×W probabilities -> (pseudo-labels B×H×W, per-image weight q_t B = share of pixels > τ)."""
    conf, label = probs.max(1)
    return label, (conf > tau).float().mean(dim=(1, 2))


class SelfTraining(TeacherRecipe):
    """Source supervision + confidence-weighted pseudo-labels from an EMA teacher on the target."""

    name = "self_training"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"alpha": (0, 1), "tau": (0, 1), "weight": (0, None), "ignore_top": (0, None),
                     "ignore_bottom": (0, None)}
    streams = ("source", "target")

    def __init__(self, alpha: float = 0.999, tau: float = 0.968, weight: float = 1.0,
                 ignore_top: int = 0, ignore_bottom: int = 0):
        if not 0.0 <= float(tau) <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {tau}")
        super().__init__(alpha=float(alpha), tau=float(tau), weight=float(weight),
                         ignore_top=int(ignore_top), ignore_bottom=int(ignore_bottom))
        self.alpha, self.tau, self.weight = float(alpha), float(tau), float(weight)
        self.ignore_top, self.ignore_bottom = int(ignore_top), int(ignore_bottom)
        self.teacher: EMATeacher | None = None

    def setup(self, model, cfg):
        self.teacher = EMATeacher(model, self.alpha)  # φ_0 = θ_0

    def step(self, model, batches, step):
        src, tgt = batches["source"], batches["target"]
        # 1. source branch: the head's supervised loss
        src_losses = model.loss(self.forward(src["image"]), src["label"], generator=self.generator)
        # 2. pseudo-labels and their confidence weight from the teacher
        with self.teacher.applied(model), self.autocast():
            p_t = model.semantic_logits(tgt["image"]).float().softmax(1)
        pseudo, q = confidence_weight(p_t, self.tau)
        w = q[:, None, None].expand_as(pseudo).clone()
        if self.ignore_top:
            w[:, : self.ignore_top] = 0
        if self.ignore_bottom:
            w[:, w.shape[1] - self.ignore_bottom:] = 0
        # 3. target branch: the student on the same target images
        s_logits = model.semantic_logits(tgt["image"], out=self.forward(tgt["image"])).float()
        ce = F.cross_entropy(s_logits, pseudo, reduction="none", ignore_index=IGNORE_INDEX)
        l_pl = (ce * w).mean()
        return {"loss": src_losses["loss"] + self.weight * l_pl, "loss_source": src_losses["loss"],
                "loss_pseudo": l_pl, "pseudo_weight": q.mean()}
