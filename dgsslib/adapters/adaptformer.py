"""AdaptFormer: a bottleneck MLP running in parallel to each block's frozen MLP.

Paper card
----------
*AdaptFormer: Adapting Vision Transformers for Scalable Visual Recognition* (Chen et al.,
NeurIPS 2022, https://arxiv.org/abs/2205.13535). A PEFT baseline of Rein++ Table III (DINOv2-L, bottleneck 64:
24·(1024·64+64 + 64·1024+1024) = 3,171,840 = 3.17M).

Key equation (parallel AdaptMLP, s = 0.1 fixed)::

    x' = MLP(x) + s · (W_up ReLU(W_down x + b_down) + b_up),   W_up, b_up = 0 at init

Init as AdaptFormer's "lora" option: W_down Kaiming-uniform (PyTorch default), b_down, W_up,
b_up zero, so the backbone is unchanged at init.

Placement (``placement=``):

- ``"mlp"`` (default): a forward hook on each block's ``mlp`` module (found by name, the module is
  not replaced): output = mlp(x) + s·adapter(x) where x is the MLP input, i.e. the ``norm2``
  output. Being inside the block, the sum then passes through the block's LayerScale ``ls2``
  (DINOv2, CLIP have one; ``init_values`` 1e-5 for DINOv2) and drop-path.
- ``"block"``: the original AdaptFormer wiring: the adapter reads the residual stream *before*
  ``norm2`` and its output is added to the block output, outside LayerScale:
  out = x_mid + ls2(mlp(norm2(x_mid))) + s·adapter(x_mid). Same parameter count.

``learnable_scale=True`` makes s one learnable scalar per block (init ``scale``; +24 params).

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method


class Bottleneck(nn.Module):
    """down (c->d) -> ReLU -> up (d->c), up zero-initialised, times a (fixed or learnable) scale."""

    def __init__(self, c: int, d: int, scale: float, learnable_scale: bool, dropout: float = 0.0, **dd):
        super().__init__()
        self.down = nn.Linear(c, d, **dd)
        self.up = nn.Linear(d, c, **dd)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.dropout = float(dropout)
        if learnable_scale:
            self.scale = nn.Parameter(torch.tensor(float(scale), **dd))
        else:
            self.register_buffer("scale", torch.tensor(float(scale), **dd), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.down(x))
        h = F.dropout(h, p=self.dropout, training=self.training)
        return self.up(h) * self.scale.to(x.dtype)


class AdaptFormer(Method):
    """Parallel bottleneck adapters (default width 64, scale 0.1) on every block's MLP."""

    name = "adaptformer"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"bottleneck": (1, None), "dropout": (0, 1), "scale": (None, None)}  # s: any real multiplier
    no_decay_keys = ("scale",)

    def __init__(self, bottleneck: int = 64, scale: float = 0.1, learnable_scale: bool = False,
                 placement: str = "mlp", dropout: float = 0.0):
        if placement not in ("mlp", "block"):
            raise ValueError(f"placement must be 'mlp' or 'block', got {placement!r}")
        if int(bottleneck) < 1:
            raise ValueError(f"bottleneck must be >= 1, got {bottleneck}")
        super().__init__(bottleneck=int(bottleneck), scale=float(scale), learnable_scale=bool(learnable_scale),
                         placement=placement, dropout=float(dropout))
        self.bottleneck, self.scale_init = int(bottleneck), float(scale)
        self.learnable_scale, self.placement, self.dropout = bool(learnable_scale), placement, float(dropout)
        self.adapters = nn.ModuleList()
        self._handles: list = []
        self._mid: dict[int, torch.Tensor] = {}

    def attach(self, vfm) -> "AdaptFormer":
        super().attach(vfm)
        self.detach_hooks()
        if len(self.adapters):
            raise ValueError("this AdaptFormer is already built for a backbone; make a new one")
        p0 = next(vfm.model.parameters())
        dd = dict(device=p0.device, dtype=p0.dtype)
        for i, blk in enumerate(vfm.model.blocks):
            self.adapters.append(Bottleneck(vfm.embed_dim, self.bottleneck, self.scale_init,
                                            self.learnable_scale, self.dropout, **dd))
            if self.placement == "mlp":
                mlp = blk.get_submodule("mlp")
                self._handles.append(mlp.register_forward_hook(functools.partial(self._mlp_hook, i)))
            else:
                norm2 = blk.get_submodule("norm2")
                self._handles.append(norm2.register_forward_pre_hook(functools.partial(self._grab_mid, i)))
                self._handles.append(blk.register_forward_hook(functools.partial(self._block_hook, i)))
        return self

    def _mlp_hook(self, i, module, inputs, output):
        return output + self.adapters[i](inputs[0])

    def _grab_mid(self, i, module, inputs):
        self._mid[i] = inputs[0]

    def _block_hook(self, i, module, inputs, output):
        x_mid = self._mid.pop(i)
        return output + self.adapters[i](x_mid)

    def detach_hooks(self) -> None:
        """Remove the forward hooks from the backbone (the adapters are kept)."""
        for h in self._handles:
            h.remove()
        self._handles = []


__all__ = ["AdaptFormer", "Bottleneck"]
