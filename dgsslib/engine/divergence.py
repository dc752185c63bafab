"""How fast do two runs that differ by float noise drift apart? A lockstep probe of a supervised schedule.

Two copies of one model (same init, same batches, same loss points, same schedule); the second's
trainable weights are multiplied by (1 + ε·n) at step 0 (:func:`dgsslib.recipes.supervised.perturb_trainable`,
ε = 1e-7 ≈ float32 rounding). Every ``every`` steps it prints the relative weight distance

    d_t = ‖θ_t^a − θ_t^b‖ / ‖θ_t^a‖        (trainable tensors only)

and both copies' loss on the shared batch. A schedule whose d_t stays near ε forgets the noise; one
whose d_t grows geometrically amplifies it, and then the *end point* of a short run depends on the
machine's rounding (notebook 11, §2). The step is the supervised recipe's (the head's loss), AdamW over
``param_groups``, poly lr with warm-up, full-model gradient clipping -- :func:`dgsslib.engine.train.fit`'s
order; data are read in one fixed random order (not fit's sampler), so losses are not a fit run's.

CLI::

    python -m dgsslib.engine.divergence --profile mini --config configs/rein_a/mini.yaml \\
        --set train.lr=1e-3 --set train.warmup_steps=50 --set train.grad_clip=0.01 --set train.batch_size=4 \\
        [--steps 100] [--every 20] [--eps 1e-7]
"""
from __future__ import annotations

import argparse
import time

import torch


def _distance(a, b) -> float:
    with torch.no_grad():
        num = sum(((p - q).double() ** 2).sum() for p, q in zip(a.parameters(), b.parameters()) if p.requires_grad)
        den = sum((p.double() ** 2).sum() for p in a.parameters() if p.requires_grad)
    return float((num / den).sqrt())


def lockstep(cfg: dict, steps: int = 100, every: int = 20, eps: float = 1e-7, log=print) -> list[dict]:
    """Train two copies (one perturbed by ``eps``) in lockstep; returns [{"step", "distance", "loss_a", "loss_b"}]."""
    from ..data.sources import build_source
    from ..model import build_model
    from ..optim import build_optimizer, lr_factor, set_lr
    from ..recipes.supervised import perturb_trainable
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got {steps}, {every}")
    tc = cfg["train"]
    torch.manual_seed(cfg["seed"])
    a = build_model(cfg, verbose=False)
    b = build_model(cfg, verbose=False)
    b.load_state_dict(a.state_dict())
    perturb_trainable(b, eps)
    opts = [build_optimizer(m, tc) for m in (a, b)]
    ds = build_source(cfg["data"]["train"], cfg, train=True)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(cfg["seed"]))
    n, out, t0 = tc["batch_size"], [], time.time()
    a.train(), b.train()
    for step in range(steps):
        idx = [int(i) for i in order[(step * n) % len(ds):][:n]]
        x = torch.stack([ds[i]["image"] for i in idx])
        y = torch.stack([ds[i]["label"] for i in idx])
        losses = []
        for m, opt in zip((a, b), opts):
            torch.manual_seed(cfg["seed"] * 1_000_003 + step)
            set_lr(opt, lr_factor(step, tc["max_steps"], tc["poly_power"], tc["warmup_steps"]))
            loss = m.loss(m(x), y, generator=torch.Generator().manual_seed(cfg["seed"] * 7_777_777 + step))["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc["grad_clip"]:
                torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tc["grad_clip"])
            opt.step()
            losses.append(float(loss.detach()))
        if (step + 1) % every == 0 or step + 1 == steps:
            row = {"step": step + 1, "distance": _distance(a, b), "loss_a": losses[0], "loss_b": losses[1]}
            out.append(row)
            log(f"step {row['step']:4d}  relative weight distance {row['distance']:.2e}  "
                f"loss {row['loss_a']:.2f} vs {row['loss_b']:.2f}  ({time.time() - t0:.0f} s)")
    return out


def main(argv=None) -> int:
    from pathlib import Path

    from ..engine.validation import validate
    from ..profiles import dotted_to_nested, load_config_file, merge, parse_value, resolve
    ap = argparse.ArgumentParser(prog="python -m dgsslib.engine.divergence", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--eps", type=float, default=1e-7)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    cfg = resolve(a.profile)
    if a.config:
        cfg = merge(cfg, load_config_file(Path(a.config)))
    cfg = merge(cfg, {"recipe": "supervised", "recipe_options": {}, "data": {"target": None}})
    for kv in a.set:
        k, _, v = kv.partition("=")
        cfg = merge(cfg, dotted_to_nested({k: parse_value(v)}))
    lockstep(validate(cfg), a.steps, a.every, a.eps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
