"""The step loop of :func:`dgsslib.engine.train.fit`: the part every paper shares, one iteration at a time.

    for t in start..T-1:
        batches ← one batch per stream (source, target) at step t          (step-indexed samplers)
        terms   ← recipe.step(model, batches, t)                            (the paper's algorithm box)
        stop if terms["loss"] is not finite   (loss None: an estimation step, no model update -- FisherTune T2)
        backward;  mask_t = method.grad_masks(t):  g ⊙ mask, moments ⊙ mask (dgsslib.optim)
        clip;  decoupled decay ⊙ mask;  AdamW step at lr·(1 − t/T)^0.9;  recipe.after_step (EMA)
        log every term (history.jsonl);  checkpoint / evaluate on their cadence
    final checkpoint, final.safetensors, evaluation, results.json

After NaN/inf the checkpoint whose weights produced the bad loss is demoted (``*.bad``), so the
one left as "last good" gave a finite loss. Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .. import checkpoint as ck
from .evaluate import evaluate_all
from ..optim import apply_grad_masks, apply_masked_weight_decay, lr_factor, set_lr
from ..progress import progress_bar
from .records import run_record, write_json


class TrainingDiverged(RuntimeError):
    pass


def history_upto(work_dir: Path, upto: int) -> list[dict]:
    path = work_dir / "history.jsonl"
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:  # a half-written last line (killed mid-write): the checkpoint rules
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        elif line.strip():
            print(f"[dgsslib] --resume: {path} line {n} is not a history row; it is dropped "
                  "(the steps the checkpoint holds are logged again)", flush=True)
    return [r for r in rows if r["step"] <= upto]


def _finite_state(model) -> bool:
    return all(torch.isfinite(t).all() for t in model.trainable_state().values() if t.is_floating_point())


def run_loop(cfg, work_dir, model, recipe, opt, loaders, eval_sets, start, device, amp_dtype, rank, world,
          progress, callbacks, history, say) -> dict:
    tc = cfg["train"]
    model.train()
    t0 = time.time()
    bar = progress_bar(total=tc["max_steps"], initial=start, desc=f"train {cfg['method']}",
                       disable=rank != 0 or not progress)
    names = list(loaders)
    step = start - 1
    with (work_dir / "history.jsonl").open("a") if rank == 0 else open("/dev/null", "a") as hist:
        for step, batch_list in enumerate(zip(*loaders.values()), start=start):
            torch.manual_seed(cfg["seed"] * 1_000_003 + step)  # model-side randomness, resume-exact
            recipe.generator = torch.Generator(device="cpu").manual_seed(cfg["seed"] * 7_777_777 + step)
            set_lr(opt, lr_factor(step, tc["max_steps"], tc["poly_power"], tc["warmup_steps"]))
            batches = {n: {k: v.to(device, non_blocking=True) for k, v in b.items()} for n, b in zip(names, batch_list)}
            terms = recipe.step(model, batches, step)
            loss = terms["loss"]
            if loss is not None:  # None: the recipe estimated something this step; the model does not move
                if not torch.isfinite(loss):
                    bar.close()
                    raise TrainingDiverged(_diverged_message(work_dir, loss.item(), step))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                masks = model.method.grad_masks(step)
                apply_grad_masks(masks, opt)
                if tc["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tc["grad_clip"])
                apply_masked_weight_decay(opt, masks)
                opt.step()
            recipe.after_step(model, step)
            done = step + 1
            row = {"step": done, **{k: round(float(v.detach() if torch.is_tensor(v) else v), 5)
                                    for k, v in terms.items() if v is not None}}
            phase = recipe.phase(step)
            if phase:
                row["phase"] = phase
            history.append(row)
            hist.write(json.dumps(row) + "\n")
            bar.update(1)
            if done % tc["log_every"] == 0 or done == tc["max_steps"]:
                hist.flush()
                bar.set_postfix(loss="-" if loss is None else f"{loss.item():.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
            if rank == 0 and tc["ckpt_every"] and done % tc["ckpt_every"] == 0 and done < tc["max_steps"]:
                hist.flush()
                _checkpoint(work_dir, model, opt, done, cfg, recipe, callbacks)
            if rank == 0 and tc["eval_every"] and done % tc["eval_every"] == 0 and done < tc["max_steps"]:
                write_json(work_dir / f"eval_step{done}.json",
                           evaluate_all(model, cfg, device, amp_dtype, progress, eval_sets))
    bar.close()
    train_s = time.time() - t0
    record = {}
    if rank == 0:
        final_step = step + 1
        _checkpoint(work_dir, model, opt, final_step, cfg, recipe, callbacks)
        final = {k[len("model."):]: v for k, v in ck.packed_model_state(model).items()}  # packed by the method
        ck.save_tensors(work_dir / "final.safetensors", final,
                        {"step": final_step, "config": cfg, **ck.identity(cfg)})
        metrics = evaluate_all(model, cfg, device, amp_dtype, progress, eval_sets)
        means = {}
        for term in getattr(recipe, "summary_terms", ()):  # over every logged step of the run (resumed ones too)
            vals = [float(h[term]) for h in history if h.get(term) is not None]
            if vals:
                means[f"{term}_mean"] = sum(vals) / len(vals)
        record = run_record(cfg, model, metrics, summary_extra=means, train_seconds=train_s,
                            steps_run=final_step - start, final_step=final_step,
                            history=history[:: max(1, len(history) // 1000)],
                            resumed_from=start or None)
        write_json(work_dir / "results.json", record)
    if world > 1:
        torch.distributed.barrier()
    return record


def _checkpoint(work_dir, model, opt, done, cfg, recipe, callbacks) -> None:
    if not _finite_state(model):
        raise TrainingDiverged(_diverged_message(work_dir, float("nan"), done - 1, weights=True))
    path = work_dir / "ckpt" / f"step_{done:07d}.safetensors"
    ck.save_checkpoint(path, model, opt, done, cfg, recipe=recipe,
                       extra={"weights_source": model.vfm.weights_source})
    ck.write_latest(work_dir, path, done, cfg["train"]["keep_ckpts"])
    for cb in callbacks:
        cb.on_checkpoint(done, path)


def _diverged_message(work_dir: Path, value: float, step: int, weights: bool = False) -> str:
    """Demote a checkpoint whose weights produced the bad loss; name the last good one."""
    latest = ck.latest_checkpoint(work_dir)
    if latest is not None and int(ck.load_tensors(latest)[1].get("step", -1)) >= step:
        ck.demote(latest, f"its weights gave loss {value} at step {step}")
        older = [p for p in ck.step_files(work_dir) if ck.readable(p)]
        if older:
            ck.write_latest(work_dir, older[-1], int(ck.load_tensors(older[-1])[1]["step"]), keep=0)
        else:
            (work_dir / "ckpt" / "latest.json").unlink(missing_ok=True)
    good = ck.latest_checkpoint(work_dir)
    what = "the weights became non-finite" if weights else f"loss is {value}"
    return (f"{what} at step {step}: training stopped; the last good checkpoint is "
            f"{good if good else 'none (no checkpoint was written before the loss went bad)'}. "
            "Lower train.lr (or set train.grad_clip) and check the data.")
