"""Class-agnostic region masks: the queries of Rein-A's Semantic Transfer Module (Rein++ eq. 17).

Paper card
----------
Rein++ (Wei et al., https://arxiv.org/abs/2508.01667) §V-C: the STM takes "segment masks from SAM
predictions" as queries; SAM2 masks are pre-computed offline (§VI-B7); Table XI: SAM1 75.5 vs
SAM2 76.9 mIoU. Taught in ``notebooks/11_rein_a.ipynb``.

A *region map* is an int64 tensor B × H × W of region ids (−1 = no region). Sources:

* ``oracle`` -- **a stand-in, named as such**: connected components of the label map of each class
  (class-agnostic segments that never cross a class boundary; touching instances of one class merge).
  Computed from the ground truth of the very crop the model sees, so it is an *upper bound* on what
  a class-agnostic segmenter can give (on the target it reads labels a real UDA run never has).
* ``slic`` -- **a stand-in, named as such**: SLIC superpixels (Achanta et al., TPAMI 2012) computed
  here in torch: k-means in CIELAB + xy with distance D² = d_lab² + (d_xy / S)² · m², S = √(HW/n),
  each centre searching a 2S × 2S window, ``iters`` rounds, no connectivity post-processing (a
  region can be split in pieces). A weak, realistic segmenter.
* ``sam2`` -- the paper's: SAM2 automatic masks (:mod:`dgsslib.uda.sam_regions`, needs the ``sam2``
  package and a user checkpoint; ``data_scripts/sam2_regions.py`` pre-computes them per image).

Mixed images get the source's regions where the ClassMix mask is 1 and the target's elsewhere
(:func:`mix_region_maps`; Rein++ §IV-C does not say): SAM cannot be rerun on a
pre-computed basis. :func:`region_masks` turns a map into at most ``R`` binary masks, largest first
(the order fixes which STM query is which; see :mod:`dgsslib.uda.stm`).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

IGNORE = 255


def oracle_regions(labels: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """B × H × W labels → region ids: 4-connected components of every class (ignore → −1)."""
    if labels.dim() != 3:
        raise ValueError(f"labels must be B × H × W, got {tuple(labels.shape)}")
    lab = labels.cpu().numpy()
    out = np.full(lab.shape, -1, dtype=np.int64)
    for b in range(lab.shape[0]):
        nxt = 0
        for c in np.unique(lab[b]):
            if c == ignore_index:
                continue
            comp, n = ndimage.label(lab[b] == c)          # 4-connectivity (the default structure)
            sel = comp > 0
            out[b][sel] = comp[sel] - 1 + nxt
            nxt += n
    return torch.from_numpy(out).to(labels.device)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """B × 3 × H × W sRGB in [0, 1] → CIELAB (D65): L ∈ [0, 100], a, b ≈ [−128, 127]."""
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]], dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor([0.950456, 1.0, 1.088754], dtype=x.dtype, device=x.device)[:, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    L = torch.where(xyz[:, 1] > 0.008856, 116 * f[:, 1] - 16, 903.3 * xyz[:, 1])
    return torch.stack([L, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


@torch.no_grad()
def slic_regions(images: torch.Tensor, n_segments: int = 48, compactness: float = 10.0,
                 iters: int = 10) -> torch.Tensor:
    """B × 3 × H × W images in [0, 1] → SLIC region ids B × H × W (see the module card)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be B × 3 × H × W in [0, 1], got {tuple(images.shape)}")
    if n_segments < 1 or iters < 1:
        raise ValueError(f"need n_segments ≥ 1 and iters ≥ 1, got {n_segments}, {iters}")
    B, _, H, W = images.shape
    lab = rgb_to_lab(images.float().cpu())                               # B × 3 × H × W
    S = max(1.0, (H * W / n_segments) ** 0.5)
    ys = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    xs = torch.arange(W, dtype=torch.float32)[None, :].expand(H, W)
    pos = torch.stack([ys, xs], -1).reshape(-1, 2)                       # P × 2
    gy = torch.arange(S / 2, H, S)
    gx = torch.arange(S / 2, W, S)
    centres_xy = torch.stack(torch.meshgrid(gy, gx, indexing="ij"), -1).reshape(-1, 2)  # N × 2
    out = torch.empty(B, H * W, dtype=torch.int64)
    for b in range(B):
        col = lab[b].reshape(3, -1).T                                    # P × 3
        cxy = centres_xy.clone()
        idx = cxy.round().long()
        ccol = lab[b][:, idx[:, 0].clamp(max=H - 1), idx[:, 1].clamp(max=W - 1)].T  # N × 3
        for _ in range(iters):
            dxy = (pos[:, None, :] - cxy[None]).abs()                    # P × N × 2
            d = ((col[:, None] - ccol[None]) ** 2).sum(-1) + (dxy ** 2).sum(-1) / S ** 2 * compactness ** 2
            d = d + (dxy > S).any(-1) * 1e12                             # only centres within the 2S window
            assign = d.argmin(1)                                         # P
            onehot = torch.zeros(pos.shape[0], cxy.shape[0]).scatter_(1, assign[:, None], 1.0)
            cnt = onehot.sum(0)
            keep = cnt > 0
            cxy[keep] = (onehot.T @ pos)[keep] / cnt[keep, None]
            ccol[keep] = (onehot.T @ col)[keep] / cnt[keep, None]
        out[b] = torch.unique(assign, return_inverse=True)[1]            # compact ids 0..n-1
    return out.reshape(B, H, W).to(images.device)


def mix_region_maps(src: torch.Tensor, tgt: torch.Tensor, mix_mask: torch.Tensor) -> torch.Tensor:
    """Regions of a ClassMix image: source ids where ``mix_mask`` is 1, target ids (shifted past the
    source's) elsewhere; −1 stays −1. All B × H × W."""
    if not (src.shape == tgt.shape == mix_mask.shape[-src.dim():]):
        raise ValueError(f"region maps {tuple(src.shape)}, {tuple(tgt.shape)} and mask {tuple(mix_mask.shape)} differ")
    m = mix_mask.reshape(src.shape).bool()
    shift = src.flatten(1).amax(1).clamp_min(-1)[:, None, None] + 1      # B × 1 × 1
    tgt = torch.where(tgt >= 0, tgt + shift, tgt)
    return torch.where(m, src, tgt)


def region_masks(region_map: torch.Tensor, max_regions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """B × H × W ids → (masks B × R × H × W float {0, 1}, valid B × R bool), R = ``max_regions``:
    the regions of each image sorted by area (largest first, ties by id), truncated to R, padded with
    empty masks (valid False)."""
    if region_map.dim() != 3 or max_regions < 1:
        raise ValueError(f"need a B × H × W map and max_regions ≥ 1, got {tuple(region_map.shape)}, {max_regions}")
    B, H, W = region_map.shape
    masks = torch.zeros(B, max_regions, H, W, device=region_map.device)
    valid = torch.zeros(B, max_regions, dtype=torch.bool, device=region_map.device)
    for b in range(B):
        ids, area = torch.unique(region_map[b][region_map[b] >= 0], return_counts=True)
        order = sorted(range(len(ids)), key=lambda i: (-int(area[i]), int(ids[i])))[:max_regions]
        for r, i in enumerate(order):
            masks[b, r] = (region_map[b] == ids[i]).float()
            valid[b, r] = True
    return masks, valid


REGION_SOURCES = ("oracle", "slic", "sam2")

__all__ = ["REGION_SOURCES", "oracle_regions", "slic_regions", "rgb_to_lab", "mix_region_maps", "region_masks"]
