"""MGRNet: refine a high-resolution crop's features with the coarse mask of the same region.

Paper card
----------
*Unleashing the Power of Visual Foundation Models for Generalizable Semantic Segmentation*
(VFMSeg, Tang et al., AAAI 2025; code https://github.com/tpy001/VFMSeg, ``VFMHead`` +
``MaskTransformerDecoder``), Fig. 3(b)-(d)::

    F  = GELU(GN32(Conv1×1(concat_k f_k)))                       4C -> 256, on the crop's token grid h×w
    Y  = GN(Conv1×1(GELU(GN(Conv2×2/2(GELU(GN(Conv2×2/2(up4(ŷ)))))))))   K -> 64 -> 128 -> 256, h×w
    F̂  = F ⊙ M + T ⊙ (1 − M),   M = [v > p], v ~ U(0,1) per position, p = 0.2   (training only)
    paper   : F′ = F̂ + softmax(Q Kᵀ / √d) V,   Q = Lin(F̂), K = Lin(Y), V = Lin(Y)     (one cross-attention)
    official: x = GN(F̂) as tokens; 3 × [x += SelfAttn(LN x); x += CrossAttn(LN x, Y); x += GEGLU-FFN(LN x)]
    ỹ  = Conv1×1(Dropout2d_0.1(F′))                              256 -> K, at the token grid (1/16 for patch 16)

ŷ are the coarse VFMNet *logits* of the crop's region (raw, no softmax), bilinearly resized to 4× the
token grid before the two 2×2 stride-2 convolutions (the paper names only those two; the GN/GELU and
the 1×1 conv are the code's). The official attention uses 8 heads × 64 (bias-free q/k/v, output
projection + dropout 0.1), a GEGLU feed-forward 256 -> 2·1024 -> 1024 -> 256 with dropout 0.1, the
residual stream starting from the GroupNormed F̂ and no final norm. ``decoder="paper"`` builds the
paper's single attention (d = ``paper_dim``; its Linear layers have biases). The masking positions
are drawn from the ``generator`` passed in (the trainer's per-step generator, so runs resume
exactly). Taught in ``notebooks/30_vfmseg.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import NUM_CLASSES
from .vfmnet import concat_taps, group_norm

DECODERS = ("official", "paper")


class Attention(nn.Module):
    """Multi-head attention, queries from ``x`` (B×N×D), keys/values from ``context`` (B×M×D_c)."""

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 8, head_dim: int = 64,
                 dropout: float = 0.1):
        super().__init__()
        inner, context_dim = heads * head_dim, context_dim or dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        B, N, _ = x.shape
        split = lambda t: t.reshape(B, t.shape[1], self.heads, self.head_dim).transpose(1, 2)  # noqa: E731  B×H×N×d
        q, k, v = split(self.to_q(x)), split(self.to_k(ctx)), split(self.to_v(ctx))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √d) v, d = head_dim
        return self.to_out(out.transpose(1, 2).reshape(B, N, -1))  # B×N×(H·d) -> B×N×D


class GEGLUFeedForward(nn.Module):
    """x -> Lin(Dropout(a · GELU(g))),  [a | g] = Lin(x)  (D -> 2·mult·D -> mult·D -> D)."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.1):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * mult * dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(self.drop(a * F.gelu(gate)))


