"""A run's *trace*: its own config, shrunk to the tiny backbone, trained for a few steps in seconds.

The trace is the cheap half of the evidence that a run's numbers still come from today's code
(golden-output tests, as timm's stored inference outputs or transformers' expected logit slices).
:func:`shrink` keeps everything that selects code -- method, head, recipe and all their options, the
data strings, render size, evaluation mode -- and scales down only sizes: the ``tiny`` random ViT
(4 blocks, 64-d), 8 training images, 3 steps of 2 (FisherTune: one step per phase, whether its phases
are given as steps or as fractions), 2 images per evaluation set (the first two sets). Rein-A's source-only start (``recipe_options.init``) is the
trace of the run it names, trained first in the same process.

The digest is sha256 over every logged loss term of every step (as printed by the trainer), the
exact bytes of the final trainable state and the per-class evaluation metrics: bit-equal digests
mean the same code path computed the same numbers. One thread, fixed seeds: a digest repeats on
one machine; another CPU (vector ISA) may round differently, so the caller stamps each trace with
its CPU (:func:`dgsslib.results.provenance.cpu_label`).

This file runs standalone against any checkout, today's or an old commit's worktree (it only uses
``dgsslib.train.fit``, which every commit has)::

    python dgsslib/results/trace.py --root TREE --jobs jobs.json --out traces.json

``jobs.json``: ``[{"key": ..., "config": {...}, "init": {...config of the run it starts from} | null}]``.
Used by ``python -m dgsslib.results --restamp`` (:mod:`dgsslib.results.restamp`).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

STEPS, BATCH, TRAIN_IMAGES, EVAL_IMAGES, EVAL_SETS = 3, 2, 8, 2, 2
TIME_KEYS = ("sec", "time", "wall", "date")


def shrink(cfg: dict) -> dict:
    """The trace's config: the run's own config with the sizes scaled down (see the module docstring)."""
    c = copy.deepcopy(cfg)
    c.update(profile="smoke", backbone="tiny", weights="none", patch_size=None, img_size=None)
    d = c["data"]
    d.update(train_length=TRAIN_IMAGES, eval_length=EVAL_IMAGES, eval=list(d["eval"])[:EVAL_SETS],
             cache_dir=None, num_workers=0)
    c["train"].update(max_steps=STEPS, batch_size=BATCH, log_every=1, ckpt_every=0, eval_every=0, keep_ckpts=1)
    c["eval"]["batch_size"] = BATCH
    ro = c["recipe_options"] = dict(c.get("recipe_options") or {})
    for phase in ("t1", "t2"):  # FisherTune's phases: one step each, T3 gets the rest (a fraction of 3 steps,
        v = ro.get(phase)     # or the recipe's default fraction, would round T2 to no step at all)
        if c.get("recipe") == "fishertune" or (isinstance(v, int) and not isinstance(v, bool)):
            ro[phase] = 1
    ro.pop("init", None)
    return c


def _numbers(row: dict) -> dict:
    return {k: v for k, v in sorted(row.items()) if isinstance(v, (int, float)) and not any(t in k for t in TIME_KEYS)}


def digest_run(work: Path) -> dict:
    """Digest of a finished trace run in ``work`` (history, final trainable state, metrics)."""
    from safetensors.torch import load_file
    h = hashlib.sha256()
    history = [json.loads(line) for line in (work / "history.jsonl").read_text().splitlines() if line.strip()]
    rows = [_numbers(r) for r in history]
    h.update(json.dumps(rows, sort_keys=True).encode())
    state = load_file(str(work / "final.safetensors"))
    for k in sorted(state):
        t = state[k].contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
    rec = json.loads((work / "results.json").read_text())
    metrics = {dom: {k: m.get(k) for k in ("miou", "acc", "per_class")} for dom, m in sorted(rec["metrics"].items())
               if isinstance(m, dict) and "miou" in m}
    h.update(json.dumps(metrics, sort_keys=True).encode())
    losses = [r["loss"] for r in rows if "loss" in r]
    return {"digest": "sha256:" + h.hexdigest(), "losses": losses[:STEPS],
            "miou": {d: round(m["miou"], 4) for d, m in metrics.items()}}


def run_trace(cfg: dict, init: dict | None, tmp: Path) -> dict:
    """Train the shrunk config (after the shrunk ``init`` run, when given) and digest it."""
    import torch
    from dgsslib.train import fit
    small = shrink(cfg)
    if init is not None:
        run_trace(init, None, tmp / "init")
        small["recipe_options"]["init"] = str(tmp / "init" / "run")
    t0 = time.time()
    fit(small, tmp / "run", resume=False, progress=False)
    out = digest_run(tmp / "run")
    out.update(seconds=round(time.time() - t0, 1), torch=torch.__version__, threads=1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="compute traces of run configs against one checkout")
    p.add_argument("--root", required=True, help="the checkout whose dgsslib runs the traces")
    p.add_argument("--jobs", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    root = str(Path(a.root).resolve())
    sys.path.insert(0, root)
    os.chdir(root)
    import contextlib
    import io

    import torch
    import dgsslib
    if not str(Path(dgsslib.__file__).resolve()).startswith(root):
        print(f"trace: dgsslib resolves to {dgsslib.__file__}, not to {root}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    out = {}
    for job in json.loads(Path(a.jobs).read_text()):
        with tempfile.TemporaryDirectory(prefix="dgss-trace-") as tmp, contextlib.redirect_stdout(io.StringIO()):
            out[job["key"]] = run_trace(job["config"], job.get("init"), Path(tmp))
        print(f"trace {job['key']}: {out[job['key']]['digest'][7:19]} ({out[job['key']]['seconds']} s)",
              file=sys.stderr, flush=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
