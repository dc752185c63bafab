"""Random block masks for Rein-A's masked-image (mask) branch, as in MIC.

MIC: Hoyer et al., "MIC: Masked Image Consistency for Context-Enhanced Domain Adaptation",
CVPR 2023, https://arxiv.org/abs/2212.01322, eq. 1. Rein++ (Rein-A) §V-B eq. 16 and
Algorithm 1 lines 16-17::

    g_i ~ U(0, 1)  for every cell i of a grid of b×b-pixel blocks
    M   = [g > r]  upsampled to H×W with nearest neighbour   (1 = kept, 0 = dropped)
    x_M = x_t ⊙ M          (the student sees x_M; the teacher sees the whole x_t)

Values, from MIC's code (github.com/lhoyer/MIC, ``mmseg/models/utils/masking_transforms.py``), after MIC
``masking_transforms.BlockMaskGenerator``:

* Ratio: r = 0.7 (``mask_ratio``). A block is kept when u > r, so about 30 % of the blocks are
  kept and dropped blocks are 0. Each image draws its own mask.
* Block size: MIC uses b = 64 for full-resolution 1024×1024 crops. For 512×512 crops of
  half-resolution images it uses **b = 32** (MIC ``experiments.py`` id 81, "half the patch size").
* Rein-A's 512 crops of 1024×512 Cityscapes therefore suggest b = 32. The kit's default of 64 is
  4×4 ViT patches of 16 px.
* The paper does not state b; keep it configurable. The MIC ablation covers {16, 32, 64, 128} at
  half resolution.
* Mini images (112×224): a block of 64 px is coarse (a 2×4 grid, so about 2 kept cells per
  image), and 32 px or less is closer to MIC's proportions.
* Non-dividing sizes:
  - ``grid="ceil"`` (default) uses a ceil(H/b)×ceil(W/b) grid of exact b-pixel blocks, cropped
    to H×W, so the last row and column are partial.
  - ``grid="round"`` is MIC's exact rule: a round(H/b)×round(W/b) grid (at least 1), stretched
    to H×W with nearest interpolation. Both are identical when b divides H and W.
* Fill value: MIC masks **normalised** images, so dropped pixels are 0 = the mean colour.
  - Our images are [0, 1] and the model normalises them itself, so ``images * mask`` turns
    dropped blocks black.
  - ``apply_mask(..., fill=backbone_mean)`` reproduces MIC's mean-colour fill exactly.

Randomness comes only from an explicit CPU ``torch.Generator``. The mask is drawn on the CPU and
then moved, so it does not depend on the device and resumes exactly. Taught in
``notebooks/11_rein_a.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MASK_RATIO = 0.7   # MIC mask_ratio (§5)
BLOCK_SIZE = 64    # MIC full resolution; 32 for half-resolution 512 crops (MIC's 64 px on 1024 crops, halved with the image)


def block_mask(shape_bhw: tuple[int, int, int], block_size: int = BLOCK_SIZE, ratio: float = MASK_RATIO, *,
               generator: torch.Generator, device: torch.device | str | None = None,
               grid: str = "ceil") -> torch.Tensor:
    """B×1×H×W float mask of 0 (dropped) / 1 (kept) b-pixel blocks; each block is kept iff u > ratio."""
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (draws happen on CPU, then move)")
    if len(shape_bhw) != 3 or min(int(s) for s in shape_bhw) < 1:
        raise ValueError(f"shape_bhw must be (B, H, W) with positive sizes, got {shape_bhw}")
    if int(block_size) < 1 or not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"need block_size >= 1 and ratio in [0, 1], got {block_size}, {ratio}")
    B, H, W = (int(s) for s in shape_bhw)
    b = int(block_size)
    if grid == "ceil":
        gh, gw = math.ceil(H / b), math.ceil(W / b)
    elif grid == "round":
        gh, gw = max(1, round(H / b)), max(1, round(W / b))
    else:
        raise ValueError(f"grid must be 'ceil' or 'round', got {grid!r}")
    keep = (torch.rand((B, 1, gh, gw), generator=generator) > ratio).float()  # B×1×gh×gw cells
    if grid == "ceil":
        mask = keep.repeat_interleave(b, 2).repeat_interleave(b, 3)[:, :, :H, :W]  # -> B×1×H×W
    else:
        mask = F.interpolate(keep, size=(H, W), mode="nearest")  # MIC / mmseg resize default
    return mask.to(device) if device is not None else mask


def apply_mask(images: torch.Tensor, mask: torch.Tensor,
               fill: torch.Tensor | tuple[float, ...] | None = None) -> torch.Tensor:
    """``images * mask`` for B×C×H×W images and a B×1×H×W (or B×C×H×W) mask.

    With ``fill`` (one value per channel, e.g. the backbone mean), dropped pixels take that value
    instead of 0: ``images*mask + fill*(1-mask)``.
    """
    if images.dim() != 4 or mask.dim() != 4 or mask.shape[0] != images.shape[0] \
            or mask.shape[-2:] != images.shape[-2:] or mask.shape[1] not in (1, images.shape[1]):
        raise ValueError(f"apply_mask: mask {tuple(mask.shape)} does not fit images {tuple(images.shape)}")
    m = mask.to(device=images.device, dtype=images.dtype)
    out = images * m
    if fill is not None:
        f = torch.as_tensor(fill, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
        if f.shape[1] not in (1, images.shape[1]):
            raise ValueError(f"apply_mask: fill has {f.shape[1]} values for {images.shape[1]} channels")
        out = out + f * (1 - m)
    return out
