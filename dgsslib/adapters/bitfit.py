"""BitFit: train only the backbone's bias terms.

Paper card
----------
*BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked Language-models*
(Ben Zaken et al., ACL 2022, https://arxiv.org/abs/2106.10199). A PEFT baseline of Rein++ Table III
(DINOv2-L: 0.27M trainable parameters).

Key equation: for every frozen layer y = W x + b, only b is updated::

    θ_trainable = { b : every bias of the backbone }   (W, LayerNorm γ, LayerScale γ frozen)

"Bias" = every backbone parameter whose name ends in ``bias``: Linear/conv/LayerNorm biases and
EVA's ``q_bias``/``v_bias`` -- except in timm modules that :meth:`VFM.forward_features` never runs
(the final ``norm``/``fc_norm``, ``head``, SAM's ``neck``: the kit taps pre-norm features, as
the Rein code does), since they would get no gradient. On DINOv2-L: 24 blocks × 11,264 +
patch-embed 1,024 = 271,360 (0.27M; the unused final-norm bias would make it 272,384, also
0.27M). These are original backbone weights, trained at the head's lr (``backbone_lr_mult = 1``).

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

from .base import Method

#: timm top-level modules that VFM.forward_features does not run (no gradient would reach them)
UNUSED_PREFIXES = ("norm.", "fc_norm.", "head.", "head_drop.", "neck.", "attn_pool.")


class BitFit(Method):
    """Unfreeze all backbone biases; add nothing."""

    name = "bitfit"

    def __init__(self):
        super().__init__()

    def attach(self, vfm) -> "BitFit":
        super().attach(vfm)
        n = 0
        for name, p in vfm.model.named_parameters():
            if name.endswith("bias") and not name.startswith(UNUSED_PREFIXES):
                p.requires_grad_(True)
                n += 1
        if n == 0:
            raise ValueError(f"{vfm.name} has no bias parameters for BitFit")
        return self


__all__ = ["BitFit", "UNUSED_PREFIXES"]
