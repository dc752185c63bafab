"""Position-embedding resampling for token grids other than the checkpoint's.

DINOv2's own rule (``interpolate_pos_encoding`` in facebookresearch/dinov2), used for the DINOv2
family so official weights behave as in the official code at non-native sizes::

    P' = bicubic( P.reshape(1, M, M, C) -> 1×C×M×M,  scale_factor = ((h+0.1)/M, (w+0.1)/M),  antialias=False )

computed in float32, unchanged when the grid already is M×M; the cls entry (when the table has
one) is kept. The +0.1 offset makes ``floor(M·s)`` land on h, w exactly. Other families keep
timm's ``resample_abs_pos_embed`` (bicubic with ``size=``, antialias on; CLIP, MAE), EVA02 its
own ``_pos_embed`` (+RoPE), SAM ``resample_abs_pos_embed_nhwc``. ``pos_interp="timm"`` gives
timm's rule for DINOv2 too (the kit's behaviour before this module). Taught in
``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

POS_INTERP = ("auto", "dinov2", "timm")


def dinov2_resample(pos_embed: torch.Tensor, grid_hw: tuple[int, int], num_prefix: int,
                    offset: float = 0.1) -> torch.Tensor:
    """1×(num_prefix + M²)×C table -> 1×(num_prefix + h·w)×C by DINOv2's bicubic rule."""
    n = pos_embed.shape[1] - num_prefix
    m = int(math.isqrt(n))
    if m * m != n:
        raise ValueError(f"position table of {n} patch entries is not a square grid")
    h, w = grid_hw
    if (h, w) == (m, m):
        return pos_embed
    prefix, patch = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    c = patch.shape[-1]
    grid = patch.float().reshape(1, m, m, c).permute(0, 3, 1, 2)  # 1×M²×C -> 1×C×M×M
    out = F.interpolate(grid, scale_factor=((h + offset) / m, (w + offset) / m), mode="bicubic",
                        antialias=False, align_corners=False)
    if tuple(out.shape[-2:]) != (h, w):
        raise RuntimeError(f"DINOv2 resampling gave {tuple(out.shape[-2:])}, expected {(h, w)}")
    out = out.permute(0, 2, 3, 1).reshape(1, h * w, c).to(pos_embed.dtype)  # 1×C×h×w -> 1×(h·w)×C
    return torch.cat([prefix, out], dim=1)


def dinov2_pos_embed(model, x: torch.Tensor) -> torch.Tensor:
    """timm ``VisionTransformer._pos_embed`` with DINOv2's resampling. ``x``: B×h×w×C patch tokens."""
    B, h, w, C = x.shape
    x = x.reshape(B, h * w, C)
    prefix = []
    if model.cls_token is not None:
        prefix.append(model.cls_token.expand(B, -1, -1))
    if getattr(model, "reg_token", None) is not None:
        prefix.append(model.reg_token.expand(B, -1, -1))
    if model.no_embed_class:  # the table has patch entries only: add, then prepend the prefix
        x = x + dinov2_resample(model.pos_embed, (h, w), 0)
        x = torch.cat(prefix + [x], dim=1) if prefix else x
    else:  # the table has a cls entry: prepend, then add
        x = torch.cat(prefix + [x], dim=1) if prefix else x
        x = x + dinov2_resample(model.pos_embed, (h, w), model.num_prefix_tokens)
    return model.pos_drop(x)


def resolve_pos_interp(pos_interp: str, family: str, name: str) -> str:
    if pos_interp not in POS_INTERP:
        raise ValueError(f"pos_interp must be one of {', '.join(POS_INTERP)}, got {pos_interp!r}")
    if pos_interp == "auto":
        return "dinov2" if family == "vit" and (name.startswith("dinov2") or name == "tiny") else "timm"
    if pos_interp == "dinov2" and family != "vit":
        raise ValueError(f"pos_interp='dinov2' applies to timm ViTs (DINOv2 family), not {name}")
    return pos_interp
