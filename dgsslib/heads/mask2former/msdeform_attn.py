"""Multi-scale deformable attention (MSDeformAttn) in pure PyTorch, via ``F.grid_sample``.

Paper card
----------
Deformable DETR (Zhu et al., ICLR 2021, arXiv 2010.04159) introduced the operator; Mask2Former
(Cheng et al., CVPR 2022, arXiv 2112.01527) uses it in its pixel decoder (6 layers, 8 heads,
3 levels, 4 points, 256-d).  Taught in notebooks/10_rein_g.ipynb.

Key equation, for a query q with reference point p̂_q ∈ [0, 1]² (x, y) and multi-level values x^l::

    MSDeformAttn(z_q, p̂_q, {x^l}) = W_o Σ_m [ Σ_l Σ_k A_mlqk · W_v x^l(p̂_q + Δp_mlqk / (W_l, H_l)) ]_m

where the offsets Δp (in pixels of level l) and the weights A (softmax over the L·K samples of
each head m) are both linear functions of z_q (+ its positional embedding), and x^l(·) is a
bilinear read with zero padding.  ``grid_sample`` with ``align_corners=False`` uses the
pixel-centre convention: normalised coordinate u ∈ [0, 1] maps to pixel ``u · W - 0.5``, so the
grid is ``2u - 1``.

Init (Deformable DETR / mmcv): sampling-offset weights 0 and biases point the 8 heads in 8
compass directions at distances 1..K pixels; attention weights and bias 0 (uniform weights);
value / output projections xavier-uniform with bias 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ms_deform_attn_sample(value: Tensor, spatial_shapes: list[tuple[int, int]],
                          sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """The core read: bilinear samples at the given locations, weighted and summed.

    value: B × S × M × D (S = Σ_l H_l·W_l, levels concatenated in ``spatial_shapes`` order)
    sampling_locations: B × Nq × M × L × K × 2, normalised (x, y) in [0, 1]
    attention_weights: B × Nq × M × L × K (already softmax-normalised)
    returns: B × Nq × (M·D)
    """
    b, _, m, d = value.shape
    _, nq, _, n_levels, n_points, _ = sampling_locations.shape
    value = value.float()
    grids = 2.0 * sampling_locations.float() - 1.0  # [0,1] → [-1,1] for grid_sample
    sizes = [h * w for h, w in spatial_shapes]
    sampled = []
    for lvl, (v_l, (h, w)) in enumerate(zip(value.split(sizes, dim=1), spatial_shapes)):
        # B × HW × M × D → B × M × D × HW → (B·M) × D × H × W
        v_l = v_l.permute(0, 2, 3, 1).reshape(b * m, d, h, w)
        # B × Nq × M × K × 2 → B × M × Nq × K × 2 → (B·M) × Nq × K × 2
        g_l = grids[:, :, :, lvl].transpose(1, 2).reshape(b * m, nq, n_points, 2)
        # → (B·M) × D × Nq × K
        sampled.append(F.grid_sample(v_l, g_l, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))
    # (B·M) × D × Nq × (L·K)
    sampled = torch.stack(sampled, dim=-2).flatten(-2)
    # B × Nq × M × L × K → B × M × Nq × (L·K) → (B·M) × 1 × Nq × (L·K)
    weights = attention_weights.float().transpose(1, 2).reshape(b * m, 1, nq, n_levels * n_points)
    out = (sampled * weights).sum(-1)  # (B·M) × D × Nq
    # (B·M) × D × Nq → B × (M·D) × Nq → B × Nq × (M·D)
    return out.view(b, m * d, nq).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention with the residual inside (mmcv convention).

    ``forward`` returns ``query + W_o(...)``; the caller applies the post-norm.
    """

    def __init__(self, embed_dim: int = 256, num_heads: int = 8, num_levels: int = 3,
                 num_points: int = 4):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)  # M × 2
        grid = grid / grid.abs().max(-1, keepdim=True)[0]     # onto the unit square's border
        # M × 2 → M × L × K × 2, point k at distance (k + 1)
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: Tensor, query_pos: Tensor | None, value: Tensor,
                reference_points: Tensor, spatial_shapes: list[tuple[int, int]]) -> Tensor:
        """query: B × Nq × C; value: B × S × C; reference_points: B × Nq × 2 (shared by all
        levels) or B × Nq × L × 2, normalised (x, y) in [0, 1].  Returns B × Nq × C."""
        b, nq, _ = query.shape
        m, n_levels, k = self.num_heads, self.num_levels, self.num_points
        if len(spatial_shapes) != n_levels:
            raise ValueError(f"expected {n_levels} levels, got {len(spatial_shapes)}")
        q = query if query_pos is None else query + query_pos
        v = self.value_proj(value)
        v = v.view(b, v.shape[1], m, self.embed_dim // m)  # B × S × C → B × S × M × D
        # B × Nq × (M·L·K·2) → B × Nq × M × L × K × 2
        offsets = self.sampling_offsets(q).view(b, nq, m, n_levels, k, 2).float()
        # B × Nq × (M·L·K) → softmax over L·K → B × Nq × M × L × K
        attn = self.attention_weights(q).view(b, nq, m, n_levels * k).float().softmax(-1)
        attn = attn.view(b, nq, m, n_levels, k)
        if reference_points.dim() == 3:  # B × Nq × 2 → B × Nq × L × 2
            reference_points = reference_points[:, :, None, :].expand(-1, -1, n_levels, -1)
        # offsets are in pixels of each level: divide by (W_l, H_l)
        normalizer = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=torch.float32,
                                  device=query.device)  # L × 2
        loc = (reference_points.float()[:, :, None, :, None, :]
               + offsets / normalizer[None, None, None, :, None, :])  # B × Nq × M × L × K × 2
        out = ms_deform_attn_sample(v, spatial_shapes, loc, attn).to(v.dtype)  # B × Nq × C
        return query + self.output_proj(out)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"num_levels={self.num_levels}, num_points={self.num_points}")
