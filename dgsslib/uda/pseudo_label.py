"""Rein-A pseudo-labels from a Mask2Former EMA teacher: semantic map, confidence weight, query targets.

Paper card
----------
Rein++ (Wei et al., https://arxiv.org/abs/2508.01667), §V (Rein-A) and Algorithm 1; DAFormer
(Hoyer et al., CVPR 2022, arXiv 2111.14887) Eq. 3-4 for the confidence weight; Mask2Former (Cheng
et al., CVPR 2022, arXiv 2112.01527) for the semantic inference and the mask losses.
Taught in notebooks/11_rein_a.ipynb.

Key equations (teacher outputs: class logits B × Q × (K+1), mask logits B × Q × h × w)::

    S[b,k,h,w]  = Σ_q softmax(cls[b,q])[k] · σ(mask[b,q,h,w]),   k < K (void dropped)   Alg. 1 l.10
    ŷ           = argmax_k S                                      (mix-branch label, Eq. 15)
    q_b         = #{(h,w): conf_b(h,w) > τ} / (H·W)               (DAFormer Eq. 3)
    w_b(h,w)    = q_b, 0 on the ignored top / bottom rows          (DAFormer Eq. 4, "croppl")
    L_mask      = Σ_q CE(p_q, argmax p̂_q) + 1[ĉ_q ≠ ∅] (BCE + dice)(m_q, m̂_q)   Eq. 16 (and 19)

Confidence score ``score`` (Rein++ does not say; DAFormer thresholds softmax probabilities).  S is *not* a distribution:
each S_k ∈ [0, Q] and Σ_k S_k ≠ 1 (§6.5), so DAFormer's max-softmax-probability has no direct
counterpart.  Options:

* ``"normalized"`` (default): conf = max_k S_k / Σ_k S_k, a proper distribution over the K
  classes; our first choice.  One class dominating gives conf ≈ 1 even when the
  winning query is only moderately confident, so τ = 0.968 keeps its DAFormer meaning
  ("share of pixels whose class distribution is nearly one-hot").  Caveat: the ratio ignores the
  void mass, so a pixel where every query is void-ish (all S_k tiny) can still score high.
* ``"raw"``: conf = max_k S_k ≈ p_class · σ(mask).  the alternative; it is a
  product of two probabilities, so (one query covering the pixel) both must exceed ≈ 0.984 to pass
  0.968 and q collapses towards 0 for a merely confident teacher (kept for the ablation).
* ``"softmax"``: conf = max_k softmax_k(S), i.e. S read as logits (the literal port of DAFormer's
  code).  With S ∈ [0, 1] and K = 19 the maximum is ≤ e/(e+18) ≈ 0.13, so q ≡ 0 and the mix
  branch is switched off; kept only to show that degeneracy.
* ``"mask_weighted"``: conf = max_k Σ_q p_qk σ(m_q) / Σ_q σ(m_q) = max_k S_k / Σ_q σ(m_q), the
  class probability of the queries covering the pixel, averaged with their mask weights; the void
  mass stays in the denominator (a pixel covered only by void-ish queries is *not* confident, the
  caveat of ``normalized``).  Needs ``mass`` = Σ_q σ(m_q) on S's grid.  A probability in DAFormer's
  sense (≤ 1, = 1 iff every covering query is sure of one class), but it depends on how many
  void-ish queries overlap a pixel: on three mini source-only teachers its share above 0.85 ranged
  0.00-0.37, so no single τ worked for every seed.

Choice per profile (configs/rein_a/*.yaml; notebook 11 §4 measures the four distributions on every
seed's source-only teacher): mini ``normalized`` with τ = 0.85 (q = 0.23-0.45 of the pixels, 90-99 %
of them correct, on each teacher); paper ``mask_weighted`` with DAFormer's τ = 0.968 (not measured:
no DINOv2-L teacher offline).

Values and sources: τ = 0.968 (DAFormer ``pseudo_threshold``, reference §4.1); ignore margins
15 top / 120 bottom rows of a 512 crop (DAFormer ``pseudo_weight_ignore_top/bottom``, Cityscapes
target only; 0 for ACDC / Dark Zurich, §4.1.5) - defaults here are 0; q is computed before the
margins are zeroed (§4.1.7); q is per image as in DAFormer Eq. 3 (``q_scope="batch"`` gives the
code's batch scalar, §4.1.3).  Query losses: class 2.0, mask (BCE) 5.0, dice 5.0, no-object class
weight 0.1 (Rein-G head config and Mask2Former criterion, §1 and §6.3); masks only on queries
whose teacher class is not void (Eq. 14's 1[c ≠ ∅]); binarised teacher masks σ > 0.5.  No matching: student query i is supervised by teacher query i (Eq. 16, "based on the
query order").  Mask losses are taken on
every pixel of the shared 1/4 grid by default (or the criterion's importance-sampled points): teacher
and student masks have the same h × w, so no memory is saved by sampling (128² = 16384 pixels vs
12544 points for a 512 crop), and bilinear point reads of a binarised same-grid target make every
edge soft, which puts a loss floor under a confident, correct student (tests show it).
``num_points=12544`` (oversample 3.0, importance 0.75, §6.3) reproduces the criterion exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..heads.mask2former.criterion import class_ce, dice_per_mask, sampled_points
from ..heads.mask2former.point_sample import no_autocast

SCORES = ("normalized", "raw", "softmax", "mask_weighted")


def _check_outputs(pred_logits: Tensor, pred_masks: Tensor) -> None:
    if pred_logits.dim() != 3 or pred_logits.shape[-1] < 2:
        raise ValueError(f"pred_logits must be B × Q × (K+1) with K ≥ 1, got {tuple(pred_logits.shape)}")
    if pred_masks.dim() != 4 or pred_masks.shape[:2] != pred_logits.shape[:2]:
        raise ValueError(f"pred_masks must be B × Q × h × w with the B, Q of pred_logits "
                         f"{tuple(pred_logits.shape[:2])}, got {tuple(pred_masks.shape)}")


def semantic_map(pred_logits: Tensor, pred_masks: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """S = softmax(cls)[..., :K]ᵀ · σ(masks) → B × K × H × W (float32, differentiable).

    Mask *logits* are resized bilinearly (align_corners=False) to ``size`` before the sigmoid, as
    Mask2Former's semantic inference and ``Mask2FormerHead.semantic_logits`` do; ``size=None``
    keeps the mask resolution."""
    _check_outputs(pred_logits, pred_masks)
    with no_autocast(pred_masks.device):
        masks = pred_masks.float()
        if size is not None and tuple(size) != tuple(masks.shape[-2:]):
            masks = F.interpolate(masks, size=tuple(size), mode="bilinear", align_corners=False)
        probs = pred_logits.float().softmax(-1)[..., :-1]                 # B × Q × K (void dropped)
        return torch.einsum("bqk,bqhw->bkhw", probs, masks.sigmoid())    # B × K × H × W


def confidence(S: Tensor, score: str = "normalized", mass: Tensor | None = None) -> Tensor:
    """Per-pixel confidence B × H × W of a semantic map S (B × K × H × W); see the module card.
    ``mass`` (B × H × W, Σ_q σ(m_q) on S's grid) is needed by ``mask_weighted`` only."""
    if score == "mask_weighted":
        if mass is None or tuple(mass.shape) != (S.shape[0], *S.shape[2:]):
            raise ValueError(f"score='mask_weighted' needs mass = Σ_q σ(m_q) of shape B × H × W = "
                             f"{(S.shape[0], *S.shape[2:])}, got {None if mass is None else tuple(mass.shape)}")
        return (S.amax(1) / mass.float().clamp_min(1e-6)).clamp(max=1.0)
    if score == "normalized":
        return S.amax(1) / S.sum(1).clamp_min(1e-12)
    if score == "raw":
        return S.amax(1)
    if score == "softmax":
        return S.softmax(1).amax(1)
    raise ValueError(f"score must be one of {SCORES}, got {score!r}")


@torch.no_grad()
def pseudo_labels(S: Tensor, tau: float = 0.968, score: str = "normalized", ignore_top: int = 0,
                  ignore_bottom: int = 0, q_scope: str = "image",
                  mass: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Teacher semantic map S (B × K × H × W) → (labels B × H × W long, weight B × H × W float, q B).

    labels = argmax_k S (no pixel is set to ignore, DAFormer); q_b = share of image b's pixels with
    confidence > ``tau``; weight = q_b everywhere except the first ``ignore_top`` and last
    ``ignore_bottom`` rows (0).  ``q_scope="batch"`` replaces every q_b by the batch share
    (DAFormer's code: one scalar over the whole batch tensor)."""
    if S.dim() != 4:
        raise ValueError(f"S must be B × K × H × W, got {tuple(S.shape)}")
    if not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if ignore_top < 0 or ignore_bottom < 0:
        raise ValueError(f"ignore margins must be ≥ 0, got top={ignore_top}, bottom={ignore_bottom}")
    if q_scope not in ("image", "batch"):
        raise ValueError(f"q_scope must be 'image' or 'batch', got {q_scope!r}")
    S = S.float()
    labels = S.argmax(1)                                                  # B × H × W
    passed = (confidence(S, score, mass) > tau).float()                         # B × H × W
    q = passed.mean(dim=(1, 2))                                           # B
    if q_scope == "batch":
        q = passed.mean().expand_as(q).clone()
    h = S.shape[-2]
    weight = q[:, None, None].expand_as(passed).clone()                   # B → B × H × W
    weight[:, : min(ignore_top, h)] = 0
    if ignore_bottom:
        weight[:, max(h - ignore_bottom, 0):] = 0
    return labels, weight, q


class QueryTargets(NamedTuple):
    """Teacher targets for the mask branch: per-query class (B × Q, index K = void) and per-query
    mask (B × Q × h × w, float: binary {0, 1} or soft σ)."""
    labels: Tensor
    masks: Tensor


@torch.no_grad()
def query_targets(pred_logits: Tensor, pred_masks: Tensor, binary: bool = True) -> QueryTargets:
    """Teacher (or STM) outputs → per-query hard class argmax over K+1 (void included) and the
    per-query mask σ(m) > 0.5 (``binary=False``: the soft σ(m)).  Detached, no gradient."""
    _check_outputs(pred_logits, pred_masks)
    masks = pred_masks.float().sigmoid()
    return QueryTargets(pred_logits.argmax(-1), (masks > 0.5).float() if binary else masks)


def query_losses(student_logits: Tensor, student_masks: Tensor, targets: QueryTargets,
                 class_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0,
                 no_object_weight: float = 0.1, num_points: int | None = None,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Rein-A mask-branch loss (Eq. 16 / 19): student query i vs target query i, no matching.

    loss_cls  = class_weight · Σ w[y] CE(cls_q, y_q) / Σ w[y],  w = [1]*K + [no_object_weight]
    loss_mask = mask_weight · Σ_n mean_p BCEwithLogits(m_n, t_n) / N
    loss_dice = dice_weight · Σ_n (1 − (2Σσ(m)t + 1) / (Σσ(m) + Σt + 1)) / N
    over the N ≥ 1 queries whose target class is not void; the points are every pixel
    (``num_points=None``, default: target masks must have the student's h × w) or the
    Mask2Former importance-sampled points (``num_points``, e.g. 12544, drawn from ``generator``).
    Returns the three terms and their sum ``loss``.
    Per-rank normalisation (no all-reduce of N); multiply by q outside if wanted (MIC's q̄)."""
    _check_outputs(student_logits, student_masks)
    labels, masks = targets
    if labels.shape != student_logits.shape[:2]:
        raise ValueError(f"target labels {tuple(labels.shape)} do not match the student's B × Q "
                         f"{tuple(student_logits.shape[:2])}")
    if masks.dim() != 4 or masks.shape[:2] != student_masks.shape[:2]:
        raise ValueError(f"target masks {tuple(masks.shape)} must be B × Q × h × w with the "
                         f"student's B × Q")
    if num_points is None and masks.shape[-2:] != student_masks.shape[-2:]:
        raise ValueError(f"num_points=None needs target masks at the student's resolution "
                         f"{tuple(student_masks.shape[-2:])}, got {tuple(masks.shape[-2:])}")
    k = student_logits.shape[-1] - 1
    labels = labels.to(student_logits.device).long()
    if labels.numel() and (labels.min() < 0 or labels.max() > k):
        raise ValueError(f"target labels must be in [0, {k}] (K = {k} is void)")
    with no_autocast(student_logits.device):
        # query i of the student against target i (no matching)
        loss_cls = class_ce(student_logits, labels, no_object_weight)
        keep = labels != k                                                # B × Q
        pred = student_masks.float()[keep]                                # N × h × w
        gt = masks.to(pred.device).float()[keep]                          # N × h' × w'
        n = keep.sum().float().clamp(min=1.0)
        if pred.shape[0] == 0:
            loss_mask = loss_dice = student_masks.float().sum() * 0.0
        else:
            if num_points is None:
                pred_p, gt_p = pred.flatten(1), gt.flatten(1)             # N × (h·w)
            else:
                pred_p, gt_p = sampled_points(pred, gt, num_points, oversample_ratio, importance_sample_ratio,
                                              generator)                  # N × P each
            loss_mask = F.binary_cross_entropy_with_logits(pred_p, gt_p, reduction="none").mean(-1).sum() / n
            loss_dice = dice_per_mask(pred_p, gt_p).sum() / n
        out = {"loss_cls": class_weight * loss_cls, "loss_mask": mask_weight * loss_mask,
               "loss_dice": dice_weight * loss_dice}
    out["loss"] = out["loss_cls"] + out["loss_mask"] + out["loss_dice"]
    return out


__all__ = ["SCORES", "semantic_map", "confidence", "pseudo_labels", "QueryTargets", "query_targets",
           "query_losses"]
