"""The VFMSeg head: VFMNet (coarse, global view) and MGRNet (refine, high-resolution crops) on one encoder.

Paper card
----------
*Unleashing the Power of Visual Foundation Models for Generalizable Semantic Segmentation*
(VFMSeg, Tang et al., AAAI 2025; code https://github.com/tpy001/VFMSeg), Fig. 2::

    ŷ = f_θ(resize(x))          head(feats)                    -> VFMNet logits at 1/4   (self.coarse)
    ỹ = g_φ(P_k, ŷ_k)           head.refine(feats_k, ŷ_k, g)   -> MGRNet logits at 1/16  (self.refine)

Both decoders read the same LoRA-tuned encoder (the paper shares it "to reduce trainable
parameters"). ``forward(feats, queries=None)`` is the coarse prediction, so the default trainer,
evaluator and whole/slide inference treat the model like any single-head model; the two-view
step (:mod:`dgsslib.recipes.vfmseg`) and the coarse-to-fine inference
(:mod:`dgsslib.adapters.vfmseg_lora`) call ``head.refine`` with the detached coarse logits of the
same region. Options name the paper-vs-code switch (``decoder=official|paper``), the mask ratio
p (0.2), the widths, the CE reduction of both losses (``loss_average``: ``all`` = mmseg's
``avg_non_ignore=False``, the official; ``valid``) and the VFMNet init (``init``: ``official`` =
mmcv ``ConvModule``'s Kaiming fan_out; ``torch``) -- see :mod:`dgsslib.heads.vfmnet`,
:mod:`dgsslib.heads.mgrnet`.
Taught in ``notebooks/30_vfmseg.ipynb``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import IGNORE_INDEX, NUM_CLASSES
from .mgrnet import MGRNetDecoder
from .vfmnet import VFMNetDecoder, pixel_ce


class VFMSegHead(nn.Module):
    """``coarse`` = VFMNet, ``refine`` = MGRNet; ``head(feats)`` is VFMNet, ``head.refine(feats, ctx)`` MGRNet."""

    needs_pyramid = False
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"num_classes": (1, None), "mask_ratio": (0, 1), "fuse_channels": (1, None),
                     "refine_channels": (1, None), "depth": (1, None), "heads": (1, None), "head_dim": (1, None),
                     "dropout": (0, 1), "paper_dim": (1, None), "channels": (1, None), "ignore_index": (0, 255)}

    def __init__(self, in_channels: list[int], num_classes: int = NUM_CLASSES, decoder: str = "official",
                 mask_ratio: float = 0.2, fuse_channels: int | None = None, channels: int | str = "auto",
                 refine_channels: int = 256, depth: int = 3, heads: int = 8, head_dim: int = 64,
                 dropout: float = 0.1, paper_dim: int = 256, ignore_index: int = IGNORE_INDEX,
                 loss_average: str = "all", init: str = "official"):
        super().__init__()
        self.ignore_index, self.loss_average = ignore_index, loss_average
        self.coarse = VFMNetDecoder(in_channels, num_classes, fuse_channels, channels, dropout, ignore_index,
                                    loss_average, init)
        self.refine = MGRNetDecoder(in_channels, num_classes, refine_channels, decoder, mask_ratio, depth,
                                    heads, head_dim, dropout, paper_dim)

    def forward(self, feats: list[torch.Tensor], queries: torch.Tensor | None = None) -> dict:
        return self.coarse(feats)  # {"logits": B×K×4h×4w}

    def semantic_logits(self, out: dict, size: tuple[int, int]) -> torch.Tensor:
        """Either decoder's output -> B×K×H×W (bilinear)."""
        return F.interpolate(out["logits"].float(), size=tuple(size), mode="bilinear", align_corners=False)

    def loss(self, out: dict, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Pixel CE (ignore 255, reduction ``loss_average``) of either decoder's output against B×H×W labels."""
        ce = pixel_ce(self.semantic_logits(out, labels.shape[-2:]), labels, self.ignore_index, self.loss_average)
        return {"loss_ce": ce, "loss": ce}


__all__ = ["VFMSegHead"]
