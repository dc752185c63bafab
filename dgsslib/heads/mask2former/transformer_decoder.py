"""Mask2Former's masked-attention transformer decoder and its prediction heads.

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527, §3.2.1 (masked attention) and §3.2.2
(round-robin over the 1/32, 1/16, 1/8 memories, cross-attention before self-attention, no
dropout, learnable query features).  Taught in notebooks/10_rein_g.ipynb.

Key equation (masked attention, Eq. 2 of the paper), for layer l attending to level l mod 3::

    X_l = softmax(M_{l-1} + Q_l K_lᵀ) V_l + X_{l-1},
    M_{l-1}(x, y) = 0 if sigmoid(mask_{l-1})(x, y) ≥ 0.5 else -∞

where mask_{l-1} is the previous prediction bilinearly resized to that level's resolution.  A
query whose mask would block every key attends everywhere instead.  Each layer is
cross-attn → self-attn → FFN (2048, ReLU), each with a residual and a post-LayerNorm;
queries carry a positional embedding added to q (and k for self-attention); memories carry a
sine encoding + a learnable level embedding.  A shared final LayerNorm feeds
``cls_embed`` (Linear C → K+1) and ``mask_embed`` (3-layer MLP); masks are
``einsum(mask_embed(q), mask_features)``.  Predictions are made before the first layer and after
each of the L layers → L + 1 outputs (10 for L = 9).

Init as mmdet: every matrix (dim > 1) of the decoder layers is xavier-*normal*; the level
embedding, ``cls_embed`` and ``mask_embed`` keep PyTorch's defaults.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .position import SinePositionalEncoding


@torch.no_grad()
def attention_mask(mask_logits: Tensor, size: tuple[int, int], num_heads: int) -> Tensor:
    """Masked-attention mask from mask logits B × Q × h4 × w4 → (B·M) × Q × (h·w), True = blocked.

    Logits are bilinearly resized to ``size`` and blocked where σ < 0.5; a query whose row would
    be fully blocked is unblocked everywhere (it would otherwise produce NaNs)."""
    small = F.interpolate(mask_logits.float(), size=size, mode="bilinear", align_corners=False)
    blocked = small.flatten(2).sigmoid() < 0.5  # B × Q × hw
    blocked = blocked & ~blocked.all(-1, keepdim=True)
    b, nq, hw = blocked.shape
    # B × Q × hw → B × M × Q × hw → (B·M) × Q × hw (batch-major, as nn.MultiheadAttention wants)
    return blocked[:, None].expand(b, num_heads, nq, hw).reshape(b * num_heads, nq, hw)


class MaskedAttentionLayer(nn.Module):
    def __init__(self, dim: int = 256, num_heads: int = 8, ffn_dim: int = 2048):
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Linear(ffn_dim, dim))
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, q: Tensor, q_pos: Tensor, mem: Tensor, mem_pos: Tensor, attn_mask: Tensor) -> Tensor:
        """q, q_pos: B × Q × C; mem, mem_pos: B × HW × C; attn_mask: (B·M) × Q × HW, True = blocked."""
        x = self.cross_attn(q + q_pos, mem + mem_pos, mem, attn_mask=attn_mask, need_weights=False)[0]
        q = self.norm1(q + x)
        qk = q + q_pos
        q = self.norm2(q + self.self_attn(qk, qk, q, need_weights=False)[0])
        return self.norm3(q + self.ffn(q))


class MaskedTransformerDecoder(nn.Module):
    def __init__(self, num_classes: int, dim: int = 256, num_layers: int = 9, num_heads: int = 8,
                 ffn_dim: int = 2048, num_levels: int = 3):
        super().__init__()
        self.num_heads, self.num_levels = num_heads, num_levels
        self.layers = nn.ModuleList(MaskedAttentionLayer(dim, num_heads, ffn_dim) for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(dim)
        self.level_embed = nn.Embedding(num_levels, dim)
        self.position = SinePositionalEncoding(dim // 2, normalize=True)
        self.cls_embed = nn.Linear(dim, num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim),
                                        nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for p in self.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def predict(self, q: Tensor, mask_features: Tensor, attn_size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Returns class logits B × Q × (K+1), mask logits B × Q × h4 × w4 and the attention mask
        for the next layer, (B·M) × Q × (h·w) at ``attn_size`` (True = blocked)."""
        q = self.post_norm(q)
        cls = self.cls_embed(q)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), mask_features)
        blocked = attention_mask(masks, attn_size, self.num_heads)
        return cls, masks, blocked

    def forward(self, query_feat: Tensor, query_pos: Tensor, mask_features: Tensor,
                memories: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """query_feat, query_pos: B × Q × C; mask_features: B × C × h4 × w4;
        memories: [B × C × h × w] × num_levels, coarsest first.  Returns L + 1 (cls, mask) pairs."""
        mems, mem_pos, sizes = [], [], []
        for i, m in enumerate(memories):
            h, w = m.shape[-2:]
            sizes.append((h, w))
            # B × C × h × w → B × hw × C, plus the level embedding
            mems.append(m.flatten(2).transpose(1, 2) + self.level_embed.weight[i].to(m.dtype))
            mem_pos.append(self.position(h, w, m.device, m.dtype).flatten(2).transpose(1, 2))  # 1 × hw × C
        q = query_feat
        cls, masks, blocked = self.predict(q, mask_features, sizes[0])
        outputs = [(cls, masks)]
        for i, layer in enumerate(self.layers):
            lvl = i % self.num_levels
            q = layer(q, query_pos, mems[lvl], mem_pos[lvl], blocked)
            cls, masks, blocked = self.predict(q, mask_features, sizes[(i + 1) % self.num_levels])
            outputs.append((cls, masks))
        return outputs
