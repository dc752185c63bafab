"""Sine positional encoding for 2-D feature maps (the DETR / Mask2Former flavour).

Paper card
----------
Mask2Former: "Masked-attention Mask Transformer for Universal Image Segmentation",
Cheng et al., CVPR 2022, arXiv 2112.01527 (the encoding itself is DETR's, arXiv 2005.12872).
Taught in notebooks/10_rein_g.ipynb.

Key equation (normalize=True, scale s = 2π, temperature T = 10000, F = num_feats)::

    y' = y / (H + eps) · s,   x' = x / (W + eps) · s        (y = 1..H, x = 1..W)
    dim_t[k] = T ** (2 · floor(k / 2) / F),                  k = 0..F-1
    PE_y = interleave(sin(y' / dim_t[0::2]), cos(y' / dim_t[1::2]))   → F channels
    PE   = concat(PE_y, PE_x)                                          → 2F channels

With F = 128 this gives the 256-d embedding used by both the pixel decoder and the
transformer decoder.  No padding masks are used by the kit (crops are never padded inside a
batch), so the cumulative sums of DETR reduce to the plain ``1..H`` / ``1..W`` ramps.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SinePositionalEncoding(nn.Module):
    """Parameter-free 2-D sine encoding with ``2 * num_feats`` channels."""

    def __init__(self, num_feats: int = 128, temperature: float = 10000.0, normalize: bool = True,
                 scale: float = 2 * math.pi, eps: float = 1e-6):
        super().__init__()
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps

    def forward(self, height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
        """Return the encoding as ``1 × 2F × H × W`` (batch-independent: broadcast it)."""
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)  # H
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)   # W
        if self.normalize:
            y = y / (height + self.eps) * self.scale
            x = x / (width + self.eps) * self.scale
        k = torch.arange(self.num_feats, dtype=torch.float32, device=device)  # F
        dim_t = self.temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / self.num_feats)
        pos_y = y[:, None] / dim_t  # H × F
        pos_x = x[:, None] / dim_t  # W × F
        # interleave sin (even channels) and cos (odd channels): stack → H × F/2 × 2 → H × F
        pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
        pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
        # broadcast to H × W × F each, concat (y first, as DETR) → H × W × 2F → 1 × 2F × H × W
        pos = torch.cat((pos_y[:, None, :].expand(height, width, -1),
                         pos_x[None, :, :].expand(height, width, -1)), dim=2)
        return pos.permute(2, 0, 1).unsqueeze(0).to(dtype)

    def extra_repr(self) -> str:
        return f"num_feats={self.num_feats}, temperature={self.temperature}, normalize={self.normalize}"
