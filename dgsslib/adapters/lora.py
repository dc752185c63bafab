"""LoRA: low-rank updates added to frozen attention projections.

Paper card
----------
*LoRA: Low-Rank Adaptation of Large Language Models* (Hu et al., ICLR 2022, https://arxiv.org/abs/2106.09685).
A PEFT baseline of Rein++ Table III (DINOv2-L: 0.79M trainable parameters).

Key equation, for a frozen projection W (d_out×d_in) and input x::

    h = W x + b + (alpha / r) · B A x,     A: r×d_in (Kaiming-uniform),  B: d_out×r (zeros)

so the model is unchanged at init. Default: r = 8 on the query and value projections of every
block (``targets=("q", "v")``): 24·2·(1024·8 + 8·1024) = 786,432 on DINOv2-L. ``alpha``
defaults to ``r`` (scale 1).

How it attaches (the timm ViT is never forked): a forward hook on each targeted ``nn.Linear``
adds the low-rank update to its output, so backbone ``state_dict`` keys do not change.

- ``q``/``k``/``v``: timm's ViT, CLIP, MAE and SAM fuse them in ``attn.qkv`` (d → 3d): the update
  goes to the q / k / v slice of that output. EVA02 (timm ``EvaAttention``) has separate
  ``q_proj``/``k_proj``/``v_proj`` in the released configs (hooked directly); for a fused EVA
  ``qkv`` whose bias is passed to ``F.linear`` we set its ``qkv_bias_separate=True`` so the module
  is called (numerically the same output).
- ``proj`` (attention output), ``fc1``, ``fc2`` (MLP; on EVA's SwiGLU ``fc1`` means both
  ``fc1_g`` and ``fc1_x``).

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .base import Method

TARGETS = ("q", "k", "v", "proj", "fc1", "fc2")


def _parse_targets(targets) -> tuple[str, ...]:
    items = targets.split(",") if isinstance(targets, str) else list(targets)
    items = tuple(dict.fromkeys(str(t).strip().lower() for t in items if str(t).strip()))
    bad = [t for t in items if t not in TARGETS]
    if bad or not items:
        raise ValueError(f"LoRA targets must be a non-empty subset of {','.join(TARGETS)}; got {targets!r}")
    return items


class LowRank(nn.Module):
    """x -> (alpha/r) · B(A(x)), with A Kaiming-uniform and B zero (LoRA's init)."""

    def __init__(self, d_in: int, d_out: int, r: int, scaling: float, dropout: float = 0.0, **dd):
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(r, d_in, **dd))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, **dd))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = scaling
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.drop(x) @ self.lora_A.t().to(x.dtype)) @ self.lora_B.t().to(x.dtype) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The dense update (alpha/r)·B A that a merged model would add to W."""
        return self.lora_B @ self.lora_A * self.scaling


def _sites(block: nn.Module, target: str) -> list[tuple[str, slice | None]]:
    """(module path inside the block, output slice or None) that realise ``target``."""
    attn, mlp = block.attn, block.mlp
    if target in ("q", "k", "v"):
        j = "qkv".index(target)
        if getattr(attn, "qkv", None) is not None:
            d = attn.qkv.out_features // 3
            return [("attn.qkv", slice(j * d, (j + 1) * d))]
        name = f"{target}_proj"
        if getattr(attn, name, None) is not None:
            return [(f"attn.{name}", None)]
    elif target == "proj":
        return [("attn.proj", None)]
    elif target == "fc1":
        if isinstance(getattr(mlp, "fc1", None), nn.Linear):
            return [("mlp.fc1", None)]
        if hasattr(mlp, "fc1_g"):  # EVA02 SwiGLU
            return [("mlp.fc1_g", None), ("mlp.fc1_x", None)]
    elif target == "fc2":
        return [("mlp.fc2", None)]
    raise ValueError(f"LoRA target {target!r} not found in block {type(block).__name__}")


class LoRA(Method):
    """Low-rank updates on the chosen projections of every block (default r=8 on q and v)."""

    name = "lora"

    option_ranges = {"r": (1, None), "alpha": (0, None), "dropout": (0, 1)}

    def __init__(self, r: int = 8, alpha: float | None = None, targets=("q", "v"), dropout: float = 0.0):
        tg = _parse_targets(targets)
        if int(r) < 1:
            raise ValueError(f"r must be >= 1, got {r}")
        super().__init__(r=int(r), alpha=alpha, targets=",".join(tg), dropout=float(dropout))
        self.r, self.targets, self.dropout = int(r), tg, float(dropout)
        self.alpha = float(alpha) if alpha is not None else float(r)
        self.adapters = nn.ModuleDict()
        self._handles: list = []

    def attach(self, vfm) -> "LoRA":
        super().attach(vfm)
        self.detach_hooks()
        if len(self.adapters):
            raise ValueError("this LoRA is already built for a backbone; make a new one")
        p0 = next(vfm.model.parameters())
        dd = dict(device=p0.device, dtype=p0.dtype)
        plan: dict[str, list[tuple[str, slice | None]]] = {}  # module path -> [(key, slice)]
        for i, blk in enumerate(vfm.model.blocks):
            for t in self.targets:
                for path, sl in _sites(blk, t):
                    lin = blk.get_submodule(path)
                    if not isinstance(lin, nn.Linear):
                        raise ValueError(f"LoRA target {t!r}: blocks.{i}.{path} is {type(lin).__name__}, not Linear")
                    d_out = (sl.stop - sl.start) if sl is not None else lin.out_features
                    key = f"blocks_{i}_{path.replace('.', '_')}" + (f"_{t}" if sl is not None else "")
                    self.adapters[key] = LowRank(lin.in_features, d_out, self.r, self.alpha / self.r,
                                                 self.dropout, **dd)
                    plan.setdefault(f"blocks.{i}.{path}", []).append((key, sl))
        for path, items in plan.items():
            lin = vfm.model.get_submodule(path)
            attn = vfm.model.get_submodule(path.rsplit(".", 1)[0])
            if path.endswith(".qkv") and getattr(attn, "q_bias", None) is not None \
                    and hasattr(attn, "qkv_bias_separate"):
                attn.qkv_bias_separate = True  # EVA fused qkv: make it call self.qkv(x)
            self._handles.append(lin.register_forward_hook(functools.partial(self._hook, tuple(items))))
        return self

    def _hook(self, items, module, inputs, output):
        x = inputs[0]
        if len(items) == 1 and items[0][1] is None:
            return output + self.adapters[items[0][0]](x)
        parts, pos, d = [], 0, output.shape[-1]
        for key, sl in sorted(items, key=lambda it: it[1].start):
            if sl.start > pos:
                parts.append(output.new_zeros(*output.shape[:-1], sl.start - pos))
            parts.append(self.adapters[key](x))
            pos = sl.stop
        if pos < d:
            parts.append(output.new_zeros(*output.shape[:-1], d - pos))
        return output + torch.cat(parts, dim=-1)

    def detach_hooks(self) -> None:
        """Remove the forward hooks from the backbone (the adapters are kept)."""
        for h in self._handles:
            h.remove()
        self._handles = []


__all__ = ["LoRA", "LowRank", "TARGETS"]
