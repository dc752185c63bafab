"""The Mask2Former head as used by Rein / Rein++ (``ReinMask2FormerHead``): pixel decoder +
masked-attention decoder + set criterion + semantic inference, with optional external queries.

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527; Rein ("Stronger, Fewer, & Superior",
CVPR 2024, arXiv 2312.04265) / Rein++ §IV-B link the Rein tokens to the object queries.
Taught in notebooks/10_rein_g.ipynb.

Key equations::

    semantic logits  S = Σ_q softmax(cls_q)[:K] · σ(up(mask_q))           (B × K × H × W)
    Rein link        query_pos = Q_rein (m × 256, broadcast over the batch)
                     query_feat = querys2feat(Q_rein)   (replace_query_feat=True)
                              or  a learnable Embedding (replace_query_feat=False, SAM config)

``query_source="learned"`` is the plain Mask2Former (learnable ``query_feat`` and
``query_embed``).  Paper config (in_channels [1024]*4, K = 19, Q = 100, 6 enc / 9 dec layers,
external queries + querys2feat): 20,579,796 parameters (see tests/test_mask2former.py).
The transformer decoder's input projections are identities (``enforce_decoder_input_project``
is False upstream because the memories are already 256-d).

Init (mmdet): transformer-decoder layer matrices xavier-*normal*; pixel-decoder encoder
matrices xavier-normal then MSDeformAttn's own init (value/output projections xavier-uniform);
input projections xavier-uniform; lateral/output/mask-feature convs kaiming-uniform(a=1);
query / level embeddings, ``querys2feat``, ``cls_embed`` and ``mask_embed`` PyTorch defaults.
``hidden_dim`` must be divisible by 32 (GroupNorm(32)) and by ``num_heads``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .criterion import SetCriterion
from .matcher import HungarianMatcher
from .pixel_decoder import MSDeformAttnPixelDecoder
from .point_sample import no_autocast
from .transformer_decoder import MaskedTransformerDecoder


class Mask2FormerHead(nn.Module):
    needs_pyramid = True  # strides p/4 ... 2p from the four taps (SegModel builds them)

    #: bounds checked with the config (``dgsslib.engine.validation``); types come from the annotations below
    option_ranges = {k: (1, None) for k in ("num_classes", "num_queries", "hidden_dim", "enc_layers", "dec_layers",
                                            "num_heads", "dim_feedforward", "enc_ffn", "num_points_train")} | {
        "oversample_ratio": (1, None), "importance_sample_ratio": (0, 1), "class_weight": (0, None),
        "mask_weight": (0, None), "dice_weight": (0, None), "no_object_weight": (0, None), "ignore_index": (0, 255)}

    def __init__(self, in_channels: list[int], num_classes: int = 19, num_queries: int = 100,
                 hidden_dim: int = 256, enc_layers: int = 6, dec_layers: int = 9, num_heads: int = 8,
                 dim_feedforward: int = 2048, enc_ffn: int = 1024, num_points_train: int = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 class_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0,
                 no_object_weight: float = 0.1, query_source: str = "learned",
                 replace_query_feat: bool = True, ignore_index: int = 255):
        super().__init__()
        if query_source not in ("learned", "external"):
            raise ValueError(f"query_source must be 'learned' or 'external', got {query_source!r}")
        if len(in_channels) != 4:
            raise ValueError(f"expected 4 feature maps (strides 4, 8, 16, 32), got {len(in_channels)}")
        self.num_classes, self.num_queries, self.hidden_dim = num_classes, num_queries, hidden_dim
        self.query_source, self.replace_query_feat = query_source, replace_query_feat
        self.pixel_decoder = MSDeformAttnPixelDecoder(in_channels, hidden_dim, enc_layers, num_heads, enc_ffn,
                                                      num_levels=3, num_points=4)
        self.transformer_decoder = MaskedTransformerDecoder(num_classes, hidden_dim, dec_layers, num_heads,
                                                            dim_feedforward, num_levels=3)
        if query_source == "learned":
            self.query_feat = nn.Embedding(num_queries, hidden_dim)
            self.query_embed = nn.Embedding(num_queries, hidden_dim)
        elif replace_query_feat:
            self.querys2feat = nn.Linear(hidden_dim, hidden_dim)
        else:
            self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.criterion = SetCriterion(
            num_classes, HungarianMatcher(class_weight, mask_weight, dice_weight, num_points_train),
            class_weight, mask_weight, dice_weight, no_object_weight, num_points_train, oversample_ratio,
            importance_sample_ratio, ignore_index)

    def _queries(self, b: int, queries: Tensor | None, ref: Tensor) -> tuple[Tensor, Tensor]:
        """Content queries and query positional embeddings, both B × Q × C."""
        if self.query_source == "learned":
            if queries is not None:
                raise ValueError("this head was built with query_source='learned'; pass queries=None "
                                 "or build it with query_source='external'")
            feat, pos = self.query_feat.weight, self.query_embed.weight  # Q × C each
        else:
            if queries is None:
                raise ValueError("query_source='external' needs the Rein queries (Q × C)")
            if queries.shape[-2:] != (self.num_queries, self.hidden_dim):
                raise ValueError(
                    f"external queries have shape {tuple(queries.shape)} but the head expects "
                    f"[{self.num_queries}, {self.hidden_dim}]: num_queries must equal the Rein token "
                    f"length and query_dims must equal hidden_dim")
            pos = queries
            feat = self.querys2feat(queries) if self.replace_query_feat else self.query_feat.weight
        # Q × C (or B × Q × C) → B × Q × C
        pos = pos.to(ref.dtype).expand(b, -1, -1) if pos.dim() == 2 else pos.to(ref.dtype)
        feat = feat.to(ref.dtype).expand(b, -1, -1) if feat.dim() == 2 else feat.to(ref.dtype)
        return feat, pos

    def forward(self, feats: list[Tensor], queries: Tensor | None = None) -> dict:
        """feats: 4 maps B × C_i × h_i × w_i at strides 4, 8, 16, 32; queries: None or Q × C
        (image-independent Rein queries; B × Q × C is accepted too)."""
        if len(feats) != 4:
            raise ValueError(f"expected 4 feature maps, got {len(feats)}")
        mask_features, memories = self.pixel_decoder(feats)
        feat, pos = self._queries(feats[0].shape[0], queries, mask_features)
        outs = self.transformer_decoder(feat, pos, mask_features, memories)
        aux = [{"pred_logits": c, "pred_masks": m} for c, m in outs[:-1]]
        return {"pred_logits": outs[-1][0], "pred_masks": outs[-1][1], "aux_outputs": aux}

    def loss(self, out: dict, labels: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """labels: B × H × W int64 trainIds (ignore_index = 255) at the input resolution."""
        with no_autocast(labels.device):
            return self.criterion(out, labels, generator)

    @staticmethod
    def semantic_logits(out: dict, size: tuple[int, int]) -> Tensor:
        """B × K × H × W = Σ_q softmax(cls)[..., :K] · σ(mask upsampled bilinearly to ``size``)."""
        with no_autocast(out["pred_masks"].device):
            masks = F.interpolate(out["pred_masks"].float(), size=tuple(size), mode="bilinear", align_corners=False)
            probs = out["pred_logits"].float().softmax(-1)[..., :-1]  # B × Q × K
            return torch.einsum("bqc,bqhw->bchw", probs, masks.sigmoid())
