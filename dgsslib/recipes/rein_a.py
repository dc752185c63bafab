"""Rein-A: self-training of Rein-G + Mask2Former on an unlabelled target (Rein++ §V, Algorithm 1).

Paper card: *Rein++: Efficient Generalization and Adaptation for Semantic Segmentation with Vision
Foundation Models* (Wei et al., arXiv 2508.01667), §V, eq. 14–20 -- no public code. Per iteration
(student M_s, EMA teacher M_t; the VFM frozen, Rein-G + decoder train)::

    (p̂_t, m̂_t) = M_t(x_t);  Ŝ_t = p̂_tᵀ m̂_t;  ŷ_t = argmax Ŝ_t;  q = share(conf(Ŝ_t) > τ)    pseudo-labels
    L_src  = L_mask-cls(M_s(x_s), y_s)                             eq. 14 (Hungarian, deep supervision)
    x_mix, y_mix, w_mix = ClassMix(x_s, y_s, x_t, ŷ_t, q) + strong augmentation           (DACS/DAFormer)
    L_mix  = Σ w_mix · NLL(log(S_mix / ΣS_mix), y_mix) / (B·H·W)   eq. 15 (pixel level, not Hungarian)
    x_m    = x_t ⊙ M, M = MIC block mask (b, r = 0.7) after a fresh strong augmentation
    L_mask = q̄ · [CE(p_m,i, argmax p̂_t,i) + 1[ĉ_i ≠ ∅]·(BCE + dice)(m_m,i, m̂_t,i > 0.5)]    eq. 16 (query i ↔ i)
    L      = L_src + α·L_mix + β·L_mask,  α = β = 1                eq. 20 (without the STM terms)
    θ_t ← EMA(θ_s)                                                  after the step

Choices where the paper is silent (``shared/reference/uda_machinery.md`` §9; each is an option):
the confidence score is ``normalized`` (max S/ΣS: S is not a distribution, and softmax(S) would
switch the mix branch off, §9.1); eq. 15's CE is the NLL of the normalised S (``mix_ce``, §9.2);
the mask branch is weighted by the teacher's mean confidence q̄ (MIC, ``mask_q_weight``, §9.3);
EMA α = 0.999 (§9.4); MIC block 32 px at ratio 0.7 (§9.5).

Not built yet (issue #10): the Semantic Transfer Module (eq. 17–19, SAM/SAM2 region queries) and
its region masks; notebook ``11_rein_a``. ``mix``/``mask`` switch the branches for Table X.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.labels import IGNORE_INDEX
from ..uda.classmix import class_mix, strong_augment
from ..uda.masking import apply_mask, block_mask
from ..uda.pseudo_label import SCORES, pseudo_labels, query_losses, query_targets
from .base import Recipe
from .ema import EMATeacher


def normalized_nll(S: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w · −log(S_y / Σ_k S_k) / (B·H·W), ignore 255 (eq. 15 on the semantic map)."""
    logp = torch.log((S / S.sum(1, keepdim=True).clamp_min(1e-8)).clamp_min(1e-8))
    nll = F.nll_loss(logp, labels, reduction="none", ignore_index=IGNORE_INDEX)
    return (nll * weight).mean()


