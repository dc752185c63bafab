"""VFMSeg's two-view training step: a global view through VFMNet, a high-resolution crop through MGRNet.

Paper card: *Unleashing the Power of Visual Foundation Models for Generalizable Semantic
Segmentation* (VFMSeg, Tang et al., AAAI 2025; code https://github.com/tpy001/VFMSeg,
``MsVFMEncoderDecoder.forward_train``), eq. 1-2. Per iteration, on the augmented training crop x (1024²
in the official GTAV pipeline) with labels y::

    x_g = resize(x, ×0.5) (bilinear),  y_g = resize(y, ×0.5) (nearest)          global view (512²)
    ŷ_g = f_θ(x_g);                    L_c = CE(up(ŷ_g), y_g)                    content loss (VFMNet)
    box = random hr_crop² box of x (512), offsets multiples of ``divisor`` (32)     one box per batch
    ctx = sg( up(ŷ_g) )[box × 0.5]     (detached: no gradient into VFMNet through the context)
    ỹ   = g_φ(x[box], ctx) with feature masking (p = 0.2);   L_d = CE(up(ỹ), y[box])   detail loss
    L   = L_c + λ · L_d,   λ = 1.0,   both CE with ignore 255

Both views run the shared LoRA encoder (two backbone passes; gradients from both losses reach
LoRA). Options for the Table 2 chain: ``refine=False`` trains VFMNet alone (L = L_c; "+VFMNet"),
``masking=False`` switches the feature masking off ("+MGRNet" without "Feat. Mask"). The box
offsets and the masking draw come from the step's generator (``self.generator``), so a resumed run is
exact. The offset rule is the code's: k·divisor with k uniform in [0, ⌊(margin+1)/divisor⌋). ``hr_crop`` /
``divisor`` null (default) scale with the crop (512 / 32 for the official 1024 crops; 56 / 4 for the
mini 112×224 images), so partial ``recipe_options`` overrides keep the geometry.
One process only: the MGRNet branch calls the model's parts outside the DDP forward.
Taught in ``notebooks/30_vfmseg.ipynb``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Recipe


class VFMSegTwoView(Recipe):
    """L = L_c(VFMNet on the ×0.5 view) + λ · L_d(MGRNet on a full-resolution crop | detached coarse logits)."""

    name = "vfmseg"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"detail_weight": (0, None), "global_scale": (0, 1), "hr_crop": (1, None), "divisor": (1, None)}
    streams = ("source",)

    def __init__(self, detail_weight: float = 1.0, global_scale: float = 0.5, hr_crop: int | None = None,
                 divisor: int | None = None, refine: bool = True, masking: bool = True):
        if not float(detail_weight) >= 0.0:
            raise ValueError(f"detail_weight (λ) must be >= 0, got {detail_weight}")
        if not 0.0 < float(global_scale) <= 1.0:
            raise ValueError(f"global_scale must be in (0, 1], got {global_scale}")
        for key, val in (("hr_crop", hr_crop), ("divisor", divisor)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 1):
                raise ValueError(f"{key} must be an int >= 1 or null (auto), got {val!r}")
        super().__init__(detail_weight=float(detail_weight), global_scale=float(global_scale), hr_crop=hr_crop,
                         divisor=divisor, refine=bool(refine), masking=bool(masking))
        self.o = dict(self.options)

    def setup(self, model, cfg):
        if self.o["refine"] and not hasattr(model.head, "refine"):
            raise ValueError(f"recipe vfmseg with refine=true needs head: vfmseg (VFMNet + MGRNet), got "
                             f"{type(model.head).__name__}; or set recipe_options.refine=false")
        if torch.distributed.is_available() and torch.distributed.is_initialized() and \
                torch.distributed.get_world_size() > 1:
            raise ValueError("recipe vfmseg runs on one process: its MGRNet branch bypasses the DDP forward")

    def geometry(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(hr_crop, divisor) for a training crop of ``hw``: null = auto, hr_crop = the global view's short
        side (512 for 1024 crops), divisor = max(2, 2·round(hr_crop / 32)) (32 for 512, the code's
        ``crop_coord_divisible``); both × global_scale must be whole pixels (the context box)."""
        s = self.o["global_scale"]
        hc = self.o["hr_crop"] or round(min(hw) * s)
        d = self.o["divisor"] or max(2, 2 * round(hc / 32))
        for key, val in (("hr_crop", hc), ("divisor", d)):
            if abs(val * s - round(val * s)) > 1e-9:
                raise ValueError(f"{key} {val} × global_scale {s} must be a whole number of pixels (the context "
                                 "box is the crop box × global_scale)")
        if hc > min(hw):
            raise ValueError(f"hr_crop {hc} is larger than the training crop {hw[0]}×{hw[1]}")
        return hc, d

    def _offset(self, margin: int, d: int) -> int:
        """k · d, k uniform in [0, max(1, (margin + 1) // d)) from the step's generator (the code's rule)."""
        return int(torch.randint(0, max(1, (margin + 1) // d), (), generator=self.generator)) * d

    def step(self, model, batches, step):
        o, src = self.o, batches["source"]
        img, lab = src["image"], src["label"]
        x = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
        B, _, H, W = x.shape
        s = o["global_scale"]
        gh, gw = round(H * s), round(W * s)
        # 1. global view through VFMNet: content loss L_c
        x_g = F.interpolate(x, size=(gh, gw), mode="bilinear", align_corners=False)                # B×3×gh×gw
        y_g = F.interpolate(lab[:, None].float(), size=(gh, gw), mode="nearest")[:, 0].long()    # B×gh×gw
        out_c = self.forward(x_g)
        l_c = model.loss(out_c, y_g, generator=self.generator)["loss"]
        terms = {"loss_coarse": l_c.detach()}
        total = l_c
        # 2. high-resolution crop through MGRNet with the detached coarse logits of the same region
        if o["refine"]:
            hc, d = self.geometry((H, W))
            wc = hc
            y0, x0 = self._offset(H - hc, d), self._offset(W - wc, d)
            x_d, y_d = x[:, :, y0:y0 + hc, x0:x0 + wc], lab[:, y0:y0 + hc, x0:x0 + wc]
            with torch.no_grad():
                coarse = model.semantic_logits(x_g, out={"logits": out_c["logits"].detach()})  # B×K×gh×gw
            cy, cx, ch, cw = round(y0 * s), round(x0 * s), round(hc * s), round(wc * s)
            ctx = coarse[:, :, cy:cy + ch, cx:cx + cw].detach()                                  # B×K×(hc·s)×(wc·s)
            with self.autocast():
                feats = model.features(x_d)
                canvas = model.canvas_size((hc, wc))
                if model.vfm.pad_mode == "pad" and canvas != (hc, wc):  # the context covers the padded canvas too
                    ctx = F.pad(ctx, (0, round((canvas[1] - wc) * s), 0, round((canvas[0] - hc) * s)), mode="replicate")
                out_d = model.head.refine(feats, ctx, generator=self.generator, mask=None if o["masking"] else False)
            l_d = model.loss(out_d, y_d, generator=self.generator)["loss"]
            total = total + o["detail_weight"] * l_d
            terms["loss_detail"] = l_d.detach()
            if out_d.get("keep") is not None:
                terms["mask_keep"] = out_d["keep"].float().mean().detach()
        terms["loss"] = total
        return terms
