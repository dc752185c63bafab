"""Mask2Former's MSDeformAttn pixel decoder: a 6-layer deformable encoder over strides 32/16/8
plus an FPN-style step up to the 1/4 mask features.

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527, §3.2 / §4 ("we use the multi-scale
deformable attention Transformer (MSDeformAttn) as the default pixel decoder").
Taught in notebooks/10_rein_g.ipynb.

Key equations (post-norm, dropout 0), for the flattened tokens z of the 3 coarsest levels
(coarsest first) with sine position + level embedding e::

    z ← LN(z + MSDeformAttn(z + e, p̂, z))
    z ← LN(z + W_2 ReLU(W_1 z))                      (FFN 256 → 1024 → 256)
    F_{1/4} = ReLU(GN(Conv3x3(GN(Conv1x1(x_{1/4})) + up2(z_{1/8}))))
    mask_features = Conv1x1(F_{1/4})

Outputs: ``mask_features`` (B × C × H/4 × W/4) and the 3 memories [1/32, 1/16, 1/8].
Init as mmdet: input projections xavier-uniform, lateral / output / mask-feature convs
"caffe2 xavier" (kaiming-uniform a=1), encoder matrices xavier-normal, then MSDeformAttn's own
init; the level embedding N(0, 1).  The level embedding is called ``level_encoding`` as in
mmdet, so a name-based "level_embed" weight-decay rule leaves it decayed, as upstream.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .msdeform_attn import MSDeformAttn
from .position import SinePositionalEncoding


def _conv_gn(cin: int, cout: int, k: int, bias: bool, groups: int = 32, relu: bool = False) -> nn.Sequential:
    """conv → GroupNorm (→ ReLU); children named ``conv`` / ``norm`` so that name-based
    no-weight-decay rules ("norm") catch the GroupNorm as well."""
    layers = OrderedDict(conv=nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias), norm=nn.GroupNorm(groups, cout))
    if relu:
        layers["act"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class DeformEncoderLayer(nn.Module):
    """MSDeformAttn self-attention + ReLU FFN, each followed by a LayerNorm (post-norm)."""

    def __init__(self, dim: int = 256, num_heads: int = 8, num_levels: int = 3, num_points: int = 4,
                 ffn_dim: int = 1024):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, num_heads, num_levels, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Linear(ffn_dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor, ref: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        x = self.norm1(self.self_attn(x, pos, x, ref, shapes))  # residual is inside MSDeformAttn
        return self.norm2(x + self.ffn(x))


class MSDeformAttnPixelDecoder(nn.Module):
    """in_channels: channels of the 4 inputs at strides 4, 8, 16, 32 (finest first)."""

    def __init__(self, in_channels: list[int], dim: int = 256, num_layers: int = 6, num_heads: int = 8,
                 ffn_dim: int = 1024, num_levels: int = 3, num_points: int = 4, gn_groups: int = 32):
        super().__init__()
        if len(in_channels) != num_levels + 1:
            raise ValueError(f"expected {num_levels + 1} input levels, got {len(in_channels)}")
        self.num_levels = num_levels
        # coarsest first: input_convs[i] projects feats[-1 - i]
        self.input_convs = nn.ModuleList(
            _conv_gn(c, dim, 1, bias=True, groups=gn_groups) for c in in_channels[::-1][:num_levels])
        self.level_encoding = nn.Embedding(num_levels, dim)
        self.position = SinePositionalEncoding(dim // 2, normalize=True)
        self.layers = nn.ModuleList(DeformEncoderLayer(dim, num_heads, num_levels, num_points, ffn_dim)
                                    for _ in range(num_layers))
        self.lateral_conv = _conv_gn(in_channels[0], dim, 1, bias=False, groups=gn_groups)
        self.output_conv = _conv_gn(dim, dim, 3, bias=False, groups=gn_groups, relu=True)
        self.mask_feature = nn.Conv2d(dim, dim, 1)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for seq in self.input_convs:
            nn.init.xavier_uniform_(seq.conv.weight)
            nn.init.zeros_(seq.conv.bias)
        for conv in (self.lateral_conv.conv, self.output_conv.conv, self.mask_feature):
            nn.init.kaiming_uniform_(conv.weight, a=1)  # "caffe2 xavier"
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.level_encoding.weight, 0.0, 1.0)
        for p in self.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        for layer in self.layers:
            layer.self_attn.reset_parameters()

    @staticmethod
    def _reference_points(shapes: list[tuple[int, int]], device) -> Tensor:
        """Pixel centres of every level, normalised to [0, 1] as (x, y): 1 × S × 2."""
        refs = []
        for h, w in shapes:
            ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
            xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # h × w each
            refs.append(torch.stack((xx, yy), -1).reshape(-1, 2))  # (h·w) × 2
        return torch.cat(refs, 0)[None]

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """feats: 4 maps B × C_i × h_i × w_i (strides 4, 8, 16, 32).
        Returns (mask_features B × C × h_4 × w_4, [memory_{1/32}, memory_{1/16}, memory_{1/8}])."""
        b = feats[0].shape[0]
        tokens, pos, shapes = [], [], []
        for i in range(self.num_levels):
            x = self.input_convs[i](feats[-1 - i])  # B × C × h × w
            h, w = x.shape[-2:]
            shapes.append((h, w))
            tokens.append(x.flatten(2).transpose(1, 2))  # B × C × h × w → B × hw × C
            p = self.position(h, w, x.device, x.dtype) + self.level_encoding.weight[i].view(1, -1, 1, 1).to(x.dtype)
            pos.append(p.flatten(2).transpose(1, 2))  # 1 × C × h × w → 1 × hw × C
        z = torch.cat(tokens, 1)  # B × S × C
        pos_all = torch.cat(pos, 1).expand(b, -1, -1)  # B × S × C
        ref = self._reference_points(shapes, z.device).expand(b, -1, -1)  # B × S × 2
        for layer in self.layers:
            z = layer(z, pos_all, ref, shapes)
        # B × S × C → split per level → B × C × h × w
        memories = [t.transpose(1, 2).reshape(b, -1, h, w)
                    for t, (h, w) in zip(z.split([h * w for h, w in shapes], 1), shapes)]
        lat = self.lateral_conv(feats[0])
        y = lat + F.interpolate(memories[-1], size=lat.shape[-2:], mode="bilinear", align_corners=False)
        y = self.output_conv(y)
        return self.mask_feature(y), memories
