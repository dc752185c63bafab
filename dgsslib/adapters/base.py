"""The method plug-in: the one shape every fine-tuning method in the kit takes.

A method decides which backbone-side parameters train. It is an ``nn.Module`` (its own
parameters -- Rein tokens, LoRA matrices, prompts -- are registered on it) with:

- ``attach(vfm)``: called once; freezes/unfreezes backbone parameters, wraps timm modules by
  name (LoRA, AdaptFormer) or prepares hooks. Never forks the ViT.
- ``hooks()``: objects with ``before_blocks`` / ``prompt_tokens`` / ``after_block`` for
  :meth:`VFM.forward_features`.
- ``trainable_parameters()``: name -> parameter for every *backbone-side* parameter that trains
  (the method's own + unfrozen backbone weights; the decode head excluded). This is what the
  papers count ("the calculation of trainable parameters includes only the backbone").
- ``queries()``: image-independent decoder queries (Rein's token->query link) or None.
- ``grad_masks(step)``: {parameter: 0/1 mask} for this step (selection methods; may change with
  the step); the trainer masks the gradients, the AdamW moments and -- for the parameters listed
  by ``selection_parameters()`` -- the decoupled weight decay, so unselected elements never move.
- ``param_groups(model, lr, wd)``: optional own AdamW groups (None = the trainer's default).
- ``pack_state(tensors)`` / ``unpack_state(tensors)``: how its tensors are stored in checkpoint files
  (identity by default; selection methods keep only the selected elements of a weight matrix and
  its AdamW moments -- :func:`dgsslib.checkpoint.save_checkpoint` / ``load_checkpoint``).
- ``backbone_no_grad``: run the backbone under ``torch.no_grad()`` (the Freeze baseline).
- ``backbone_lr_mult``: learning-rate multiplier for unfrozen *original* backbone weights
  (Full: 0.1, i.e. 1e-5 when the head uses 1e-4, as in Rein issue #45/#97).

A method deep-copies without copying the shared backbone (``copy.deepcopy(method)`` shares
``method.vfm`` and drops forward-hook handles; the copy is detached from the backbone). EMA
teachers do not need a copy at all: :class:`dgsslib.recipes.ema.EMATeacher` swaps shadow tensors
into the one model. Methods refuse options they do not know.

Taught in ``notebooks/01_frozen_vs_full.ipynb`` (Freeze/Full) and ``10_rein_g.ipynb`` (the rest).
"""
from __future__ import annotations

from typing import Any

import copy

import torch
from torch import nn


class Method(nn.Module):
    """Base class: everything frozen, nothing added (subclasses override what they change)."""

    name = "base"
    backbone_no_grad = False
    backbone_lr_mult = 1.0
    # parameter-name fragments that get no weight decay (norms, tokens, scales, ...)
    no_decay_keys: tuple[str, ...] = ()
    #: parameter-name substrings that get weight decay even where the kit's no-decay keys match
    decay_keys: tuple[str, ...] = ()

    # -- optional hooks: None / empty means "the kit's default"; a method sets what it needs ------------
    #: the recipe the method brings (``--method vfmseg`` trains its two-view step unless a recipe is named)
    default_recipe: str | None = None
    #: recipes the method cannot train without (checked with the config: FisherTune needs its phases)
    requires_recipe: tuple[str, ...] = ()
    #: ``predict(model, images, mode, crop, stride) -> B×K×H×W``: the method's own inference (VFMSeg's
    #: coarse-to-fine); None = :func:`dgsslib.inference.default_predict`
    predict = None
    #: ``predict_stats() -> dict``: statistics of its inference since the last call, merged into eval results
    predict_stats = None
    #: ``set_scores(scores)``: a selection method's ranking input (FisherTune, ChildTune); the fishertune
    #: recipe refuses a method without it
    set_scores = None
    #: ``{option: (low, high)}`` inclusive bounds checked with the config (None = open); option *types* come
    #: from the constructor's annotations (:func:`dgsslib.engine.validation.check_option`)
    option_ranges: dict[str, tuple] = {}

    def __init__(self, **options: Any):
        super().__init__()
        self.options = dict(options)
        self.vfm = None  # set by attach; not registered as a submodule (see _vfm_ref)

    @classmethod
    def recipe_needs(cls, options: dict) -> tuple[str, ...]:
        """The recipes this method, with these options, trains under (empty: any); :mod:`dgsslib.adapters.stack`
        combines its parts' answers."""
        return tuple(cls.requires_recipe)

    @classmethod
    def own_recipe(cls, options: dict) -> str | None:
        """The recipe this method brings when none is named (``default_recipe``)."""
        return cls.default_recipe

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

    def grad_masks(self, step: int | None = None) -> dict[nn.Parameter, torch.Tensor] | None:
        """{parameter: 0/1 mask of its shape} for training step ``step`` (None = no masking)."""
        return None

    def selection_parameters(self) -> list[nn.Parameter]:
        """Parameters trained element-wise under ``grad_masks`` (their weight decay is masked too)."""
        return []

    def param_groups(self, model, lr: float, weight_decay: float) -> list[dict] | None:
        """Own AdamW groups for the whole model, or None for :func:`dgsslib.optim.param_groups`."""
        return None

    def pack_state(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checkpoint tensors as stored (``model.<name>``, ``optim.<name>.<slot>`` keys); identity here."""
        return tensors

    def unpack_state(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Inverse of :meth:`pack_state` (full-shape tensors back, for the model as it is now)."""
        return tensors

    def __deepcopy__(self, memo):
        """Copy the method's own tensors; share (never copy) the backbone; drop hook handles."""
        if self.vfm is not None:
            memo[id(self.vfm)] = self.vfm
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = [] if k == "_handles" else copy.deepcopy(v, memo)
        return new

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
    option_ranges = {"lr_mult": (0, None)}  # bounds checked with the config (engine.validation)

    def __init__(self, lr_mult: float = 0.1):
        if not float(lr_mult) > 0:
            raise ValueError(f"lr_mult must be > 0, got {lr_mult}")
        super().__init__(lr_mult=float(lr_mult))
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
