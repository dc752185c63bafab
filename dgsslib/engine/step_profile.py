"""Where a training step's time goes: the recipe's step run under ``fit``, its parts timed.

The step is the real one (``fit`` on the given config for a few steps, random or loaded weights, no
evaluation); while it runs, the leaf calls every recipe makes are wrapped with wall-clock timers:

* ``VFM forward`` -- the backbone with its method's hooks, split by whether autograd records it
  (the student) or not (an EMA teacher, the STM's features);
* ``head forward`` -- the decode head (student with grad / teacher without), ``STM forward`` (Rein-A);
* ``Hungarian loss`` -- the head's (and the STM's) matching + mask-classification loss;
* ``query loss``, ``ClassMix``, ``region maps`` -- Rein-A's other parts; ``backward`` -- ``loss.backward()``;
* ``MGRNet refine`` -- VFMSeg's refinement head; ``head loss`` -- a non-Mask2Former head's loss;
* ``data: render or cache read`` (the procedural benchmark's ``load``) and ``data: augmentation, collation``
  (the rest of drawing a sample: crop, flip, photometric jitter); ``optimiser step`` -- AdamW / SGD.

Only the outermost timed call counts (a head called inside a timed call is not counted twice), except the
render timer, which is taken out of the data call around it; the rest of the step (masks, EMA update, the
sampler) is ``other``. The warm-up steps (default 1) are dropped.
Numbers are seconds per step on this machine, with whatever else it is running: read them as shares.

CLI::

    python -m dgsslib.engine.step_profile --profile mini --config configs/rein_a/mini.yaml [--steps 4] [--set k=v ...]

Used by notebook 11 (the Rein-A step against a source-only step).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import tempfile
import time

import torch


class _Timers:
    """Outer timers count only their outermost call; an *inner* timer (``inner=True``: rendering inside the data
    pipeline) always counts, and its time is taken out of the outer call that encloses it."""

    def __init__(self):
        self.total, self.calls, self.depth, self.on = collections.defaultdict(float), collections.Counter(), 0, False
        self.outer: list[str] = []  # the label of the outer call in progress (at most one)

    def wrap(self, name, fn, inner: bool = False):
        def timed(*a, **k):
            if not self.on or (self.depth and not inner):
                return fn(*a, **k)
            label = name(*a, **k) if callable(name) else name
            self.depth += not inner
            if not inner:
                self.outer.append(label)
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t
                if inner:
                    for enclosing in self.outer:
                        self.total[enclosing] -= dt
                else:
                    self.depth -= 1
                    self.outer.pop()
                self.total[label] += dt
                self.calls[label] += 1
        return timed


def _grad(prefix, with_grad="student, grad"):
    return lambda *a, **k: f"{prefix} ({with_grad if torch.is_grad_enabled() else 'no grad'})"


@contextlib.contextmanager
def _patched(timers: _Timers):
    """Wrap the leaf calls (class attributes, restored on exit)."""
    from ..data.sources import Augmented
    from ..data.synthetic.dataset import SyntheticStreets
    from ..heads import HEADS
    from ..heads.mask2former.head import Mask2FormerHead
    from ..recipes import rein_a
    from ..uda.stm import SemanticTransferModule
    from ..backbones.vfm import VFM
    saved = []

    def patch(owner, attr, name, inner=False):
        saved.append((owner, attr, owner.__dict__[attr]))
        setattr(owner, attr, timers.wrap(name, owner.__dict__[attr], inner))

    patch(VFM, "forward_features", _grad("VFM forward"))
    for head in {HEADS.get(n) for n in HEADS}:  # every registered head's own forward and loss
        if "forward" in head.__dict__:
            patch(head, "forward", _grad("head forward"))
        if "loss" in head.__dict__:
            patch(head, "loss", "Hungarian loss" if head is Mask2FormerHead else "head loss")
    if "refine" in HEADS.get("vfmseg").__dict__:
        patch(HEADS.get("vfmseg"), "refine", _grad("MGRNet refine"))
    patch(Augmented, "__getitem__", "data: augmentation, collation")
    patch(SyntheticStreets, "load", "data: render or cache read", inner=True)
    for opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):  # (AdamW may inherit Adam's step)
        if "step" in opt.__dict__:
            patch(opt, "step", "optimiser step")
    patch(SemanticTransferModule, "forward", _grad("STM forward", "grad"))
    patch(rein_a, "query_losses", "query loss")
    patch(rein_a, "class_mix", "ClassMix")
    patch(rein_a.ReinA, "region_map", "region maps")
    patch(torch.Tensor, "backward", "backward")
    try:
        yield
    finally:
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)


def profile_step(cfg: dict, steps: int = 4, warmup: int = 1, split: bool = True) -> dict:
    """Run ``fit`` for ``warmup`` + ``steps`` steps on ``cfg`` without evaluation and time the last ``steps``: from
    the end of the last warm-up step (its optimiser step and ``after_step``) to the end of the last step, so each
    timed step includes drawing its batch. Returns {"s_per_step": float, "parts": {name: s/step},
    "calls": {name: calls/step}, "steps": n}. ``warmup`` > 1 for a compiled model, which may compile twice;
    ``split=False`` times whole steps only, without wrapping the parts (``torch.compile`` would trace the timers
    and recompile on their state)."""
    from .train import fit
    from ..notebook import variant
    if steps < 1 or warmup < 1:
        raise ValueError(f"steps and warmup must be >= 1, got steps={steps}, warmup={warmup}")
    timers = _Timers()
    marks = []

    cfg = variant(cfg, **{"train.max_steps": warmup + steps, "train.ckpt_every": 0, "train.eval_every": 0,
                          "data.eval": []})
    from ..recipes import RECIPES
    recipe_cls = RECIPES.get(cfg["recipe"])
    own = recipe_cls.__dict__.get("after_step")
    after_fn = recipe_cls.after_step

    def after_step(self, model, t):
        out = after_fn(self, model, t)
        if t == warmup - 1:  # warm-up done: time from here
            timers.total.clear(), timers.calls.clear()
            timers.on = True
            marks.append(time.perf_counter())
        elif t == warmup + steps - 1:
            marks.append(time.perf_counter())
            timers.on = False
        return out
    recipe_cls.after_step = after_step
    try:
        with (_patched(timers) if split else contextlib.nullcontext()), tempfile.TemporaryDirectory() as work:
            fit(cfg, f"{work}/run", progress=False)
    finally:
        if own is None:
            del recipe_cls.after_step
        else:
            recipe_cls.after_step = own
    per = (marks[-1] - marks[0]) / steps if len(marks) == 2 else float("nan")
    parts = {k: v / steps for k, v in sorted(timers.total.items(), key=lambda kv: -kv[1])}
    parts["other (masks, EMA, sampler)"] = max(0.0, per - sum(parts.values()))
    return {"s_per_step": per, "parts": parts, "calls": {k: c / steps for k, c in timers.calls.items()}, "steps": steps}


def markdown(prof: dict, title: str = "") -> str:
    rows = [f"| {title or 'part'} | s/step | share |", "|---|---|---|"]
    for k, v in prof["parts"].items():
        calls = prof["calls"].get(k)
        rows.append(f"| {k}{f' ×{calls:g}' if calls else ''} | {v:.2f} | {100 * v / prof['s_per_step']:.0f} % |")
    rows.append(f"| **step** | **{prof['s_per_step']:.2f}** | |")
    return "\n".join(rows)


def main(argv=None) -> int:
    from ..profiles import load_config_file, merge, parse_value, resolve, dotted_to_nested
    from ..engine.validation import validate
    from pathlib import Path
    ap = argparse.ArgumentParser(prog="python -m dgsslib.engine.step_profile", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    cfg = resolve(a.profile)
    if a.config:
        cfg = merge(cfg, load_config_file(Path(a.config)))
    for kv in a.set:
        k, _, v = kv.partition("=")
        cfg = merge(cfg, dotted_to_nested({k: parse_value(v)}))
    prof = profile_step(validate(cfg), a.steps)
    print(markdown(prof, f"{cfg['recipe']} step, batch {cfg['train']['batch_size']}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
