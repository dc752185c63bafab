"""Recipes: one training step per paper, hosted by the one trainer (:func:`dgsslib.engine.train.fit`).

| recipe | streams | step | paper |
|---|---|---|---|
| ``supervised`` | source | L = L_head(model(x_s), y_s) | Rein-G, PEFT zoo, Causal-Tune, source-only |
| ``self_training`` | source + target | L_src + λ·L_pseudo, EMA teacher pseudo-labels (τ = 0.968) | DACS/DAFormer self-training baseline (the base of Rein-A) |
| ``rein_a`` | source + target | L_src + α·L_mix (ClassMix, pixel NLL on S) + β·L_mask (MIC, query i ↔ i) + the STM's three terms (region queries), EMA teacher | Rein++ Algorithm 1 (Rein-A) |
| ``fishertune`` | source | T1 decoder warm-up → T2 DR-FIM estimation (no model update) → T3 growing masked fine-tuning | FisherTune Algorithm 1 |
| ``vfmseg`` | source | L_c(VFMNet on the ×0.5 view) + λ·L_d(MGRNet on a full-resolution crop, detached coarse logits as context), λ = 1 | VFMSeg eq. 1-2 (two-view training) |

The config names it (``recipe: supervised``, ``recipe_options: {...}``); ``--set recipe=...``
or a ``--config`` file chooses another.

How to add a paper's step (one file + one line):

1. ``dgsslib/recipes/<paper>.py``: subclass :class:`Recipe`, set ``name`` and ``streams``, write
   ``step(model, batches, step)`` so it reads like the paper's algorithm box (cite the equation
   numbers), returning ``{"loss": total, "<term>": value, ...}`` -- every term is logged.
   Put a teacher/second head in ``setup``, its update in ``after_step``, its tensors in
   ``state_tensors``/``load_state_tensors`` (checkpointed and resumed exactly).
2. Register it below: ``"<paper>": "dgsslib.recipes.<paper>:<Class>"``.
3. ``configs/<paper>/{paper,mini}.yaml`` set ``recipe``, ``method``, ``head`` and their options.

What a recipe does *not* do: the optimiser, schedule, AMP, clipping, selection masks, NaN stop,
checkpoints, evaluation and DDP all live in ``fit`` and are the same for every paper.
"""
from __future__ import annotations

from ..registry import Registry
from .base import STREAMS, Recipe

RECIPES = Registry("recipe", {
    "supervised": "dgsslib.recipes.supervised:Supervised",
    "self_training": "dgsslib.recipes.self_training:SelfTraining",
    "fishertune": "dgsslib.recipes.fishertune:FisherTuneRecipe",
    "rein_a": "dgsslib.recipes.rein_a:ReinA",
    "vfmseg": "dgsslib.recipes.vfmseg:VFMSegTwoView",
})


def build_recipe(name: str, **options) -> Recipe:
    """A recipe object by name; unknown names/options fail with the accepted ones."""
    return RECIPES.build(name, **options)


__all__ = ["RECIPES", "STREAMS", "Recipe", "build_recipe"]
