"""Hungarian matching of predicted (class, mask) pairs to ground-truth segments.

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527, §3.3 and Appendix (matching cost
computed on K = 12544 uniformly sampled points shared by all predictions and targets); the
set-prediction recipe is DETR's / MaskFormer's (arXiv 2107.06278).  Taught in
notebooks/10_rein_g.ipynb.

Key equation, for prediction i and target j (with class c_j, binary mask g_j, sampled at the
same P points, m_i = mask logits)::

    C_ij = λ_cls · (−softmax(cls_i)[c_j])
         + λ_bce · (1/P) Σ_p BCEwithLogits(m_i(p), g_j(p))
         + λ_dice · (1 − (2 Σ_p σ(m_i(p)) g_j(p) + 1) / (Σ_p σ(m_i(p)) + Σ_p g_j(p) + 1))

with λ_cls = 2, λ_bce = λ_dice = 5; σ̂ = argmin_σ Σ_j C_{σ(j) j} by ``linear_sum_assignment``.
All costs are computed in float32 (safe under bf16 autocast).  ``match_outputs`` builds the
cost matrices of all decoder outputs and images on the device and copies them to the host in
one transfer, so a training step synchronises once for matching.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .point_sample import no_autocast, point_sample, rand_points


def match_cost(cls_logits: Tensor, mask_logits: Tensor, gt_labels: Tensor, gt_masks: Tensor,
               coords: Tensor, w_class: float = 2.0, w_mask: float = 5.0, w_dice: float = 5.0) -> Tensor:
    """Cost matrix Q × G.  cls_logits Q × (K+1); mask_logits Q × h × w; gt_labels G;
    gt_masks G × H × W (any resolution); coords P × 2 shared by predictions and targets."""
    prob = cls_logits.float().softmax(-1)                       # Q × (K+1)
    cost_class = -prob[:, gt_labels]                            # Q × G
    # Q × 1 × h × w read at Q × P × 2 → Q × 1 × P → Q × P
    pm = point_sample(mask_logits.float()[:, None], coords[None].expand(mask_logits.shape[0], -1, -1))[:, 0]
    gm = point_sample(gt_masks.float()[:, None], coords[None].expand(gt_masks.shape[0], -1, -1))[:, 0]  # G × P
    p = pm.shape[1]
    pos = F.binary_cross_entropy_with_logits(pm, torch.ones_like(pm), reduction="none")   # Q × P
    neg = F.binary_cross_entropy_with_logits(pm, torch.zeros_like(pm), reduction="none")  # Q × P
    cost_bce = (pos @ gm.T + neg @ (1 - gm).T) / p                                      # Q × G
    sig = pm.sigmoid()
    num = 2 * sig @ gm.T                                                                # Q × G
    den = sig.sum(-1)[:, None] + gm.sum(-1)[None, :]                                    # Q × G
    cost_dice = 1 - (num + 1.0) / (den + 1.0)
    return w_class * cost_class + w_mask * cost_bce + w_dice * cost_dice


class HungarianMatcher:
    """Per-image Hungarian matching; ``__call__`` returns (pred_idx, gt_idx) per image."""

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544):
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def costs(self, cls_logits: Tensor, mask_logits: Tensor, gt_labels: Tensor, gt_masks: Tensor,
              generator: torch.Generator | None = None) -> Tensor:
        """Q × G cost of one image, on fresh uniform points (float32, autocast off)."""
        coords = rand_points(1, self.num_points, cls_logits.device, generator)[0]  # P × 2
        with no_autocast(cls_logits.device):
            return match_cost(cls_logits, mask_logits, gt_labels, gt_masks, coords,
                              self.cost_class, self.cost_mask, self.cost_dice)

    def match_one(self, cls_logits: Tensor, mask_logits: Tensor, gt_labels: Tensor, gt_masks: Tensor,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(pred_idx, gt_idx) for one image."""
        return self.match_outputs([(cls_logits[None], mask_logits[None])], [gt_labels], [gt_masks], generator)[0][0]

    @torch.no_grad()
    def match_outputs(self, outputs: list[tuple[Tensor, Tensor]], gt_labels: list[Tensor], gt_masks: list[Tensor],
                      generator: torch.Generator | None = None) -> list[list[tuple[Tensor, Tensor]]]:
        """Match every (pred_logits B × Q × (K+1), pred_masks B × Q × h × w) output to the per-image
        targets.  All cost matrices are built on the device first and copied to the host in one
        transfer (one synchronisation per training step instead of one per output and image).
        Returns ``[output][image] → (pred_idx, gt_idx)``; draws one point set per (output, image)."""
        device = outputs[0][0].device
        costs = [self.costs(logits[b], masks[b], gt_labels[b], gt_masks[b], generator)
                 for logits, masks in outputs for b in range(logits.shape[0]) if gt_labels[b].numel()]
        flat = torch.cat([c.flatten() for c in costs]).cpu().numpy() if costs else None
        result, offset, empty = [], 0, torch.zeros(0, dtype=torch.long, device=device)
        for logits, _ in outputs:
            per_image = []
            for b in range(logits.shape[0]):
                g = gt_labels[b].numel()
                if g == 0:
                    per_image.append((empty, empty))
                    continue
                q = logits.shape[1]
                rows, cols = linear_sum_assignment(flat[offset:offset + q * g].reshape(q, g))
                offset += q * g
                per_image.append((torch.as_tensor(rows, dtype=torch.long).to(device, non_blocking=True),
                                  torch.as_tensor(cols, dtype=torch.long).to(device, non_blocking=True)))
            result.append(per_image)
        return result

    def __call__(self, pred_logits: Tensor, pred_masks: Tensor, gt_labels: list[Tensor],
                 gt_masks: list[Tensor], generator: torch.Generator | None = None) -> list[tuple[Tensor, Tensor]]:
        """pred_logits B × Q × (K+1); pred_masks B × Q × h × w; per-image targets."""
        return self.match_outputs([(pred_logits, pred_masks)], gt_labels, gt_masks, generator)[0]
