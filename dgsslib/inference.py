"""The default inference every model gets: whole-image or sliding-window class scores.

    whole: S = model.semantic_logits(x)
    slide: S = (Σ_windows pad(model.semantic_logits(x[win]))) / count      (crop 512, stride 341 in Rein)

A method or model may bring its own inference (VFMSeg's coarse-to-fine) by overriding
``SegModel.predict``; the evaluator only calls ``model.predict``. Taught in
``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import math

import torch

MODES = ("whole", "slide")


@torch.no_grad()
def slide_scores(model, images: torch.Tensor, crop: int, stride: int) -> torch.Tensor:
    """B×K×H×W class scores averaged over crop×crop windows every ``stride`` pixels."""
    B, _, H, W = images.shape
    ch, cw = min(crop, H), min(crop, W)
    ny = max(math.ceil((H - ch) / stride), 0) + 1
    nx = max(math.ceil((W - cw) / stride), 0) + 1
    probs = count = None
    for iy in range(ny):
        for ix in range(nx):
            y0 = min(iy * stride, H - ch)
            x0 = min(ix * stride, W - cw)
            p = model.semantic_logits(images[:, :, y0:y0 + ch, x0:x0 + cw]).float()  # summed as mmseg does
            if probs is None:
                probs = images.new_zeros((B, p.shape[1], H, W), dtype=torch.float32)
                count = images.new_zeros((1, 1, H, W), dtype=torch.float32)
            probs[:, :, y0:y0 + ch, x0:x0 + cw] += p
            count[:, :, y0:y0 + ch, x0:x0 + cw] += 1
    return probs / count


@torch.no_grad()
def default_predict(model, images: torch.Tensor, mode: str = "whole", crop: int = 512,
                    stride: int = 341) -> torch.Tensor:
    """B×K×H×W class scores at the input size by whole or sliding-window inference."""
    if mode == "slide":
        return slide_scores(model, images, crop, stride)
    if mode == "whole":
        return model.semantic_logits(images).float()
    raise ValueError(f"eval mode must be one of {', '.join(MODES)}, got {mode!r}")
