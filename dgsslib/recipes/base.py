"""The recipe contract: what differs between papers' training steps, and nothing else.

``fit`` (:mod:`dgsslib.train`) owns what every paper shares -- schedule, AMP, gradient clipping,
selection masks, the NaN/inf stop, checkpoints, periodic evaluation, progress, DDP. A recipe owns:

- ``streams``: the data it needs each step: ``"source"`` (labelled, ``data.train``) and/or
  ``"target"`` (unlabelled, ``data.target``), each with its own step-indexed sampler;
- ``setup(model, cfg)``: once, after the model is on its device (build a teacher, a second head);
- ``step(model, batches, step) -> {"loss": tensor, <named terms>: tensor|float}``: the paper's
  algorithm box for one iteration; ``fit`` backpropagates ``loss`` and logs every other term;
- ``after_step(model, step)``: after the optimiser step (e.g. the EMA teacher update);
- ``phase(step)``: the name of the phase at ``step`` (phased recipes such as FisherTune) or None;
- ``state_tensors()`` / ``load_state_tensors()`` and ``state_meta()`` / ``load_state_meta()``:
  its resumable state (teacher weights, a selection map, counters), saved in every checkpoint.

Inside ``step`` use ``self.forward(images)`` (goes through DDP and autocast) and ``self.generator``
(the step's CPU generator for the loss's random point sampling) so runs stay resume-exact.
"""
from __future__ import annotations

from typing import Any

import torch

STREAMS = ("source", "target")


class Recipe:
    """Base class; a recipe file subclasses it and implements :meth:`step`."""

    name = "base"
    streams: tuple[str, ...] = ("source",)
    #: logged terms whose mean over the run goes into the record's ``summary`` as ``<term>_mean``
    summary_terms: tuple[str, ...] = ()

    def __init__(self, **options: Any):
        self.options = dict(options)
        self.net = None          # the (possibly DDP-wrapped) model, bound by fit
        self.autocast = None     # context factory, bound by fit
        self.generator = None    # per-step CPU generator, set by fit before each step
        self.cfg: dict = {}

    # ---------------------------------------------------------------- bound by fit
    def bind(self, net, autocast, cfg: dict) -> None:
        self.net, self.autocast, self.cfg = net, autocast, cfg

    def forward(self, images: torch.Tensor):
        """The student's forward pass, through DDP and autocast."""
        with self.autocast():
            return self.net(images)

    # ---------------------------------------------------------------- the paper's part
    def setup(self, model, cfg: dict) -> None:
        """Called once before training (after the model is on its device)."""

    def step(self, model, batches: dict[str, dict], step: int) -> dict:
        raise NotImplementedError

    def after_step(self, model, step: int) -> None:
        """Called after the optimiser step of ``step``."""

    def phase(self, step: int) -> str | None:
        return None

    # ---------------------------------------------------------------- resumable state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise ValueError(f"recipe {self.name!r} has no tensor state, got {sorted(tensors)[:4]}")

    def state_meta(self) -> dict:
        return {}

    def load_state_meta(self, meta: dict) -> None:
        pass

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"
