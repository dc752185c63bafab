"""Point sampling and uncertainty-based importance sampling (PointRend style) for mask losses.

Paper card
----------
Mask2Former, Cheng et al., CVPR 2022, arXiv 2112.01527, §3.3 ("we compute the mask loss on K
randomly sampled points instead of the whole mask", K = 112² = 12544; importance sampling for
the loss, uniform sampling for the matcher); the sampler is PointRend's (Kirillov et al.,
CVPR 2020, arXiv 1912.08193).  Taught in notebooks/10_rein_g.ipynb.

Key rule: draw k·N candidates uniformly (k = oversample 3.0), keep the β·N most uncertain
(β = importance 0.75, uncertainty u = -|logit|), and add (1-β)·N fresh uniform points.

Coordinates are normalised (x, y) in [0, 1]; reads are bilinear with ``align_corners=False``
(pixel-centre convention), so a map of any resolution can be read at the same points.

Randomness: every draw goes through ``rand_points`` with an optional ``torch.Generator``; the
points are drawn on the generator's device and then moved, so a seeded generator reproduces
them exactly on any device.  Draw order in ``uncertain_points``: candidates, then the random
remainder.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor


def no_autocast(device: torch.device | str):
    """Context that turns autocast off on ``device`` (losses, matching costs, inference sums
    run in float32 even inside a bf16 training step)."""
    dev = torch.device(device).type
    return torch.autocast(dev, enabled=False) if dev in ("cpu", "cuda", "xpu", "mps") else contextlib.nullcontext()


def rand_points(n: int, num_points: int, device=None, generator: torch.Generator | None = None) -> Tensor:
    """Uniform points n × P × 2 in [0, 1)², reproducible through ``generator``."""
    if generator is None:
        return torch.rand(n, num_points, 2, device=device)
    pts = torch.rand(n, num_points, 2, generator=generator, device=generator.device)
    return pts.to(device) if device is not None else pts


def point_sample(maps: Tensor, coords: Tensor) -> Tensor:
    """Bilinear read of ``maps`` N × C × H × W at ``coords`` N × P × 2 (x, y in [0, 1]) → N × C × P."""
    grid = 2.0 * coords.to(maps.dtype) - 1.0  # [0,1] → [-1,1]
    # grid N × P × 2 → N × P × 1 × 2; output N × C × P × 1 → N × C × P
    return F.grid_sample(maps, grid.unsqueeze(2), mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(3)


def uncertainty(logits: Tensor) -> Tensor:
    """Higher for logits near the decision boundary: -|logit|."""
    return -logits.abs()


@torch.no_grad()
def uncertain_points(mask_logits: Tensor, num_points: int, oversample_ratio: float = 3.0,
                     importance_sample_ratio: float = 0.75,
                     generator: torch.Generator | None = None) -> Tensor:
    """Importance-sampled points for each of N mask-logit maps (N × 1 × H × W) → N × P × 2.

    The first ``int(importance_sample_ratio · P)`` points are the most uncertain of
    ``int(oversample_ratio · P)`` uniform candidates; the rest are fresh uniform points.
    """
    n = mask_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    cand = rand_points(n, num_sampled, mask_logits.device, generator)  # N × kP × 2
    u = uncertainty(point_sample(mask_logits.float(), cand))[:, 0]     # N × 1 × kP → N × kP
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = u.topk(num_uncertain, dim=1).indices                          # N × βP
    # gather the chosen candidates: N × βP → N × βP × 2
    chosen = cand.gather(1, idx[:, :, None].expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        chosen = torch.cat((chosen, rand_points(n, num_random, mask_logits.device, generator)), 1)
    return chosen
