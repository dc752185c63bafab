"""The one trainer: every paper's method is a plug-in, every paper's step is a recipe; the loop is the same.

    for t in start..T-1:   batches ← streams(t);  terms ← recipe.step(model, batches, t)
                           θ ← AdamW(θ, mask_t ⊙ ∇ terms["loss"]),  lr_t = lr·(1 − t/T)^0.9;  recipe.after_step

``fit`` owns what every paper shares: data streams with step-indexed samplers (exact resume;
optional Rare Class Sampling), AdamW groups and the poly schedule (:mod:`dgsslib.optim`),
selection masks on gradients, moments and weight decay, bf16 autocast on CUDA, gradient
clipping, the NaN/inf stop, atomic checkpoints (trainable state + optimiser + recipe state),
periodic evaluation, progress, DDP (``torchrun --nproc_per_node=N``). The paper's part lives in
its method (:mod:`dgsslib.adapters`) and its recipe (:mod:`dgsslib.recipes`).

Safety (see :mod:`dgsslib.engine.workdir` for the table): the config is type-checked and every dataset
opened before any model is built; a work dir holding a run is never overwritten without
``--overwrite``; ``--resume`` continues only the same run (only ``train.max_steps`` may grow)
from the newest *readable* checkpoint; a ``.lock`` prevents two runs in one dir; after NaN/inf
the checkpoint left as "last good" is one whose weights gave a finite loss.

The command line over ``fit`` is :mod:`dgsslib.train` (``python -m dgsslib.train``).
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .. import checkpoint as ck
from . import runtime
from .evaluate import build_eval_sets, check_eval_data
from .loop import history_upto, run_loop
from ..optim import build_optimizer
from .records import write_json
from .workdir import RunLock, WorkDirError, check_checkpoint_config, check_same_run, holds_run, remove_run, \
    stored_config

__all__ = ["Callback", "fit"]


class Callback:
    """Observer seam for tests and tools: ``on_checkpoint(step, path)`` after each checkpoint."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        pass


def _loader(ds, cfg: dict, seed: int, start: int, rank: int, world: int, rcs: bool):
    from ..data.sources import Augmented, StepBatchSampler, collate, train_transform
    tc, d = cfg["train"], cfg["data"]
    min_crop = 0
    if rcs:
        from ..data.rcs import RareClassSampler
        sampler = RareClassSampler(ds, tc["batch_size"], seed, start, tc["max_steps"], rank, world,
                                   temperature=d["rcs"]["temperature"], min_pixels=d["rcs"]["min_pixels"],
                                   cache_dir=d["cache_dir"])
        min_crop = int(d["rcs"]["min_pixels"] * d["rcs"]["min_crop_ratio"])
    else:
        sampler = StepBatchSampler(len(ds), tc["batch_size"], seed, start, tc["max_steps"], rank, world)
    return torch.utils.data.DataLoader(Augmented(ds, train_transform(cfg), seed, min_crop_pixels=min_crop),
                                       batch_sampler=sampler, collate_fn=collate, num_workers=d["num_workers"])


