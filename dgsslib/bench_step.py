"""The mini training step as the notebooks run it -- data included -- with the render cache off and on.

``python -m dgsslib.bench`` times a model step on one fixed synthetic batch; a notebook's step also draws
a batch from the procedural benchmark, where each image is rendered (~5-20 ms) unless the render cache
(``data.cache_dir``, :class:`dgsslib.data.synthetic.SyntheticStreets`) serves it. This bench runs the real
``fit`` step (:func:`dgsslib.engine.step_profile.profile_step`: the mini profile's config, no evaluation) three
times in one process, on the same steps:

* **cache off** (``data.cache_dir: null``, every image rendered),
* **cache on, cold** (an empty cache folder: rendered and written),
* **cache on, warm** (the same folder again: every image read back) -- what a notebook's second and later
  runs see, since they draw the same images;

and appends one row each to ``results/bench.md`` (section "Mini training step"), with the data time per step
(the ``SyntheticStreets.load`` calls) and the ratio to the cache-off step measured in the same run.

    python -m dgsslib.bench --mini-step [--method rein] [--batch 8] [--steps 6] [--out results/bench.md]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

SECTION = "## Mini training step: the render cache (`python -m dgsslib.bench --mini-step`)"
COLUMNS = ["date", "device", "torch", "method", "batch", "size", "render cache", "s/step", "data s/step",
           "ratio to cache off", "steps"]


@contextlib.contextmanager
def _timed_loads(acc: list):
    """Add the wall time of every ``SyntheticStreets.load`` call to ``acc[0]``."""
    from .data.synthetic.dataset import SyntheticStreets
    orig = SyntheticStreets.load

    def load(self, index):
        t = time.perf_counter()
        try:
            return orig(self, index)
        finally:
            acc[0] += time.perf_counter() - t
            acc[1] += 1
    SyntheticStreets.load = load
    try:
        yield
    finally:
        SyntheticStreets.load = orig


def mini_step_cache(method: str = "rein", batch: int = 8, steps: int = 6, progress: bool = True,
                    profile: str = "mini") -> list[dict]:
    """[{cache, s_per_step, data_s_per_step, ratio, loads}] for cache off / on (cold) / on (warm), random weights
    (``profile="smoke"``: the same on the tiny ViT, for tests)."""
    from .engine.step_profile import profile_step
    from .engine.validation import validate
    from .notebook import variant
    from .profiles import resolve
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got steps={steps}, batch={batch}")
    base = variant(resolve(profile), method=method, weights="none", **{"train.batch_size": batch})
    out = []
    with tempfile.TemporaryDirectory(prefix="dgss-render-cache-") as cache:
        for name, cache_dir in (("off", None), ("on, cold", cache), ("on, warm", cache)):
            acc = [0.0, 0]
            if progress:
                print(f"[dgsslib] mini step, render cache {name}: {steps} + 1 steps", flush=True)
            with _timed_loads(acc):
                prof = profile_step(validate(variant(base, **{"data.cache_dir": cache_dir})), steps)
            out.append({"cache": name, "s_per_step": prof["s_per_step"], "data_s_per_step": acc[0] / (steps + 1),
                        "loads": acc[1]})
    for r in out:
        r["ratio"] = r["s_per_step"] / out[0]["s_per_step"]
    return out


def markdown(rows: list[dict], method: str, batch: int, steps: int, device: str) -> list[str]:
    """The rows for ``results/bench.md``; ``device``: the machine in words (``dgsslib.bench.device_name``)."""
    import torch

    from .profiles import resolve
    size = "x".join(map(str, resolve("mini")["data"]["size"]))
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    return [f"| {when} | {device} | {torch.__version__} | {method} | {batch} | {size} | "
            f"{r['cache']} | {r['s_per_step']:.3f} | {r['data_s_per_step']:.3f} | {r['ratio']:.2f} | {steps}+1w |"
            for r in rows]


def append(path: str | Path, rows: list[str]) -> None:
    from .bench_speed import append_section
    append_section(Path(path), SECTION, rows, "The notebooks' step (mini profile config, random weights, data drawn from "
                   "the procedural benchmark, no\nevaluation), three times in one process: ratios compare rows of the "
                   "same run (same `date`).", COLUMNS)


def main(argv=None, device: str = "CPU") -> int:
    """The ``--mini-step`` CLI; ``dgsslib.bench.main`` calls it with the machine's name."""
    p = argparse.ArgumentParser(prog="python -m dgsslib.bench --mini-step", description=__doc__.splitlines()[0])
    p.add_argument("--method", default="rein")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--out", default="results/bench.md", help="markdown file to append to ('' = none)")
    a = p.parse_args(argv)
    if a.out and Path(a.out).is_dir():
        print(f"[dgsslib] error: --out {a.out} is a folder; give a file path", file=sys.stderr)
        return 2
    try:
        rows = mini_step_cache(a.method, a.batch, a.steps)
    except ValueError as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    lines = markdown(rows, a.method, a.batch, a.steps, device)
    print("| " + " | ".join(COLUMNS) + " |\n" + "\n".join(lines))
    if a.out:
        append(a.out, lines)
        print(f"[dgsslib] appended to {a.out}")
    return 0
