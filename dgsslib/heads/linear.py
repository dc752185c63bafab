"""A light decode head on the tapped ViT features (the DINOv2 "multi-scale linear" probe).

logits = W2 · GELU(BN(W1 · BN(concat_k f_k)))   with f_k the taps at ``out_indices``

All taps share the ViT's token grid (stride = patch); logits are produced on that grid and
bilinearly upsampled to the input. ``hidden=0`` gives the pure linear probe
(logits = W · BN(concat f_k)). It is the head of the Freeze/Full baselines in the mini profile
(a Mask2Former head is ~20M parameters, too slow on 2 CPU cores). Head contract shared with
:class:`dgsslib.heads.mask2former.Mask2FormerHead`: ``forward(feats, queries=None)``,
``loss(out, labels)``, ``semantic_logits(out, size)``. ``loss_average``: ``valid`` (default, PyTorch's
ignore mean) or ``all`` (mmseg ``avg_non_ignore=False``, as VFMSeg's official configs; notebook 30's baseline).
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import IGNORE_INDEX, NUM_CLASSES
from .vfmnet import LOSS_AVERAGES, pixel_ce


class LinearHead(nn.Module):
    needs_pyramid = False  # reads the taps on the token grid
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"num_classes": (1, None), "hidden": (0, None), "ignore_index": (0, 255)}  # hidden 0: no hidden layer

    def __init__(self, in_channels: list[int], num_classes: int = NUM_CLASSES, hidden: int = 256,
                 ignore_index: int = IGNORE_INDEX, loss_average: str = "valid"):
        super().__init__()
        if loss_average not in LOSS_AVERAGES:
            raise ValueError(f"loss_average must be one of {', '.join(LOSS_AVERAGES)}, got {loss_average!r}")
        c = sum(in_channels)
        self.ignore_index, self.loss_average = ignore_index, loss_average
        self.bn_in = nn.BatchNorm2d(c)
        if hidden:
            self.mix = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.GELU())
            self.cls = nn.Conv2d(hidden, num_classes, 1)
        else:
            self.mix, self.cls = nn.Identity(), nn.Conv2d(c, num_classes, 1)

    def forward(self, feats: list[torch.Tensor], queries: torch.Tensor | None = None) -> dict:
        size = feats[0].shape[-2:]
        x = torch.cat([f if f.shape[-2:] == size else
                       F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats], 1)
        return {"logits": self.cls(self.mix(self.bn_in(x)))}  # B×K×h×w

    def semantic_logits(self, out: dict, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(out["logits"].float(), size=tuple(size), mode="bilinear", align_corners=False)

    def loss(self, out: dict, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        ce = pixel_ce(self.semantic_logits(out, labels.shape[-2:]), labels, self.ignore_index, self.loss_average)
        return {"loss_ce": ce, "loss": ce}
