"""Mask2Former's set criterion for semantic segmentation (mmseg/mmdet recipe, as used by Rein).

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527, §3.3 / §4.1: L = λ_ce L_ce +
λ_mask (L_bce + L_dice) on Hungarian-matched pairs, point-sampled mask losses (K = 12544,
importance sampling 3.0 / 0.75), no-object class weight 0.1, deep supervision on every
decoder output.  Taught in notebooks/10_rein_g.ipynb.

Key equations, with N = number of matched masks in the batch (≥ 1) and P points per mask::

    L_cls  = 2.0 · Σ_q w[y_q] · CE(cls_q, y_q) / Σ_q w[y_q],    w = [1]*K + [0.1]
    L_mask = 5.0 · Σ_{n,p} BCEwithLogits(m_n(p), g_n(p)) / (N · P)
    L_dice = 5.0 · Σ_n (1 − (2 Σ_p σ(m_n(p)) g_n(p) + 1) / (Σ_p σ(m_n(p)) + Σ_p g_n(p) + 1)) / N
    L      = Σ over the 10 outputs (equal weights) of L_cls + L_mask + L_dice

Semantic labels become one binary target per class present in the crop (255 excluded; ignored
pixels are negatives in every target, as mmseg).  Unmatched queries are labelled no-object.
All losses are computed in float32.  Under ``torch.distributed`` N is averaged over ranks.
Random draws (through the optional ``generator``): first the matcher's points for every
(output, image), then the importance-sampled loss points output by output.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .matcher import HungarianMatcher
from .point_sample import point_sample, uncertain_points


def semantic_to_targets(label: Tensor, ignore_index: int = 255) -> tuple[Tensor, Tensor]:
    """H × W trainIds → (classes G, binary masks G × H × W), one per class present (sorted)."""
    classes = torch.unique(label)
    classes = classes[classes != ignore_index]
    masks = label[None] == classes[:, None, None]  # G × H × W
    return classes.long(), masks


def class_ce(logits: Tensor, target: Tensor, no_object_weight: float) -> Tensor:
    """Σ_q w[y_q] · CE(cls_q, y_q) / Σ_q w[y_q] with w = [1]*K + [no_object_weight]; logits B × Q × (K+1)."""
    w = torch.ones(logits.shape[-1], device=logits.device)
    w[-1] = no_object_weight
    # B × Q × (K+1) → (B·Q) × (K+1)
    return F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), weight=w, reduction="sum") / w[target].sum()


def sampled_points(pred: Tensor, gt: Tensor, num_points: int, oversample_ratio: float,
                   importance_sample_ratio: float, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Mask logits N × h × w and targets N × H × W at the same importance-sampled points: (N × P, N × P)."""
    pred = pred.float()[:, None]                                                      # N × 1 × h × w
    coords = uncertain_points(pred.detach(), num_points, oversample_ratio, importance_sample_ratio, generator)
    with torch.no_grad():
        gt_pts = point_sample(gt.float()[:, None], coords)[:, 0]                      # N × P
    return point_sample(pred, coords)[:, 0], gt_pts


def dice_per_mask(pred_pts: Tensor, gt_pts: Tensor) -> Tensor:
    """1 − (2 Σ_p σ(m)·g + 1) / (Σ_p σ(m) + Σ_p g + 1), one value per mask (N × P → N)."""
    sig = pred_pts.sigmoid()
    return 1 - (2 * (sig * gt_pts).sum(-1) + 1.0) / (sig.sum(-1) + gt_pts.sum(-1) + 1.0)


class SetCriterion:
    def __init__(self, num_classes: int, matcher: HungarianMatcher | None = None,
                 class_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0,
                 no_object_weight: float = 0.1, num_points: int = 12544, oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75, ignore_index: int = 255):
        self.num_classes = num_classes
        self.matcher = matcher or HungarianMatcher(class_weight, mask_weight, dice_weight, num_points)
        self.class_weight, self.mask_weight, self.dice_weight = class_weight, mask_weight, dice_weight
        self.no_object_weight = no_object_weight
        self.num_points, self.oversample_ratio = num_points, oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.ignore_index = ignore_index

    def single(self, logits: Tensor, masks: Tensor, gt_labels: list[Tensor], gt_masks: list[Tensor],
               indices: list[tuple[Tensor, Tensor]], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Losses of one decoder output: logits B × Q × (K+1), masks B × Q × h × w, matched by
        ``indices`` (per image: pred_idx, gt_idx)."""
        b, nq, _ = logits.shape
        target = torch.full((b, nq), self.num_classes, dtype=torch.long, device=logits.device)
        for i, (src, tgt) in enumerate(indices):
            target[i, src] = gt_labels[i][tgt]
        loss_cls = class_ce(logits, target, self.no_object_weight)

        num_masks = torch.tensor(float(sum(len(s) for s, _ in indices)), device=logits.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num_masks)
            num_masks = num_masks / dist.get_world_size()
        num_masks = num_masks.clamp(min=1.0)
        pred = torch.cat([masks[i][src] for i, (src, _) in enumerate(indices)])      # N × h × w
        if pred.shape[0] == 0:
            zero = masks.float().sum() * 0.0
            return {"loss_cls": self.class_weight * loss_cls, "loss_mask": zero, "loss_dice": zero}
        gt = torch.cat([gt_masks[i][tgt] for i, (_, tgt) in enumerate(indices)])     # N × H × W
        pred_pts, gt_pts = sampled_points(pred, gt, self.num_points, self.oversample_ratio,
                                          self.importance_sample_ratio, generator)  # N × P each
        loss_mask = F.binary_cross_entropy_with_logits(pred_pts, gt_pts, reduction="sum") / (
            num_masks * self.num_points)
        loss_dice = dice_per_mask(pred_pts, gt_pts).sum() / num_masks
        return {"loss_cls": self.class_weight * loss_cls, "loss_mask": self.mask_weight * loss_mask,
                "loss_dice": self.dice_weight * loss_dice}

    def __call__(self, out: dict, labels: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """out: the head's output dict; labels B × H × W int64 with ``ignore_index``.
        Returns ``loss_cls/loss_mask/loss_dice`` (final output), ``d{i}.loss_*`` (aux output i)
        and ``loss`` (the sum of all)."""
        gt_labels, gt_masks = zip(*(semantic_to_targets(lab, self.ignore_index) for lab in labels))
        outputs = [(o["pred_logits"], o["pred_masks"]) for o in out.get("aux_outputs", [])]
        outputs.append((out["pred_logits"], out["pred_masks"]))
        # Hungarian matching of all outputs first (matcher points), then the losses (loss points)
        matches = self.matcher.match_outputs([(c.detach(), m.detach()) for c, m in outputs],
                                             gt_labels, gt_masks, generator)
        losses: dict[str, Tensor] = {}
        for i, ((cls, masks), idx) in enumerate(zip(outputs, matches)):
            prefix = "" if i == len(outputs) - 1 else f"d{i}."
            for k, v in self.single(cls, masks, gt_labels, gt_masks, idx, generator).items():
                losses[prefix + k] = v
        losses["loss"] = sum(losses.values())
        return losses
