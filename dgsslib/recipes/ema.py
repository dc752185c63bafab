"""The EMA teacher of self-training (Mean Teacher; DACS/DAFormer/MIC form).

    α_t = min(1 − 1/(t+1), α),      φ ← α_t · φ + (1 − α_t) · θ          (α = 0.999 in DAFormer/MIC)

so early on the teacher follows the student closely (α_1 = 0.5, α_9 = 0.9) and the cap is
reached at t = 1/(1−α) − 1. Averaged: every parameter that trains (method, unfrozen backbone
weights, head) and every floating-point persistent buffer of the head and the method (timm's
ModelEmaV2 form; DAFormer averages parameters only -- with no BatchNorm in a ViT + Mask2Former
the two agree); integer buffers are copied.

The teacher never copies or re-wraps the shared frozen backbone: it is a *shadow* of the
trainable tensors, and :meth:`EMATeacher.applied` swaps them into the model for a no-grad
forward (``with teacher.applied(model): out = model(x)``), in eval mode, then swaps back. This
works for every method -- hook-based (Rein), forward-hook-based (LoRA, AdaptFormer) and Full.
Its tensors go into every checkpoint (``recipe.teacher.*``), so a resumed run is exact.
``exclude`` names key prefixes the teacher does not shadow (Rein-A's STM, ``"stm."``: it trains
beside the student but has no EMA copy).
Taught in ``notebooks/11_rein_a.ipynb``.
"""
from __future__ import annotations

import contextlib

import torch

from .base import Recipe


def ema_alpha(t: int, alpha: float) -> float:
    """α_t = min(1 − 1/(t+1), α) for iteration t ≥ 0."""
    return min(1.0 - 1.0 / (t + 1), alpha)


class EMATeacher:
    """A shadow copy of a model's trainable state, updated by EMA and swapped in to run."""

    def __init__(self, model, alpha: float = 0.999, exclude: tuple[str, ...] = ()):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"EMA alpha must be in [0, 1), got {alpha}")
        self.alpha, self.exclude = float(alpha), tuple(exclude)
        self.shadow = {k: v.detach().clone() for k, v in self._live(model).items()}

    def _state(self, model) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.trainable_state().items() if not k.startswith(self.exclude)}

    def _live(self, model) -> dict[str, torch.Tensor]:
        return {k: (v.data if isinstance(v, torch.nn.Parameter) else v) for k, v in self._state(model).items()}

    @torch.no_grad()
    def update(self, model, t: int) -> float:
        """One EMA step at iteration ``t``; returns the α_t used."""
        a = ema_alpha(t, self.alpha)
        for k, live in self._live(model).items():
            sh = self.shadow[k]
            if sh.is_floating_point():
                sh.mul_(a).add_(live.detach().to(sh.dtype), alpha=1.0 - a)
            else:
                sh.copy_(live)
        return a

    @contextlib.contextmanager
    def applied(self, model):
        """Run ``model`` as the teacher: shadow tensors swapped in, eval mode, no grad."""
        state = self._state(model)
        was_training = model.training

        def swap():
            for k, t in state.items():
                t.data, self.shadow[k] = self.shadow[k], t.data

        with torch.no_grad():
            swap()
            model.eval()
            try:
                yield model
            finally:
                swap()
                model.train(was_training)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(tensors))
        if missing:
            raise ValueError(f"teacher state is missing {missing[:4]}")
        for k, sh in self.shadow.items():
            sh.copy_(tensors[k].to(sh.device, sh.dtype))


class TeacherRecipe(Recipe):
    """A recipe with an EMA teacher (``self.teacher``, made in ``setup``): updated after every step,
    its shadow tensors checkpointed as ``recipe.teacher.*`` (self-training, Rein-A)."""

    teacher: EMATeacher | None = None

    def after_step(self, model, step):
        self.teacher.update(model, step + 1)  # DAFormer: at the start of t = step+1, from θ_step

    def state_tensors(self):
        return {f"teacher.{k}": v for k, v in self.teacher.state_tensors().items()}

    def load_state_tensors(self, tensors):
        self.teacher.load_state_tensors({k[len("teacher."):]: v for k, v in tensors.items()})

