"""Patch 14 -> 16 conversion of a timm ViT, as Rein's official code does it offline.

Paper card
    Rein: "Stronger, Fewer, & Superior: Harnessing Vision Foundation Models for Domain Generalized
    Semantic Segmentation" (Wei et al., CVPR 2024) and its journal extension Rein++. Rein runs the
    DINOv2 / EVA02 / CLIP backbones with **16-pixel patches** at 512x512 (32x32 tokens) so that the
    1/16 feature map fits the usual segmentation pyramid, although these VFMs were pre-trained with
    14-pixel patches.

What the conversion is
    The official repository converts the checkpoints *offline* before training
    (``tools/convert_models/convert_dinov2.py``; same idea for EVA02 and CLIP):
      * ``patch_embed.proj.weight``: each 14x14 kernel is resized to 16x16 with
        ``F.interpolate(mode="bicubic", align_corners=False)``. There is **no rescaling** of the
        kernel (the patch embeddings grow by roughly (16/14)^2 on smooth images) and no FlexiViT
        pseudo-inverse (which timm's ``set_input_size(patch_size=...)`` would apply instead).
      * ``pos_embed``: the grid part is resampled from its old grid (37x37 for DINOv2) to
        (H/16, W/16) with bicubic, align_corners=False and no antialiasing (32x32 for 512 px);
        prefix (cls) pos-embeds are kept as they are. timm's ``no_embed_class`` models (DINOv2
        reg4) have no pos-embed for cls/register tokens, so the whole ``pos_embed`` is the grid.
    :func:`convert_patch14_to_16` applies the same operations to a live timm ``VisionTransformer``
    (or ``Eva``; its RoPE grid is updated too) and updates the ``patch_embed`` bookkeeping so that
    ``model.forward_features`` works at ``img_size`` with 16-pixel patches.

Source: the official Rein code (github.com/w1oves/Rein), its patch-14 -> 16 conversion. Taught in notebooks/10_rein_g.ipynb.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["convert_patch14_to_16", "resize_patch_kernel", "resample_pos_grid"]


def _pair(x: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, int) else (int(x[0]), int(x[1]))


def resize_patch_kernel(weight: torch.Tensor, patch_size: Tuple[int, int]) -> torch.Tensor:
    """(C_out, C_in, 14, 14) -> (C_out, C_in, 16, 16), bicubic, align_corners=False, no rescale."""
    return F.interpolate(weight.float(), size=patch_size, mode="bicubic",
                         align_corners=False).to(weight.dtype)


def resample_pos_grid(pos_embed: torch.Tensor, num_prefix: int, old_grid: Tuple[int, int],
                      new_grid: Tuple[int, int]) -> torch.Tensor:
    """(1, P + gh*gw, C) -> (1, P + GH*GW, C): prefix rows kept, grid bicubic (no antialias)."""
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    c = grid.shape[-1]
    grid = grid.float().reshape(1, old_grid[0], old_grid[1], c).permute(0, 3, 1, 2)  # (1, C, gh, gw)
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False)  # (1, C, GH, GW)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], c)        # (1, GH*GW, C)
    return torch.cat([prefix, grid.to(pos_embed.dtype)], dim=1)


@torch.no_grad()
def convert_patch14_to_16(model: nn.Module, img_size: Union[int, Sequence[int]],
                          patch_size: int = 16) -> nn.Module:
    """Convert a timm ViT/Eva with 14-px patches to ``patch_size``-px patches at ``img_size`` in place.

    Returns the same ``model`` for chaining. ``img_size`` must be divisible by ``patch_size``.
    """
    pe = getattr(model, "patch_embed", None)
    proj = getattr(pe, "proj", None)
    if not isinstance(proj, nn.Conv2d):
        raise TypeError(f"{type(model).__name__} has no timm patch_embed.proj Conv2d; "
                        "expected a timm VisionTransformer or Eva")
    new_patch, img = _pair(patch_size), _pair(img_size)
    if tuple(pe.patch_size) == new_patch:
        raise ValueError(f"model already uses {new_patch} patches")
    if img[0] % new_patch[0] or img[1] % new_patch[1]:
        raise ValueError(f"img_size {img} is not divisible by the patch size {new_patch}")
    new_grid = (img[0] // new_patch[0], img[1] // new_patch[1])

    # 1) patch kernel: bicubic 14x14 -> 16x16, bias unchanged
    new_proj = nn.Conv2d(proj.in_channels, proj.out_channels, kernel_size=new_patch, stride=new_patch,
                         bias=proj.bias is not None, device=proj.weight.device, dtype=proj.weight.dtype)
    new_proj.weight.copy_(resize_patch_kernel(proj.weight, new_patch))
    new_proj.weight.requires_grad_(proj.weight.requires_grad)
    if proj.bias is not None:
        new_proj.bias.copy_(proj.bias)
        new_proj.bias.requires_grad_(proj.bias.requires_grad)
    new_proj.train(proj.training)
    pe.proj = new_proj

    # 2) absolute pos-embed: keep prefix rows, resample the grid to the new token grid
    pos = getattr(model, "pos_embed", None)
    if pos is not None:
        num_prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
        n_grid = pos.shape[1] - num_prefix
        old_grid = tuple(pe.grid_size) if pe.grid_size is not None else None
        if old_grid is None or old_grid[0] * old_grid[1] != n_grid:  # fall back to a square grid
            side = int(round(n_grid ** 0.5))
            if side * side != n_grid:
                raise ValueError(f"cannot infer the pos-embed grid from {n_grid} grid tokens")
            old_grid = (side, side)
        model.pos_embed = nn.Parameter(resample_pos_grid(pos.data, num_prefix, old_grid, new_grid),
                                       requires_grad=pos.requires_grad)

    # 3) bookkeeping that timm's forward / feature helpers read
    pe.patch_size = new_patch
    pe.img_size, pe.grid_size, pe.num_patches = img, new_grid, new_grid[0] * new_grid[1]
    if getattr(model, "rope", None) is not None and hasattr(model.rope, "update_feat_shape"):
        model.rope.update_feat_shape(list(new_grid))  # Eva RoPE: recompute for the new token grid
    for info in getattr(model, "feature_info", None) or []:
        if isinstance(info, dict) and "reduction" in info:
            info["reduction"] = new_patch[0]
    if hasattr(model, "patch_size"):
        model.patch_size = new_patch[0]
    try:  # record the new size in timm's reconstruction args (timm >= 1.0.20)
        from timm.models._input import update_model_input_size
        update_model_input_size(model, img, patch_size=new_patch)
    except ImportError:
        pass
    return model
