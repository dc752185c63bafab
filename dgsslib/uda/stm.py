"""Rein-A's Semantic Transfer Module: a mask-classification head whose queries are region masks.

Paper card
----------
Rein++ (Wei et al., https://arxiv.org/abs/2508.01667) §V-C, eq. 17-19, Algorithm 1 (grey lines);
no public code. Taught in ``notebooks/11_rein_a.ipynb``::

    M_stm(x, m) = M_stm(M_backbone(x), m),   m = SAM(x)                                   eq. 17
    L_stm_src  = L_mask-cls(M_stm[x_s, m_s], y_s)          L_stm_mix = L_ce(p_stmᵀ m_stm, y_mix)   eq. 18
    L_stm_mask = L_ce(p_mask, argmax p̂_stm) + L_mask(m_mask, m̂_stm)                        eq. 19

The paper gives no exact construction (Rein++ §IV-C); ours:

* **Features**: the *teacher's* backbone pyramid (frozen VFM + the teacher's Rein-G), detached --
  "the STM receives semantic features from the backbone of the teacher model". The STM trains
  (its own pixel decoder, transformer decoder, query embedding); nothing flows into the student.
* **Region queries**: each region mask is mask-average-pooled on every pyramid level (the mask
  area-resized to the level: its coverage of each cell is the pooling weight), the four pooled
  vectors concatenated and embedded by a Linear → 256: query_r = W·[pool(F_1, m_r), …, pool(F_4, m_r)] + b.
  They are the Mask2Former queries' positional part and, through ``querys2feat``, their content
  (the head's ``query_source="external"``, ``replace_query_feat=True`` -- the Rein link, with the
  Rein tokens replaced by region embeddings).
* **Count**: eq. 19 pairs student query i with STM query i, so the STM has exactly the student's
  Q queries: regions sorted by area (largest first) fill the slots, extra regions are dropped,
  empty slots get a learnable ``empty_query`` (they should learn "no object"). Student query i is
  therefore taught the i-th largest region of the image -- the literal reading of "query order".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..heads.mask2former import Mask2FormerHead


def masked_average_pool(feat: Tensor, masks: Tensor) -> Tensor:
    """feat B × C × h × w, masks B × R × H × W in [0, 1] → B × R × C: Σ_cells cov·f / Σ cov, with
    cov = the mask's coverage of each cell (area resize); 0 for an empty mask."""
    cov = F.interpolate(masks.float(), size=feat.shape[-2:], mode="area").flatten(2)   # B × R × hw
    num = torch.einsum("brn,bcn->brc", cov, feat.float().flatten(2))                    # B × R × C
    return num / cov.sum(-1, keepdim=True).clamp_min(1e-6)


class SemanticTransferModule(nn.Module):
    """Region-query Mask2Former on (detached) teacher features; see the module card."""

    def __init__(self, in_channels: list[int], num_queries: int = 100, num_classes: int = 19,
                 hidden_dim: int = 256, **head_options):
        super().__init__()
        self.num_queries = int(num_queries)
        self.region_embed = nn.Linear(sum(in_channels), hidden_dim)
        self.empty_query = nn.Parameter(torch.zeros(hidden_dim))
        self.head = Mask2FormerHead(in_channels, num_classes, self.num_queries, hidden_dim,
                                    query_source="external", replace_query_feat=True, **head_options)

    def queries(self, feats: list[Tensor], masks: Tensor, valid: Tensor) -> Tensor:
        """feats: the 4 pyramid maps; masks B × Q × H × W on the features' canvas; valid B × Q → B × Q × 256."""
        if masks.shape[1] != self.num_queries or valid.shape != masks.shape[:2]:
            raise ValueError(f"need {self.num_queries} region slots (masks B × Q × H × W, valid B × Q), "
                             f"got masks {tuple(masks.shape)}, valid {tuple(valid.shape)}")
        pooled = torch.cat([masked_average_pool(f.detach(), masks) for f in feats], -1)   # B × Q × ΣC
        q = self.region_embed(pooled)                                                    # B × Q × 256
        return torch.where(valid[..., None], q, self.empty_query.to(q.dtype).expand_as(q))

    def forward(self, feats: list[Tensor], masks: Tensor, valid: Tensor) -> dict:
        feats = [f.detach() for f in feats]
        return self.head(feats, queries=self.queries(feats, masks, valid))

    def loss(self, out: dict, labels: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """eq. 18, source: the Hungarian mask-classification loss (labels on the canvas)."""
        return self.head.loss(out, labels, generator=generator)


__all__ = ["SemanticTransferModule", "masked_average_pool"]
