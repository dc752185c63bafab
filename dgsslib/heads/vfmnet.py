"""VFMNet's decoder: fused ViT taps upsampled ×4 by two stride-2 transposed convolutions.

Paper card
----------
*Unleashing the Power of Visual Foundation Models for Generalizable Semantic Segmentation*
(VFMSeg, Tang et al., AAAI 2025; code https://github.com/tpy001/VFMSeg, ``LinearHead``).
The paper's Fig. 3(a) / "Decoder" paragraph, as the official code builds it::

    F   = ReLU(GN32(Conv1×1(concat_k f_k)))              4C -> C      (no bias; the paper's "linear layer")
    F2  = GELU(BN(ConvT_2×2,s2(F)))                        C -> C/2     (1/16 -> 1/8 of the image)
    F4  = GELU(ConvT_2×2,s2(F2))                           C/2 -> 256   (1/8 -> 1/4, no norm)
    ŷ   = Conv1×1(Dropout2d_0.1(F4))                       256 -> K     at 4× the token grid

``C`` (``fuse_channels``) is 1024 for ViT-L in the official configs, i.e. the backbone's embedding
width. **Our rule for other backbones: C = the embedding width** (the mean of ``in_channels``;
DINOv2-S -> 384, SAM-H -> 1280) and the second deconvolution always goes to ``channels`` = 256
(the mmseg ``channels`` of the config); both are options. The logits are bilinearly resized to the
label size for the cross-entropy (ignore 255), like :class:`dgsslib.heads.linear.LinearHead`.
Init: PyTorch defaults, the classifier N(0, 0.01) with zero bias (mmseg's ``conv_seg``).
Taught in ``notebooks/30_vfmseg.ipynb``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import IGNORE_INDEX, NUM_CLASSES


def group_norm(channels: int, groups: int = 32, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups, or the largest divisor of ``channels`` below it (tiny widths)."""
    g = max(d for d in range(1, groups + 1) if channels % d == 0)
    return nn.GroupNorm(g, channels, eps=eps)


def concat_taps(feats: list[torch.Tensor]) -> torch.Tensor:
    """Same-grid taps B×C_k×h×w -> B×ΣC_k×h×w (taps on another grid are resized to the first's)."""
    if not feats:
        raise ValueError("the head needs at least one feature map")
    size = feats[0].shape[-2:]
    return torch.cat([f if f.shape[-2:] == size else
                      F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats], 1)


def pixel_ce(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over non-ignored pixels; an all-ignore crop gives 0 (not NaN)."""
    if not (labels != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


class VFMNetDecoder(nn.Module):
    """Concatenated taps (B×ΣC×h×w) -> B×K×4h×4w logits (the official ``LinearHead``)."""

    needs_pyramid = False

    def __init__(self, in_channels: list[int], num_classes: int = NUM_CLASSES, fuse_channels: int | None = None,
                 channels: int = 256, dropout: float = 0.1, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        if not in_channels:
            raise ValueError("VFMNet needs the channel widths of its taps")
        c = int(fuse_channels) if fuse_channels else sum(in_channels) // len(in_channels)  # = embed dim
        if c < 2 or c % 2:
            raise ValueError(f"fuse_channels must be an even width >= 2, got {c}")
        self.ignore_index = ignore_index
        self.fuse = nn.Sequential(nn.Conv2d(sum(in_channels), c, 1, bias=False), group_norm(c), nn.ReLU())
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c, c // 2, 2, stride=2), nn.BatchNorm2d(c // 2), nn.GELU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c // 2, channels, 2, stride=2), nn.GELU())
        self.drop = nn.Dropout2d(dropout)
        self.cls = nn.Conv2d(channels, num_classes, 1)
        nn.init.normal_(self.cls.weight, 0.0, 0.01)
        nn.init.zeros_(self.cls.bias)

    def forward(self, feats: list[torch.Tensor], queries: torch.Tensor | None = None) -> dict:
        x = self.fuse(concat_taps(feats))              # B×C×h×w
        x = self.up2(self.up1(x))                      # B×256×4h×4w
        return {"logits": self.cls(self.drop(x))}      # B×K×4h×4w

    def semantic_logits(self, out: dict, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(out["logits"].float(), size=tuple(size), mode="bilinear", align_corners=False)

    def loss(self, out: dict, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        ce = pixel_ce(self.semantic_logits(out, labels.shape[-2:]), labels, self.ignore_index)
        return {"loss_ce": ce, "loss": ce}


__all__ = ["VFMNetDecoder", "concat_taps", "group_norm", "pixel_ce"]
