"""Where a mini step's time goes, and what PyTorch's CPU options give (``python -m dgsslib.bench --mini-speed``).

Two tables in ``results/bench.md``, every row of one call measured in one process (same ``date``):

1. **Step profile** -- one mini step of each paper's recipe as its notebook trains it (the notebook's config file,
   random weights: cost does not depend on their values; batches drawn from the procedural benchmark with the
   render cache as mini has it), split by :func:`dgsslib.engine.step_profile.profile_step` into data (render or
   cache read; augmentation and collation), VFM forward, head forward, losses, backward, optimiser and the rest.
   Evaluation is not part of a step; its share of a notebook is read off the committed records (wall minus
   training seconds), in the last column.
2. **CPU options** -- the Rein-G mini step (notebook 10's config) as today (eager, 2 intra-op threads) and under
   ``torch.compile`` (inductor's CPU backend; compilation falls in the dropped warm-up step), channels-last memory
   format, and 1 thread; then one evaluation pass under ``torch.no_grad`` (today's) and ``torch.inference_mode``.
   Each as a ratio against today's row of the same run. Nothing here changes a default: a trial that pays is a
   separate change, with its own record of what it does to the numbers.

    python -m dgsslib.bench --mini-speed [--steps 3] [--out results/bench.md]
    python -m dgsslib.bench --mini-speed --profile smoke --out ''      # the plumbing on the tiny ViT (tests)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PROFILE_SECTION = "## Mini step profile: where the time goes (`python -m dgsslib.bench --mini-speed`)"
OPTIONS_SECTION = "## Mini step under PyTorch's CPU options (`python -m dgsslib.bench --mini-speed`)"
PARTS = [("data", ("data: render or cache read", "data: augmentation, collation")),
         ("VFM fwd", ("VFM forward (student, grad)", "VFM forward (no grad)")),
         ("head fwd", ("head forward (student, grad)", "head forward (no grad)", "MGRNet refine (student, grad)",
                       "MGRNet refine (no grad)", "STM forward (grad)", "STM forward (no grad)")),
         ("losses", ("Hungarian loss", "head loss", "query loss")),
         ("backward", ("backward",)), ("optimiser", ("optimiser step",))]
#: (label, notebook, config file or None, changes): each paper's step as its notebook trains it
STEPS = [("Freeze", "01_frozen_vs_full", None, {"method": "freeze", "train.batch_size": 8}),
         ("Rein-G", "10_rein_g", None, {"method": "rein", "train.batch_size": 8}),
         ("FisherTune, T3", "20_fishertune", "configs/fishertune/mini.yaml",
          {"recipe_options": {"t1": 0, "t2": 1}}),  # step 0 estimates (dropped as warm-up); steps 1.. are T3
         ("VFMSeg, two-view", "30_vfmseg", "configs/vfmseg/mini.yaml", {}),
         ("Rein-A (+ STM)", "11_rein_a", "configs/rein_a/mini.yaml", {})]


def step_config(profile: str, config_file: str | None, changes: dict) -> dict:
    from .engine.validation import validate
    from .notebook import variant
    from .profiles import load_config_file, merge, resolve
    cfg = resolve(profile)
    if config_file:
        cfg = merge(cfg, load_config_file(ROOT / config_file))
    if profile == "smoke":  # the tiny ViT: keep each recipe's structure, shrink what the smoke profile does not
        cfg = merge(cfg, {"train": {"batch_size": 2}})
        if cfg["head"] == "mask2former":
            cfg["head_options"] = {**cfg["head_options"], "enc_layers": 1, "dec_layers": 1, "num_points_train": 784}
        if cfg["head"] == "vfmseg":
            cfg = merge(cfg, {"data": {"size": [112, 224]}})
    cfg = variant(cfg, weights="none", **{k: v for k, v in changes.items() if k != "recipe_options"})
    if "recipe_options" in changes:
        cfg["recipe_options"] = {**cfg["recipe_options"], **changes["recipe_options"]}
    return validate(cfg)


def eval_share(notebook: str) -> float | None:
    """Share of a committed mini record's wall time spent outside training (evaluation, mostly)."""
    try:
        runs = json.loads((ROOT / "results" / notebook / "mini.json").read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    timed = [r for r in runs if isinstance(r.get("wall_seconds"), (int, float)) and isinstance(r.get("train_seconds"), (int, float))]
    wall, train = sum(r["wall_seconds"] for r in timed), sum(r["train_seconds"] for r in timed)  # reused runs: no wall
    return (wall - train) / wall if wall > 0 else None


def step_profiles(profile: str = "mini", steps: int = 3, progress: bool = True) -> list[dict]:
    from .engine.step_profile import profile_step
    rows = []
    for label, notebook, config_file, changes in STEPS:
        cfg = step_config(profile, config_file, changes)
        if progress:
            print(f"[dgsslib] step profile: {label} ({cfg['recipe']}, batch {cfg['train']['batch_size']}, "
                  f"{'x'.join(map(str, cfg['data']['size']))}), {steps} + 1 steps", flush=True)
        prof = profile_step(cfg, steps)
        parts = {name: sum(prof["parts"].get(k, 0.0) for k in keys) for name, keys in PARTS}
        parts["other"] = max(0.0, prof["s_per_step"] - sum(parts.values()))
        rows.append({"step": label, "notebook": notebook, "batch": cfg["train"]["batch_size"],
                     "size": "x".join(map(str, cfg["data"]["size"])), "s_per_step": prof["s_per_step"],
                     "parts": parts, "eval_share": eval_share(notebook)})
    return rows


@contextlib.contextmanager
def cpu_option(option: str):
    """Apply one CPU option to every model ``fit`` binds (``torch.compile`` / channels-last) or to the process
    (threads) for the duration; restored on exit."""
    from .recipes.base import Recipe
    bind, threads = Recipe.bind, torch.get_num_threads()

    def patched(self, net, autocast, cfg):
        if option == "compile":
            net = torch.compile(net, backend="inductor")
        elif option == "channels_last":
            net = net.to(memory_format=torch.channels_last)
            inner = net.forward
            net.forward = lambda images: inner(images.contiguous(memory_format=torch.channels_last))
        bind(self, net, autocast, cfg)
    if option in ("compile", "channels_last"):
        Recipe.bind = patched
    elif option == "threads_1":
        torch.set_num_threads(1)
    elif option != "eager":
        raise ValueError(f"unknown CPU option {option!r}")
    try:
        yield
    finally:
        Recipe.bind = bind
        torch.set_num_threads(threads)


def option_trials(profile: str = "mini", steps: int = 3, eval_images: int = 16, progress: bool = True) -> list[dict]:
    from .engine.evaluate import evaluate
    from .engine.step_profile import profile_step
    from .data.synthetic import SyntheticStreets
    from .model import build_model
    cfg = step_config(profile, None, STEPS[1][3])
    rows = []
    for option in ("eager", "compile", "channels_last", "threads_1"):
        if progress:
            print(f"[dgsslib] Rein-G mini step, {option}: {steps} + 1 steps", flush=True)
        t = time.perf_counter()
        try:
            with cpu_option(option):  # a compiled step may compile twice (train, then with recorded shapes)
                s = profile_step(cfg, steps, warmup=3 if option == "compile" else 1, split=False)["s_per_step"]
            rows.append({"what": f"train step: {option}", "seconds": s, "total": time.perf_counter() - t})
        except Exception as exc:  # a backend that cannot run here is a finding, not a crash of the bench
            rows.append({"what": f"train step: {option}", "seconds": None, "error": f"{type(exc).__name__}: {exc}"[:160]})
    model = build_model(cfg, verbose=False).eval()
    ds = SyntheticStreets("citys", split="val", length=eval_images, size=tuple(cfg["data"]["size"]))
    for option, ctx in (("no_grad (today)", contextlib.nullcontext), ("inference_mode", torch.inference_mode)):
        evaluate(model, ds, mode="whole", progress=False)  # warm-up
        t = time.perf_counter()
        with ctx():
            evaluate(model, ds, mode="whole", progress=False)
        rows.append({"what": f"evaluation, {eval_images} images: {option}", "seconds": time.perf_counter() - t})
    for r in rows:
        base = rows[0] if r["what"].startswith("train") else next(x for x in rows if x["what"].startswith("evaluation"))
        r["ratio"] = r["seconds"] / base["seconds"] if r["seconds"] and base["seconds"] else None
    return rows


def _fmt(v, nd=3):
    return "–" if v is None else f"{v:.{nd}f}"


def markdown(profiles: list[dict], trials: list[dict], device: str, steps: int) -> tuple[list[str], list[str]]:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    a = [f"| {when} | {device} | {torch.__version__} | {r['step']} ({r['notebook'][:2]}) | {r['batch']} | {r['size']} | "
         f"{r['s_per_step']:.2f} | " + " | ".join(f"{100 * r['parts'][k] / r['s_per_step']:.0f} %" for k, _ in PARTS)
         + f" | {100 * r['parts']['other'] / r['s_per_step']:.0f} % | "
         + ("–" if r["eval_share"] is None else f"{100 * r['eval_share']:.0f} %") + f" | {steps}+1w |" for r in profiles]
    b = [f"| {when} | {device} | {torch.__version__} | {r['what']} | {_fmt(r['seconds'])} | {_fmt(r.get('ratio'), 2)} | "
         f"{r.get('error', '')} |" for r in trials]
    return a, b


HEADERS = {
    PROFILE_SECTION: ("Each paper's step as its notebook trains it (its config, random weights, batches from the procedural "
                      "benchmark), split by `dgsslib.engine.step_profile`; shares of the step. *eval share*: the committed "
                      "mini record's wall time outside training (evaluation, mostly), for the notebook as a whole.",
                      ["date", "device", "torch", "step (notebook)", "batch", "size", "s/step", *[k for k, _ in PARTS],
                       "other", "eval share (records)", "steps"]),
    OPTIONS_SECTION: ("The Rein-G mini step (notebook 10's config) under each option, and one evaluation pass; ratio to "
                      "today's row of the same run (eager, 2 threads; `no_grad`). Nothing here is a default yet.",
                      ["date", "device", "torch", "what", "seconds", "ratio to today", "note"]),
}


def append_section(path: Path, section: str, rows: list[str], intro: str, cols: list[str]) -> None:
    """Add ``rows`` at the end of ``section``'s table in ``path`` (the section, with ``intro`` and a header of
    ``cols``, is created at the end of the file if missing); later sections stay where they are."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    if section not in text:
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"{section}\n\n{intro}\n\n| " + " | ".join(cols) + \
            " |\n" + "|---" * len(cols) + "|\n"
    head, rest = text.split(section, 1)
    cut = rest.find("\n## ")
    body, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    path.write_text(head + section + body.rstrip("\n") + "\n" + "\n".join(rows) + "\n" + tail)


def main(argv=None, device: str = "CPU") -> int:
    p = argparse.ArgumentParser(prog="python -m dgsslib.bench --mini-speed", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini", choices=["mini", "smoke"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--skip-options", action="store_true", help="the step profile only")
    p.add_argument("--out", default="results/bench.md", help="markdown file to add the rows to ('' = none)")
    a = p.parse_args(argv)
    if a.out and Path(a.out).is_dir():
        print(f"[dgsslib] error: --out {a.out} is a folder; give a file path", file=sys.stderr)
        return 2
    if a.steps < 1:
        print(f"[dgsslib] error: --steps must be >= 1, got {a.steps}", file=sys.stderr)
        return 2
    profiles = step_profiles(a.profile, a.steps)
    trials = [] if a.skip_options else option_trials(a.profile, a.steps, eval_images=4 if a.profile == "smoke" else 16)
    rows_a, rows_b = markdown(profiles, trials, device, a.steps)
    for section, rows in ((PROFILE_SECTION, rows_a), (OPTIONS_SECTION, rows_b)):
        intro, cols = HEADERS[section]
        print(f"\n{section}\n\n| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|\n" + "\n".join(rows))
        if a.out and rows:
            append_section(Path(a.out), section, rows, intro, cols)
    if a.out:
        print(f"[dgsslib] added to {a.out}")
    return 0
