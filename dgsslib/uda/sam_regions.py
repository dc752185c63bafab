"""SAM2 automatic masks as region maps: the paper's region source for Rein-A's STM (``regions: sam2``).

Paper card
----------
Rein++ (https://arxiv.org/abs/2508.01667) §V-C and Table XI (SAM2 76.9 vs SAM1 75.5 mIoU); SAM2
(Ravi et al., 2024, https://arxiv.org/abs/2408.00714). Taught in ``notebooks/11_rein_a.ipynb``.

No SAM/SAM2 weights exist offline, so nothing here runs in CI or the mini profile; the mini
stand-ins are ``oracle`` and ``slic`` (:mod:`dgsslib.uda.regions`). With the ``sam2`` package and a
checkpoint (``pip install sam2``; e.g. ``sam2.1_hiera_large.pt`` with
``configs/sam2.1/sam2.1_hiera_l.yaml``)::

    gen = SAM2Regions(checkpoint="sam2.1_hiera_large.pt", config="configs/sam2.1/sam2.1_hiera_l.yaml")
    region_map = gen(images)        # B × 3 × H × W in [0, 1] → B × H × W ids (−1 = no mask)

:func:`masks_to_region_map` is the one piece of logic of ours (tested): SAM returns overlapping
masks; they are painted largest first, so a smaller mask inside a larger one keeps its own id
(an object inside "background stuff"), and uncovered pixels stay −1.

The paper pre-computes the masks offline (no SAM cost in training); ``data_scripts/sam2_regions.py``
writes them per image (uint16 PNG, 0 = none, id+1 otherwise). Training here calls SAM2 on each crop
instead (``regions: sam2`` in the recipe): the masks then match the crop exactly, at the cost of
SAM's time per step -- the data pipeline does not carry per-image maps through the random
resize/crop yet (stated in ``configs/rein_a/paper_*.yaml``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def masks_to_region_map(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Boolean H × W masks (any order) → int64 ids H × W: painted by decreasing area, so smaller
    masks overwrite larger ones; −1 where no mask covers a pixel; ids 0..n−1 in painting order."""
    out = np.full(tuple(shape), -1, dtype=np.int64)
    for m in masks:
        if tuple(m.shape) != tuple(shape):
            raise ValueError(f"mask of shape {m.shape} for an image of shape {tuple(shape)}")
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    for new_id, i in enumerate(order):
        out[masks[i].astype(bool)] = new_id
    return out


def save_region_map(path: str | Path, region_map: np.ndarray) -> None:
    """uint16 PNG: 0 = no region, id + 1 otherwise (at most 65534 regions)."""
    from PIL import Image
    if region_map.max(initial=-1) >= 65535:
        raise ValueError("more than 65534 regions do not fit a uint16 PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((region_map + 1).astype(np.uint16)).save(path)


def load_region_map(path: str | Path) -> np.ndarray:
    """The inverse of :func:`save_region_map` (int64, −1 = no region)."""
    from PIL import Image
    return np.asarray(Image.open(path), dtype=np.int64) - 1


class SAM2Regions:
    """Region maps from SAM2's automatic mask generator (lazy import, clear errors)."""

    def __init__(self, checkpoint: str, config: str = "configs/sam2.1/sam2.1_hiera_l.yaml", device=None,
                 points_per_side: int = 32, pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95):
        if not checkpoint or not Path(checkpoint).is_file():
            raise FileNotFoundError(
                f"regions=sam2 needs a SAM2 checkpoint file (recipe option sam_checkpoint), got {checkpoint!r}. "
                "No SAM weights exist offline here: use regions=oracle or regions=slic (named stand-ins).")
        try:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
            from sam2.build_sam import build_sam2
        except ImportError as e:
            raise ImportError("regions=sam2 needs the sam2 package (pip install sam2)") from e
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.generator = SAM2AutomaticMaskGenerator(
            build_sam2(config, checkpoint, device=device), points_per_side=points_per_side,
            pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """B × 3 × H × W in [0, 1] → B × H × W region ids."""
        out = []
        for img in images:
            rgb = (img.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()   # 3×H×W → H×W×3
            masks = [m["segmentation"] for m in self.generator.generate(rgb)]
            out.append(torch.from_numpy(masks_to_region_map(masks, rgb.shape[:2])))
        return torch.stack(out).to(images.device)


__all__ = ["SAM2Regions", "masks_to_region_map", "save_region_map", "load_region_map"]
