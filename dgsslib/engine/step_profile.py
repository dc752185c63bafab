"""Where a training step's time goes: the recipe's step run under ``fit``, its parts timed.

The step is the real one (``fit`` on the given config for a few steps, random or loaded weights, no
evaluation); while it runs, the leaf calls every recipe makes are wrapped with wall-clock timers:

* ``VFM forward`` -- the backbone with its method's hooks, split by whether autograd records it
  (the student) or not (an EMA teacher, the STM's features);
* ``head forward`` -- the decode head (student with grad / teacher without), ``STM forward`` (Rein-A);
* ``Hungarian loss`` -- the head's (and the STM's) matching + mask-classification loss;
* ``query loss``, ``ClassMix``, ``region maps`` -- Rein-A's other parts; ``backward`` -- ``loss.backward()``.

Only the outermost timed call counts (a head called inside a timed call is not counted twice); the
rest of the step (optimiser, EMA update, data) is ``other``. The first step warms up and is dropped.
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
    def __init__(self):
        self.total, self.calls, self.depth, self.on = collections.defaultdict(float), collections.Counter(), 0, False

    def wrap(self, name, fn):
        def timed(*a, **k):
            if self.depth or not self.on:
                return fn(*a, **k)
            label = name(*a, **k) if callable(name) else name
            self.depth += 1
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.depth -= 1
                self.total[label] += time.perf_counter() - t
                self.calls[label] += 1
        return timed


def _grad(prefix, with_grad="student, grad"):
    return lambda *a, **k: f"{prefix} ({with_grad if torch.is_grad_enabled() else 'no grad'})"


@contextlib.contextmanager
def _patched(timers: _Timers):
    """Wrap the leaf calls (class attributes, restored on exit)."""
    from ..heads.mask2former.head import Mask2FormerHead
    from ..recipes import rein_a
    from ..uda.stm import SemanticTransferModule
    from ..backbones.vfm import VFM
    saved = []

    def patch(owner, attr, name):
        saved.append((owner, attr, owner.__dict__[attr]))
        setattr(owner, attr, timers.wrap(name, owner.__dict__[attr]))

    patch(VFM, "forward_features", _grad("VFM forward"))
    patch(Mask2FormerHead, "forward", _grad("head forward"))
    patch(Mask2FormerHead, "loss", "Hungarian loss")
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


def profile_step(cfg: dict, steps: int = 4) -> dict:
    """Run ``fit`` for ``steps`` steps (+1 warm-up) on ``cfg`` without evaluation; returns
    {"s_per_step": float, "parts": {name: s/step}, "calls": {name: calls/step}, "steps": n}."""
    from .train import fit
    from ..notebook import variant
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    timers = _Timers()
    marks = []

    cfg = variant(cfg, **{"train.max_steps": steps + 1, "train.ckpt_every": 0, "train.eval_every": 0, "data.eval": []})
    with _patched(timers), tempfile.TemporaryDirectory() as work:
        orig_step = {}

        def start_timing(recipe_cls):
            step_fn = recipe_cls.step

            def step(self, model, batches, t):
                if t == 1:  # step 0 warms up: reset, then time steps 1..n
                    timers.total.clear(), timers.calls.clear()
                    marks.append(time.perf_counter())
                timers.on = t >= 1
                return step_fn(self, model, batches, t)
            orig_step[recipe_cls] = step_fn
            recipe_cls.step = step

        from ..recipes import RECIPES
        recipe_cls = RECIPES.get(cfg["recipe"])
        start_timing(recipe_cls)
        try:
            fit(cfg, f"{work}/run", progress=False)
        finally:
            recipe_cls.step = orig_step[recipe_cls]
        marks.append(time.perf_counter())
    per = (marks[-1] - marks[0]) / steps if len(marks) == 2 else float("nan")
    parts = {k: v / steps for k, v in sorted(timers.total.items(), key=lambda kv: -kv[1])}
    parts["other (optimiser, EMA, data, final save)"] = max(0.0, per - sum(parts.values()))
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
