"""The segmentation model every paper uses: a VFM, a method plugged into it, and a decode head.

    logits = head( pyramid( VFM.forward_features(x, hooks=method.hooks()) ), queries=method.queries() )

A head that declares ``needs_pyramid = True`` (Mask2Former) gets the four same-stride ViT taps
as the 1/4, 1/8, 1/16, 1/32 maps it expects: bilinear ×4, ×2 (``size=``), ×1 and ×0.5
(``scale_factor=0.5``, as the official Rein code does; on odd grids this floors the size).
Inference goes through :meth:`SegModel.predict` (whole / slide by default), so a method can
bring its own (VFMSeg's coarse-to-fine). Labels are brought onto the patch-aligned canvas (pad with 255,
or nearest-resize) so the head's loss and the evaluator see the same geometry.
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .data.labels import IGNORE_INDEX
from .inference import default_predict


def feature_pyramid(taps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Four B×C×h×w taps -> [×4, ×2, ×1, ×0.5] bilinear (strides p/4 ... 2p), as Rein's code."""
    if len(taps) != 4:
        raise ValueError(f"the pyramid needs 4 taps, got {len(taps)}")
    h, w = taps[0].shape[-2:]
    up4 = F.interpolate(taps[0], size=(4 * h, 4 * w), mode="bilinear", align_corners=False)
    up2 = F.interpolate(taps[1], size=(2 * h, 2 * w), mode="bilinear", align_corners=False)
    down = F.interpolate(taps[3], scale_factor=0.5, mode="bilinear", align_corners=False)
    return [up4, up2, taps[2], down]


class SegModel(nn.Module):
    def __init__(self, vfm, method, head: nn.Module, pyramid: bool | None = None):
        super().__init__()
        if pyramid is None:
            pyramid = bool(getattr(head, "needs_pyramid", False))
        self.vfm, self.method, self.head, self.pyramid = vfm, method, head, pyramid
        if method.vfm is not vfm:  # attach once (LoRA/AdaptFormer wrap timm modules)
            method.attach(vfm)

    @property
    def names(self) -> dict:
        return {"backbone": self.vfm.name, "method": self.method.name, "head": type(self.head).__name__}

    def train(self, mode: bool = True):
        super().train(mode)
        self.method.train(mode)  # keeps a frozen VFM in eval mode
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        ctx = torch.no_grad() if self.method.backbone_no_grad else contextlib.nullcontext()
        with ctx:
            taps = self.vfm.forward_features(images, self.method.hooks())
        if self.method.backbone_no_grad:
            taps = [t.detach() for t in taps]
        return feature_pyramid(taps) if self.pyramid else taps

    def forward(self, images: torch.Tensor) -> dict:
        return self.head(self.features(images), queries=self.method.queries())

    def canvas_size(self, hw) -> tuple[int, int]:
        h, w = self.vfm.grid_size(tuple(hw))
        return h * self.vfm.patch_size, w * self.vfm.patch_size

    def to_canvas(self, maps: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """B×H×W labels or B×C×H×W masks -> the patch-aligned canvas the head predicts on: padded
        right/bottom with ``fill`` (pad mode) or nearest-resized (resize mode)."""
        ch, cw = self.canvas_size(maps.shape[-2:])
        if (ch, cw) == tuple(maps.shape[-2:]):
            return maps
        if self.vfm.pad_mode == "pad":
            return F.pad(maps, (0, cw - maps.shape[-1], 0, ch - maps.shape[-2]), value=fill)
        if maps.dim() == 3:  # B×H×W labels -> B×1×H×W floats for interpolate -> back
            return F.interpolate(maps[:, None].float(), size=(ch, cw), mode="nearest")[:, 0].long()
        return F.interpolate(maps, size=(ch, cw), mode="nearest")

    def canvas_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """B×H×W labels -> labels on the canvas (padding is ignored)."""
        return self.to_canvas(labels, IGNORE_INDEX)

    def loss(self, out: dict, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        return self.head.loss(out, self.canvas_labels(labels), generator=generator)

    def semantic_logits(self, images: torch.Tensor, out: dict | None = None) -> torch.Tensor:
        """B×K×H×W class scores at the input size."""
        out = self(images) if out is None else out
        hw = tuple(images.shape[-2:])
        canvas = self.head.semantic_logits(out, self.canvas_size(hw))
        if self.vfm.pad_mode == "pad":
            return canvas[..., : hw[0], : hw[1]]
        return F.interpolate(canvas, size=hw, mode="bilinear", align_corners=False)

    def predict(self, images: torch.Tensor, mode: str = "whole", crop: int = 512, stride: int = 341) -> torch.Tensor:
        """B×K×H×W class scores at the input size (whole or slide); a method with its own
        inference (``method.predict(model, images, mode, crop, stride)``) takes over."""
        if self.method.predict is not None:
            return self.method.predict(self, images, mode, crop, stride)
        return default_predict(self, images, mode, crop, stride)

    def predict_stats(self) -> dict:
        """Statistics of the inference since the last call (e.g. VFMSeg's refined-window share)."""
        return self.method.predict_stats() if self.method.predict_stats is not None else {}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint must hold: parameters that train + *persistent* head/method
        buffers (non-persistent ones -- cached bases, constants -- never enter a checkpoint)."""
        state = {n: p for n, p in self.named_parameters() if p.requires_grad}
        for prefix, mod in (("head.", self.head), ("method.", self.method)):
            persistent = set(mod.state_dict(keep_vars=True))
            state.update({prefix + n: b for n, b in mod.named_buffers() if n in persistent})
        return state


def build_model(cfg: dict, verbose: bool = True, depth: int | None = None) -> SegModel:
    """VFM + method + head from a resolved config (see :mod:`dgsslib.profiles`);
    ``depth`` builds a reduced-depth backbone (bench/tests)."""
    from .adapters import build_method
    from .backbones import load_vfm
    from .heads import build_head

    vfm = load_vfm(cfg["backbone"], weights=cfg["weights"], img_size=cfg.get("img_size"),
                   patch_size=cfg.get("patch_size"), depth=depth, pos_interp=cfg.get("pos_interp", "auto"),
                   verbose=verbose)
    method = build_method(cfg["method"], **cfg.get("method_options", {}))
    method.attach(vfm)
    head = build_head(cfg["head"], [vfm.embed_dim] * len(vfm.out_indices), queries=method.queries(),
                      **cfg.get("head_options", {}))
    return SegModel(vfm, method, head)