def fit(cfg: dict, work_dir: str | Path, resume: bool = False, model=None, progress: bool = True,
        overwrite: bool = False, callbacks: list[Callback] | None = None) -> dict:
    """Train ``cfg`` (a resolved profile config) into ``work_dir``; return the results record."""
    from .validation import validate
    from ..data.sources import build_source
    from ..model import build_model
    from ..recipes import build_recipe

    cfg = validate(cfg)
    work_dir = Path(work_dir)
    rank, world = runtime.dist()
    device = runtime.device()
    tc = cfg["train"]
    callbacks = list(callbacks or [])
    say = (lambda m: print(f"[dgsslib] {m}", flush=True)) if rank == 0 else (lambda m: None)  # noqa: E731

    lock = RunLock(work_dir)
    if rank == 0:
        if holds_run(work_dir) and not resume and not overwrite:
            raise WorkDirError(f"{work_dir} already holds a run; continue it with --resume, train into a new "
                               "--work-dir, or replace it with --overwrite")
        lock.acquire()
        if lock.note:
            say(lock.note)
    try:
        extended = {}
        if rank == 0 and overwrite and not resume and holds_run(work_dir):
            remove_run(work_dir)
            say(f"--overwrite: removed the previous run in {work_dir}")
        if resume:
            extended = check_same_run(work_dir, cfg)
            check_checkpoint_config(work_dir, cfg)
        last, notes = ck.resume_point(work_dir) if resume else (None, [])
        for n in notes:
            say(f"--resume: {n}")
        if resume and last is None and ck.step_files(work_dir):
            raise WorkDirError(f"--resume: no readable checkpoint in {work_dir}/ckpt ({'; '.join(notes)}); "
                               "nothing was changed. Inspect the files, or use --overwrite to start again")
        start_meta = ck.load_tensors(last)[1] if last is not None else None
        start = int(start_meta["step"]) if start_meta else 0
        finished = (work_dir / "results.json").exists() and (work_dir / "final.safetensors").exists()
        if resume and finished:
            try:
                rec = json.loads((work_dir / "results.json").read_text())
                done = int(rec.get("final_step") or rec["config"]["train"]["max_steps"])
            except (ValueError, KeyError, TypeError, AttributeError):
                held = (ck.header_meta(work_dir / "final.safetensors") or {}).get("step")
                if not isinstance(held, int) or tc["max_steps"] <= held:  # no results to report: only extend
                    raise WorkDirError(f"--resume: {work_dir}/results.json is damaged; the finished weights are in "
                                       f"final.safetensors (step {held if held is not None else '?'}). Evaluate "
                                       "them with dgsslib.notebook.load_trained, extend the run with a larger "
                                       "--max-steps, or --overwrite to train again") from None
                done = held
                (work_dir / "results.json").replace(work_dir / "results.json.damaged")
                say(f"--resume: {work_dir}/results.json is damaged (kept aside as results.json.damaged); the "
                    f"finished run's step {done} is read from final.safetensors, and the extended run writes a "
                    "new results.json")
            if done == tc["max_steps"]:
                say(f"--resume: {work_dir} holds a finished run ({done} steps); reporting its results "
                    "(raise --max-steps to train further)")
                rec["reported_finished"] = True
                return rec
            if tc["max_steps"] < done:
                raise WorkDirError(f"--max-steps {tc['max_steps']} is below the {done} steps this finished run "
                                   f"already trained; use --max-steps > {done} to extend it")
        if start > tc["max_steps"]:
            raise WorkDirError(f"--max-steps {tc['max_steps']} is below the checkpoint's step {start}; "
                               f"use --max-steps > {start} to continue")
        if extended:
            (a, b), = extended.values()
            say(f"--resume: extending the run from train.max_steps {a} to {b}; the poly schedule now decays to "
                f"step {b} (steps < {start} used T = {a})")
        if resume and last is None:
            say(f"--resume: no checkpoint in {work_dir}/ckpt yet, starting from step 0")

        # -- data first (cheap, and every path is checked before any weight is loaded)
        recipe = build_recipe(cfg["recipe"], **cfg.get("recipe_options", {}))
        streams = {"source": build_source(cfg["data"]["train"], cfg, train=True)}
        if "target" in recipe.streams:
            if not cfg["data"]["target"]:
                raise ValueError(f"recipe {recipe.name!r} needs an unlabelled target stream: set data.target "
                                 "(e.g. --set data.target=synthetic:night)")
            streams["target"] = build_source(cfg["data"]["target"], cfg, train=True)
        eval_sets = build_eval_sets(cfg)
        check_eval_data(eval_sets, progress=progress and rank == 0)  # a broken eval file stops us before step 0

        # -- model, recipe, optimiser, resume
        torch.manual_seed(cfg["seed"])
        model = (model or build_model(cfg, verbose=rank == 0)).to(device)
        if resume and start_meta is not None:
            src = start_meta.get("weights_source")
            if src is not None and src != model.vfm.weights_source:
                raise WorkDirError(f"--resume: the checkpoint was trained on weights {src!r} but this run loads "
                                   f"{model.vfm.weights_source!r}; resume where the same weights are available")
        amp_dtype = runtime.amp_dtype(tc["amp"], device)
        net = model
        if world > 1:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                      find_unused_parameters=True)
        recipe.bind(net, lambda: runtime.autocast(device, amp_dtype), cfg)
        recipe.setup(model, cfg)
        opt = build_optimizer(model, tc)
        if last is not None:
            ck.load_checkpoint(last, model, opt, cfg, recipe=recipe)
            say(f"resumed from {last} (step {start})")
        if rank == 0:
            work_dir.mkdir(parents=True, exist_ok=True)
            if not (resume and stored_config(work_dir) is not None and not extended):
                write_json(work_dir / "config.json", cfg)
        history = history_upto(work_dir, start)
        if rank == 0:
            (work_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        loaders = {name: _loader(ds, cfg, cfg["seed"] + 7919 * k, start, rank, world,
                                 rcs=cfg["data"]["rcs"]["enabled"] and name == "source")
                   for k, (name, ds) in enumerate(streams.items())}
        return run_loop(cfg, work_dir, model, recipe, opt, loaders, eval_sets, start, device, amp_dtype,
                     rank, world, progress, callbacks, history, say)
    finally:
        lock.release()
