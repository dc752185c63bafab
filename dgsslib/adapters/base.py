"""The method plug-in: the one shape every fine-tuning method in the kit takes.

A method decides which backbone-side parameters train. It is an ``nn.Module`` (its own
parameters -- Rein tokens, LoRA matrices, prompts -- are registered on it) with:

- ``attach(vfm)``: called once; freezes/unfreezes backbone parameters, wraps timm modules by
  name (LoRA, AdaptFormer) or prepares hooks. Never forks the ViT.
- ``hooks()``: objects with ``after_block`` / ``prompt_tokens`` for :meth:`VFM.forward_features`.
- ``trainable_parameters()``: name -> parameter for every *backbone-side* parameter that trains
  (the method's own + unfrozen backbone weights; the decode head excluded). This is what the
  papers count ("the calculation of trainable parameters includes only the backbone").
- ``queries()``: image-independent decoder queries (Rein's token->query link) or None.
- ``grad_masks()``: name -> 0/1 mask applied to gradients after backward (selection methods).
- ``backbone_no_grad``: run the backbone under ``torch.no_grad()`` (the Freeze baseline).
- ``backbone_lr_mult``: learning-rate multiplier for unfrozen *original* backbone weights
  (Full: 0.1, i.e. 1e-5 when the head uses 1e-4, as in Rein issue #45/#97).

Taught in ``notebooks/01_frozen_vs_full.ipynb`` (Freeze/Full) and ``10_rein_g.ipynb`` (the rest).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Method(nn.Module):
    """Base class: everything frozen, nothing added (subclasses override what they change)."""

    name = "base"
    backbone_no_grad = False
    backbone_lr_mult = 1.0
    # parameter-name fragments that get no weight decay (norms, tokens, scales, ...)
    no_decay_keys: tuple[str, ...] = ()

    def __init__(self, **options: Any):
        super().__init__()
        self.options = dict(options)
        self.vfm = None  # set by attach; not registered as a submodule (see _vfm_ref)

    # -- lifecycle -----------------------------------------------------------
    def attach(self, vfm) -> "Method":
        object.__setattr__(self, "vfm", vfm)  # keep the backbone out of this module's children
        for p in vfm.model.parameters():
            p.requires_grad_(False)
        return self

    # -- what trains ---------------------------------------------------------
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        out = {f"method.{n}": p for n, p in self.named_parameters() if p.requires_grad}
        if self.vfm is not None:
            out.update({f"backbone.{n}": p for n, p in self.vfm.model.named_parameters() if p.requires_grad})
        return out

    def num_trainable(self) -> int:
        seen, total = set(), 0
        for p in self.trainable_parameters().values():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def hooks(self) -> list:
        return []

    def queries(self) -> torch.Tensor | None:
        return None

    def grad_masks(self) -> dict[str, torch.Tensor] | None:
        return None

    def train(self, mode: bool = True):  # the frozen VFM always runs in eval mode (no drop-path)
        super().train(mode)
        if self.vfm is not None:
            self.vfm.eval()
        return self

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


class Freeze(Method):
    """The frozen-VFM baseline: the backbone runs under no_grad, only the head trains."""

    name = "freeze"
    backbone_no_grad = True

    def __init__(self):
        super().__init__()


class Full(Method):
    """Full fine-tuning: every backbone weight trains, at 0.1x the head's learning rate."""

    name = "full"
    backbone_lr_mult = 0.1

    def __init__(self, lr_mult: float = 0.1, **options: Any):
        super().__init__(lr_mult=lr_mult, **options)
        self.backbone_lr_mult = float(lr_mult)

    def attach(self, vfm) -> "Method":
        object.__setattr__(self, "vfm", vfm)
        for p in vfm.model.parameters():
            p.requires_grad_(True)
        return self

    def train(self, mode: bool = True):  # a trained backbone follows the model's mode
        nn.Module.train(self, mode)
        if self.vfm is not None:
            self.vfm.train(mode)
        return self
