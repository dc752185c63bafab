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
DINOv2-S -> 384, SAM-H -> 1280). The second deconvolution goes to ``channels``: ``"auto"`` =
max(256, C/4), which is every official config's value (256 for the 1024-wide DINOv2/EVA02/CLIP-L, 320
for SAM-H's 1280, ``lora_sam_ms_masked.py``) and keeps mmseg's 256 for narrower backbones; an int
sets it. The logits are bilinearly resized to the label size for the cross-entropy (ignore 255).

Loss reduction (``loss_average``): mmseg's ``CrossEntropyLoss`` in the official configs keeps
``avg_non_ignore=False``, so the per-pixel CE is summed over the valid pixels and divided by **all**
B·H·W pixels (ignored ones count in the denominator): ``"all"`` (default, official). ``"valid"``
divides by the valid pixels only (PyTorch's ``ignore_index`` mean), which is larger by 1 / (valid
share) -- the kit's earlier default.

Init (``init``): ``"official"`` (default) is mmcv ``ConvModule``'s ``kaiming_init`` of the fusion
convolution (Kaiming-normal, fan_out, ReLU gain, zero bias; std √(2/C) = 0.044 for C = 1024); the
deconvolutions are plain ``nn.ConvTranspose2d`` in the official head and keep PyTorch's default;
the classifier is N(0, 0.01) with zero bias (mmseg's ``conv_seg``). ``"torch"`` keeps PyTorch's
default for the fusion convolution too (std ≈ 0.009 at 4096 inputs).
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


LOSS_AVERAGES = ("all", "valid")  # mmseg avg_non_ignore=False (the official configs) | PyTorch's ignore mean
INITS = ("official", "torch")


def pixel_ce(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX,
             average: str = "valid") -> torch.Tensor:
    """Cross-entropy (ignore ``ignore_index``) summed over the valid pixels and divided by the valid
    count (``average="valid"``) or by all B·H·W pixels (``"all"``, mmseg ``avg_non_ignore=False``);
    an all-ignore crop gives 0 (not NaN)."""
    if average not in LOSS_AVERAGES:
        raise ValueError(f"loss average must be one of {', '.join(LOSS_AVERAGES)}, got {average!r}")
    if not (labels != ignore_index).any():
        return logits.sum() * 0.0
    if average == "all":
        return F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum") / labels.numel()
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


def vfmnet_channels(channels, fuse: int) -> int:
    """``"auto"`` -> max(256, C/4) (every official config: 256 for C = 1024, 320 for SAM-H's 1280)."""
    if channels == "auto":
        return max(256, fuse // 4)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be an int >= 1 or 'auto', got {channels!r}")
    return channels


class VFMNetDecoder(nn.Module):
    """Concatenated taps (B×ΣC×h×w) -> B×K×4h×4w logits (the official ``LinearHead``)."""

    needs_pyramid = False
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"num_classes": (1, None), "fuse_channels": (1, None), "dropout": (0, 1), "channels": (1, None),
                     "ignore_index": (0, 255)}

    def __init__(self, in_channels: list[int], num_classes: int = NUM_CLASSES, fuse_channels: int | None = None,
                 channels: int | str = "auto", dropout: float = 0.1, ignore_index: int = IGNORE_INDEX,
                 loss_average: str = "all", init: str = "official"):
        super().__init__()
        if not in_channels:
            raise ValueError("VFMNet needs the channel widths of its taps")
        c = int(fuse_channels) if fuse_channels else sum(in_channels) // len(in_channels)  # = embed dim
        if c < 2 or c % 2:
            raise ValueError(f"fuse_channels must be an even width >= 2, got {c}")
        if loss_average not in LOSS_AVERAGES:
            raise ValueError(f"loss_average must be one of {', '.join(LOSS_AVERAGES)}, got {loss_average!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        channels = vfmnet_channels(channels, c)
        self.ignore_index, self.loss_average, self.channels = ignore_index, loss_average, channels
        self.fuse = nn.Sequential(nn.Conv2d(sum(in_channels), c, 1, bias=False), group_norm(c), nn.ReLU())
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c, c // 2, 2, stride=2), nn.BatchNorm2d(c // 2), nn.GELU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c // 2, channels, 2, stride=2), nn.GELU())
        self.drop = nn.Dropout2d(dropout)
        self.cls = nn.Conv2d(channels, num_classes, 1)
        if init == "official":  # mmcv ConvModule.init_weights: kaiming_init(conv, mode=fan_out, relu), bias 0
            nn.init.kaiming_normal_(self.fuse[0].weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.cls.weight, 0.0, 0.01)
        nn.init.zeros_(self.cls.bias)

    def forward(self, feats: list[torch.Tensor], queries: torch.Tensor | None = None) -> dict:
        x = self.fuse(concat_taps(feats))              # B×C×h×w
        x = self.up2(self.up1(x))                      # B×256×4h×4w
        return {"logits": self.cls(self.drop(x))}      # B×K×4h×4w

    def semantic_logits(self, out: dict, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(out["logits"].float(), size=tuple(size), mode="bilinear", align_corners=False)

    def loss(self, out: dict, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        ce = pixel_ce(self.semantic_logits(out, labels.shape[-2:]), labels, self.ignore_index, self.loss_average)
        return {"loss_ce": ce, "loss": ce}


__all__ = ["VFMNetDecoder", "concat_taps", "group_norm", "pixel_ce", "vfmnet_channels", "LOSS_AVERAGES", "INITS"]