class RefineBlock(nn.Module):
    """Pre-LN block: self-attention over F tokens, cross-attention to Y, GEGLU feed-forward."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1 = Attention(dim, None, heads, head_dim, dropout)
        self.attn2 = Attention(dim, dim, heads, head_dim, dropout)
        self.ff = GEGLUFeedForward(dim, 4, dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)  # Y is not LayerNormed (it was GroupNormed)
        return x + self.ff(self.norm3(x))


class PaperAttention(nn.Module):
    """F′ = F + softmax(Q Kᵀ / √d) V with Q = Lin(F), K = Lin(Y), V = Lin(Y) (the paper's Fig. 3(d))."""

    def __init__(self, dim: int, d: int = 256):
        super().__init__()
        self.d = d
        self.q, self.k, self.v = nn.Linear(dim, d), nn.Linear(dim, d), nn.Linear(dim, dim)

    def forward(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # B×N×D tokens
        w = torch.softmax(self.q(f) @ self.k(y).transpose(1, 2) / math.sqrt(self.d), dim=-1)  # B×N×M
        return f + w @ self.v(y)


class MGRNetDecoder(nn.Module):
    """(taps of a crop, coarse logits of that crop) -> refined B×K×h×w logits on the token grid."""

    needs_pyramid = False

    def __init__(self, in_channels: list[int], num_classes: int = NUM_CLASSES, channels: int = 256,
                 decoder: str = "official", mask_ratio: float = 0.2, depth: int = 3, heads: int = 8,
                 head_dim: int = 64, dropout: float = 0.1, paper_dim: int = 256):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if not 0.0 <= float(mask_ratio) < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if int(depth) < 1 or int(heads) < 1 or int(head_dim) < 1:
            raise ValueError("depth, heads and head_dim must be >= 1")
        c, k = int(channels), int(num_classes)
        self.decoder, self.mask_ratio, self.num_classes = decoder, float(mask_ratio), k
        self.fuse = nn.Sequential(nn.Conv2d(sum(in_channels), c, 1), group_norm(c), nn.GELU())
        self.mask_embed = nn.Sequential(
            nn.Conv2d(k, 64, 2, stride=2), group_norm(64), nn.GELU(),
            nn.Conv2d(64, 128, 2, stride=2), group_norm(128), nn.GELU(),
            nn.Conv2d(128, c, 1), group_norm(c))
        self.mask_token = nn.Parameter(torch.randn(1, c, 1, 1))
        if decoder == "official":
            self.norm_in = group_norm(c, eps=1e-6)
            self.blocks = nn.ModuleList(RefineBlock(c, int(heads), int(head_dim), dropout) for _ in range(int(depth)))
        else:
            self.attn = PaperAttention(c, int(paper_dim))
        self.drop = nn.Dropout2d(dropout)
        self.cls = nn.Conv2d(c, k, 1)
        nn.init.normal_(self.cls.weight, 0.0, 0.01)
        nn.init.zeros_(self.cls.bias)

    # ------------------------------------------------------------------ pieces
    def embed_mask(self, context: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Coarse logits B×K×H'×W' (any size) -> mask embedding Y, B×C×h×w."""
        if context.dim() != 4 or context.shape[1] != self.num_classes:
            raise ValueError(f"context must be B×{self.num_classes}×H×W coarse logits, got {tuple(context.shape)}")
        h, w = grid
        up = F.interpolate(context, size=(4 * h, 4 * w), mode="bilinear", align_corners=False)  # B×K×4h×4w
        return self.mask_embed(up.to(self.cls.weight.dtype))

    def mask_features(self, f: torch.Tensor, generator: torch.Generator | None = None,
                      active: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """F̂ = F ⊙ M + T ⊙ (1 − M), M = [v > p] per position; returns (F̂, M as B×1×h×w bool or None).

        ``active`` None = only in training mode; the draw is ``torch.rand(B, 1, h, w, generator=g)``
        (on the generator's device, then moved)."""
        on = self.training if active is None else bool(active)
        if not on or self.mask_ratio == 0.0:
            return f, None
        B, _, h, w = f.shape
        gdev = generator.device if generator is not None else f.device
        v = torch.rand(B, 1, h, w, generator=generator, device=gdev).to(f.device)
        keep = v > self.mask_ratio  # M
        return torch.where(keep, f, self.mask_token.to(f.dtype)), keep

    def attend(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The feature-to-semantics decoder on B×C×h×w maps (official blocks or the paper's attention)."""
        B, C, h, w = f.shape
        tokens = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731  B×C×h×w -> B×(h·w)×C
        ctx = tokens(y)
        if self.decoder == "official":
            x = tokens(self.norm_in(f))
            for blk in self.blocks:
                x = blk(x, ctx)
        else:
            x = self.attn(tokens(f), ctx)
        return x.transpose(1, 2).reshape(B, C, h, w)  # B×(h·w)×C -> B×C×h×w

    def forward(self, feats: list[torch.Tensor], context: torch.Tensor, generator: torch.Generator | None = None,
                mask: bool | None = None) -> dict:
        f = self.fuse(concat_taps(feats))                       # B×256×h×w
        y = self.embed_mask(context, tuple(f.shape[-2:]))       # B×256×h×w
        f, keep = self.mask_features(f, generator, mask)
        return {"logits": self.cls(self.drop(self.attend(f, y))), "keep": keep}  # B×K×h×w


__all__ = ["MGRNetDecoder", "Attention", "GEGLUFeedForward", "RefineBlock", "PaperAttention", "DECODERS"]