class ReinA(Recipe):
    """Source + ClassMix + masked-target branches with an EMA teacher (Rein++ Algorithm 1, no STM yet)."""

    name = "rein_a"
    streams = ("source", "target")

    def __init__(self, alpha: float = 0.999, tau: float = 0.968, score: str = "normalized",
                 mix: bool = True, mask: bool = True, mix_weight: float = 1.0, mask_weight: float = 1.0,
                 mix_ce: str = "normalized", mask_block: int = 32, mask_ratio: float = 0.7,
                 mask_q_weight: bool = True, ignore_top: int = 0, ignore_bottom: int = 0):
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if mix_ce not in ("normalized", "logits"):
            raise ValueError(f"mix_ce must be normalized or logits, got {mix_ce!r}")
        if not 0.0 <= float(alpha) < 1.0 or not 0.0 <= float(tau) <= 1.0 or not 0.0 <= float(mask_ratio) < 1.0:
            raise ValueError("need 0 <= alpha < 1, 0 <= tau <= 1, 0 <= mask_ratio < 1")
        super().__init__(alpha=float(alpha), tau=float(tau), score=score, mix=bool(mix), mask=bool(mask),
                         mix_weight=float(mix_weight), mask_weight=float(mask_weight), mix_ce=mix_ce,
                         mask_block=int(mask_block), mask_ratio=float(mask_ratio), mask_q_weight=bool(mask_q_weight),
                         ignore_top=int(ignore_top), ignore_bottom=int(ignore_bottom))
        self.o = dict(self.options)
        self.teacher: EMATeacher | None = None

    def setup(self, model, cfg):
        if not getattr(model.head, "needs_pyramid", False) or not hasattr(model.head, "semantic_logits"):
            raise ValueError("recipe rein_a needs the mask-classification head (head: mask2former)")
        self.teacher = EMATeacher(model, self.o["alpha"])  # θ_t ← θ_s at the start

    def step(self, model, batches, step):
        o, g = self.o, self.generator
        src, tgt = batches["source"], batches["target"]
        # 1. pseudo-labels from the teacher's queries (no gradient)
        with torch.no_grad(), self.teacher.applied(model), self.autocast():
            out_t = model(tgt["image"])
            S_t = model.semantic_logits(tgt["image"], out=out_t).float()
        y_t, w_t, q = pseudo_labels(S_t, o["tau"], o["score"], o["ignore_top"], o["ignore_bottom"])
        # 2. source branch: the Hungarian mask-classification loss (eq. 14)
        src_losses = model.loss(self.forward(src["image"]), src["label"], generator=g)
        total = src_losses["loss"]
        terms = {"loss_source": src_losses["loss"].detach(), "pseudo_weight": q.mean()}
        # 3. mix branch: ClassMix + strong augmentation, pixel-level CE on the student's semantic map (eq. 15)
        if o["mix"]:
            m = class_mix(src["image"], src["label"], tgt["image"], y_t, w_t, g)
            S_mix = model.semantic_logits(m["image"], out=self.forward(m["image"])).float()
            if o["mix_ce"] == "normalized":
                l_mix = normalized_nll(S_mix, m["label"], m["weight"])
            else:  # S read as logits (§9.2's first choice: bounded, minimum ~log K)
                l_mix = (F.cross_entropy(S_mix, m["label"], reduction="none", ignore_index=IGNORE_INDEX)
                         * m["weight"]).mean()
            total = total + o["mix_weight"] * l_mix
            terms["loss_mix"] = l_mix.detach()
        # 4. mask branch: the student on a block-masked target, query i vs the teacher's query i (eq. 16)
        if o["mask"]:
            x = strong_augment(tgt["image"], g)
            B, _, H, W = x.shape
            x = apply_mask(x, block_mask((B, H, W), o["mask_block"], o["mask_ratio"], generator=g, device=x.device))
            out_m = self.forward(x)
            targets = query_targets(out_t["pred_logits"].float(), out_t["pred_masks"].float())
            l_mask = query_losses(out_m["pred_logits"].float(), out_m["pred_masks"].float(), targets)["loss"]
            if o["mask_q_weight"]:
                l_mask = l_mask * q.mean()
            total = total + o["mask_weight"] * l_mask
            terms["loss_mask"] = l_mask.detach()
        terms["loss"] = total
        return terms

    def after_step(self, model, step):
        self.teacher.update(model, step + 1)

    def state_tensors(self):
        return {f"teacher.{k}": v for k, v in self.teacher.state_tensors().items()}

    def load_state_tensors(self, tensors):
        self.teacher.load_state_tensors({k[len("teacher."):]: v for k, v in tensors.items()})
