"""Stacked methods: combinations no paper ran, written as a config rather than a fork.

No paper behind this file: it is the kit's contract for combining the papers' pieces (notebook
``90_leaderboard.ipynb`` trains its combination rows with it)::

    method: stack
    method_options:
      parts: rein,fishertune          # attached in this order
      rein: {m: 100}                  # each part's own options, checked as if it ran alone
      fishertune: {budget: 0.05}

Tokens that refine every layer (Rein-G) and the 5 % of backbone elements Fisher information selects
(FisherTune) then train together: θ = T ∪ W[mask]. How the pieces compose -- every rule is a
choice, since no paper defines the combination:

* **attach** in order; a part's ``attach`` freezes the whole backbone first, so what the earlier
  parts unfroze is unfrozen again afterwards. Two parts that train the same tensor are refused.
* **hooks** run part by part in order (``before_blocks``, ``prompt_tokens``, ``after_block``);
  ``queries`` come from the first part that has them (Rein's link).
* **gradients**: the union of the parts' ``grad_masks`` and ``selection_parameters``; the backbone
  runs under ``no_grad`` only when every part asks for it (FisherTune's T1 warm-up with Rein tokens:
  the tokens and the decoder train, the masks hold every selected element still).
* **learning rates**: parts that train original backbone weights must agree on
  ``backbone_lr_mult``; at most one part may bring its own ``param_groups``, its own inference
  (``predict``), its own recipe (``default_recipe``); a recipe two parts require must be the same one.
  A pair that breaks these is refused with the reason -- VFMSeg's two-view step with FisherTune's
  phases would need a recipe that composes two algorithm boxes, which the recipe contract lacks.
* **selection**: the part with ``set_scores`` is the ``selector`` the fishertune recipe drives.
* **checkpoints**: each part packs and unpacks its own tensors under the names it uses alone.
* **counts**: ``num_trainable`` adds the parts' own counts (FisherTune's budget, Rein's tokens).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Method


def _part_list(parts) -> list[str]:
    names = [p.strip() for p in parts.split(",")] if isinstance(parts, str) else list(parts)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"parts must be method names, e.g. 'rein,fishertune', got {parts!r}")
    return names


class Stack(Method):
    """Several methods on one backbone (``parts``), each with its own options."""

    name = "stack"

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """Each part's options checked as ``plugin_options`` checks a method alone (at config time)."""
        from ..engine.validation import plugin_options
        from ..profiles import ConfigError
        try:
            names = _part_list(options.get("parts", ""))
        except ValueError as exc:
            raise ConfigError(f"method_options.{exc}") from None
        out = {"parts": ",".join(names)}
        if "stack" in names:
            raise ConfigError("method_options.parts: a stack cannot hold a stack; list its parts instead")
        if len(set(names)) != len(names):
            raise ConfigError(f"method_options.parts {names} names a method twice")
        if len(names) < 2:
            raise ConfigError(f"method_options.parts {names}: a stack needs two or more methods")
        unknown = sorted(set(options) - {"parts", *names})
        if unknown:
            raise ConfigError(f"unknown method_options {unknown} for method 'stack'; accepted: parts and the "
                              f"parts' names ({', '.join(names)}) holding each part's options")
        for n in names:
            try:
                out[n] = plugin_options("method", n, options.get(n) or {})
            except ConfigError as exc:
                raise ConfigError(f"stack part {n!r}: {exc}") from None
        return out

    @classmethod
    def recipe_needs(cls, options: dict) -> tuple[str, ...]:
        from . import METHODS
        allowed = None
        for n in _part_list(options.get("parts", "")):
            needs = set(METHODS.get(n).recipe_needs(options.get(n) or {}))
            if needs:
                allowed = needs if allowed is None else allowed & needs
                if not allowed:
                    raise ValueError(f"stack parts need different recipes (part {n!r} runs under "
                                     f"{' or '.join(sorted(needs))}): no recipe composes two algorithm boxes")
        return tuple(sorted(allowed or ()))

    @classmethod
    def own_recipe(cls, options: dict) -> str | None:
        from . import METHODS
        try:
            options = cls.check_options(options)
        except ValueError:  # bad parts: the config check names them
            return None
        own = {r for n in _part_list(options["parts"])
               if (r := METHODS.get(n).own_recipe(options.get(n) or {})) is not None}
        if len(own) > 1:
            raise ValueError(f"stack parts bring different recipes ({', '.join(sorted(own))}); name one with "
                             "--set recipe=... if it can train every part")
        return own.pop() if own else None

    def __init__(self, parts: str = "rein,fishertune", **part_options: Any):
        from . import build_method
        opts = self.check_options({"parts": parts, **part_options})
        names = _part_list(opts["parts"])
        super().__init__(**opts)
        self.members = nn.ModuleList([build_method(n, **opts[n]) for n in names])
        self.part_names = names
        own = [m for m in self.members if m.predict is not None]
        if len(own) > 1:
            raise ValueError(f"stack parts {[m.name for m in own]} each bring their own inference; keep one")
        self.predict = own[0].predict if own else None
        self.predict_stats = own[0].predict_stats if own else None
        sel = [i for i, m in enumerate(self.members) if m.set_scores is not None]
        if len(sel) > 1:
            raise ValueError("a stack holds at most one selection method (FisherTune, ChildTune, random_select)")
        self._selector = sel[0] if sel else None
        self.set_scores = self.members[sel[0]].set_scores if sel else None
        self.no_decay_keys = tuple(k for m in self.members for k in m.no_decay_keys)
        self.decay_keys = tuple(k for m in self.members for k in getattr(m, "decay_keys", ()))
        self.counts: list[int] = []

    @property
    def selector(self) -> Method | None:
        """The part the fishertune recipe drives (the one with ``set_scores``), or None."""
        return None if self._selector is None else self.members[self._selector]

    # -- lifecycle -----------------------------------------------------------
    def attach(self, vfm) -> "Stack":
        super().attach(vfm)
        owned: dict[int, str] = {}   # id(backbone tensor) -> the part that trains it
        lr_mults = set()
        for m in self.members:
            m.attach(vfm)
            mine = {id(p): n for n, p in m.trainable_parameters().items() if n.startswith("backbone.")}
            clash = sorted(owned[i] for i in mine if i in owned)
            if clash:
                raise ValueError(f"stack parts {clash[0]} and {m.name} both train the same backbone tensors "
                                 f"(e.g. {mine[next(i for i in mine if i in owned)]})")
            owned.update({i: m.name for i in mine})
            if mine:
                lr_mults.add(float(m.backbone_lr_mult))
            self.counts.append(int(m.num_trainable()))
        if len(lr_mults) > 1:
            raise ValueError(f"stack parts train original backbone weights at different lr multipliers {sorted(lr_mults)}")
        self.backbone_lr_mult = lr_mults.pop() if lr_mults else 1.0
        for p in vfm.model.parameters():  # the later parts' attach froze what the earlier ones unfroze
            p.requires_grad_(id(p) in owned)
        return self

    # -- what trains ---------------------------------------------------------
    @property
    def backbone_no_grad(self) -> bool:
        return all(m.backbone_no_grad for m in self.members)

    def num_trainable(self) -> int:
        return sum(self.counts) if self.counts else sum(m.num_trainable() for m in self.members)

    def hooks(self) -> list:
        return [h for m in self.members for h in m.hooks()]

    def queries(self) -> torch.Tensor | None:
        return next((q for m in self.members if (q := m.queries()) is not None), None)

    def grad_masks(self, step: int | None = None):
        out = {}
        for m in self.members:
            out.update(m.grad_masks(step) or {})
        return out or None

    def selection_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.members for p in m.selection_parameters()]

    def param_groups(self, model, lr: float, weight_decay: float):
        groups = [g for m in self.members if (g := m.param_groups(model, lr, weight_decay)) is not None]
        if len(groups) > 1:
            raise ValueError("two stack parts bring their own optimiser groups; the stack cannot merge them")
        return groups[0] if groups else None

    # -- checkpoints: each part sees its tensors under the names it has alone -------------------------
    def _each_part(self, tensors: dict, fn: str) -> dict:
        shared = {k: v for k, v in tensors.items() if not k.startswith(("model.method.", "optim.method."))}
        out = {}
        for i, m in enumerate(self.members):
            own = {}
            for scope in ("model", "optim"):
                pre = f"{scope}.method.members.{i}."
                own.update({f"{scope}.method." + k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
            done = getattr(m, fn)({**shared, **own})
            shared = {k: v for k, v in done.items() if not k.startswith(("model.method.", "optim.method."))}
            for k, v in done.items():
                if k.startswith(("model.method.", "optim.method.")):
                    scope = k.split(".", 1)[0]
                    out[f"{scope}.method.members.{i}." + k[len(scope) + len(".method."):]] = v
        rest = {k: v for k, v in tensors.items()  # the stack's own keys (none today) pass through
                if k.startswith(("model.method.", "optim.method.")) and ".members." not in k}
        return {**shared, **out, **rest}

    def pack_state(self, tensors):
        return self._each_part(tensors, "pack_state")

    def unpack_state(self, tensors):
        return self._each_part(tensors, "unpack_state")
