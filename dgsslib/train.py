"""The one trainer: every paper's method is a plug-in object; the loop is the same.

    θ ← AdamW(θ, ∇L), lr_t = lr · (1 − t/T)^0.9  (poly, optional linear warm-up)

Param groups: head and method parameters at ``lr``; unfrozen original backbone weights at
``lr × method.backbone_lr_mult`` (Full: 0.1); no weight decay on norms, position/level/query
embeddings, tokens and scales. bf16 autocast on CUDA; gradient masks (selection methods) after
backward; atomic checkpoints of trainable state; exact resume; NaN/inf stops the run and keeps
the last good checkpoint. Runs under ``torchrun --nproc_per_node=N`` (DDP).

CLI::

    python -m dgsslib.train --method rein --backbone dinov2_s --profile mini --work-dir runs/x \
        [--max-steps N] [--ckpt-every K] [--seed S] [--resume] [--config FILE] [--set key=value ...]

Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ck
from .results import run_record, write_json

NO_DECAY = ("norm", "pos_embed", "cls_token", "reg_token", "mask_token", "level_embed", "query_embed",
            "query_feat", "gamma", "ls1", "ls2", "bn", "learnable_tokens", "scale", "prompt")


class TrainingDiverged(RuntimeError):
    pass


def param_groups(model, lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups: (backbone original | rest) × (decay | no decay)."""
    method = model.method
    norm_ids = {id(p) for m in model.modules()
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm))
                for p in m.parameters(recurse=False)}
    keys = NO_DECAY + tuple(method.no_decay_keys)
    # parameters a method added inside timm modules are registered on the method too
    method_ids = {id(p) for p in method.parameters()}
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        original = name.startswith("vfm.") and id(p) not in method_ids
        no_wd = id(p) in norm_ids or any(k in name for k in keys)
        key = (original, no_wd)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "base_lr": lr * (method.backbone_lr_mult if original else 1.0),
                           "weight_decay": 0.0 if no_wd else weight_decay}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    for g in groups.values():
        g["lr"] = g["base_lr"]
    return list(groups.values())


def lr_factor(step: int, max_steps: int, power: float, warmup: int) -> float:
    if warmup and step < warmup:
        return 1e-6 + (1 - 1e-6) * step / warmup
    return (1 - step / max(1, max_steps)) ** power


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _amp_dtype(cfg: dict, device: torch.device):
    amp = cfg["train"]["amp"]
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    if amp not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train.amp must be auto, bf16 or fp32, got {amp!r}")
    return None


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank() if world > 1 else 0), world


def evaluate_all(model, cfg: dict, device, amp_dtype, progress: bool = True) -> dict:
    from .data.sources import build_source, eval_name
    from .evaluate import evaluate
    e = cfg["eval"]
    out = {}
    for spec in cfg["data"]["eval"]:
        ds = build_source(spec, cfg, train=False)
        out[eval_name(spec)] = evaluate(model, ds, e["mode"], e["crop"], e["stride"], e["test_scale"],
                                        e["batch_size"], device, desc=f"eval {eval_name(spec)}",
                                        amp_dtype=amp_dtype, progress=progress)
    return out


def fit(cfg: dict, work_dir: str | Path, resume: bool = False, model=None, progress: bool = True) -> dict:
    """Train ``cfg`` (a resolved profile config) into ``work_dir``; return the results record."""
    from .data.sources import Augmented, StepBatchSampler, build_source, collate, train_transform
    from .model import build_model

    work_dir = Path(work_dir)
    rank, world = _dist()
    device = _device()
    tc = cfg["train"]
    torch.manual_seed(cfg["seed"])
    model = (model or build_model(cfg, verbose=rank == 0)).to(device)
    groups = param_groups(model, tc["lr"], tc["weight_decay"])
    if not groups:
        raise ValueError("nothing to train: no parameter requires grad")
    opt = torch.optim.AdamW(groups, lr=tc["lr"], betas=(0.9, 0.999), eps=1e-8)
    start = 0
    last = ck.latest_checkpoint(work_dir) if resume else None
    if resume and last is None and rank == 0:
        print(f"[dgsslib] --resume: no checkpoint in {work_dir}/ckpt, starting from step 0", flush=True)
    if last is not None:
        meta = ck.load_checkpoint(last, model, opt, cfg)
        start = int(meta["step"])
        if rank == 0:
            print(f"[dgsslib] resumed from {last} (step {start})", flush=True)
    if rank == 0:
        work_dir.mkdir(parents=True, exist_ok=True)
        write_json(work_dir / "config.json", cfg)
    amp_dtype = _amp_dtype(cfg, device)
    train_ds = build_source(cfg["data"]["train"], cfg, train=True)
    sampler = StepBatchSampler(len(train_ds), tc["batch_size"], cfg["seed"], start, tc["max_steps"], rank, world)
    loader = torch.utils.data.DataLoader(Augmented(train_ds, train_transform(cfg), cfg["seed"]),
                                         batch_sampler=sampler, collate_fn=collate,
                                         num_workers=cfg["data"]["num_workers"])
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                  find_unused_parameters=True)
    model.train()
    masks = model.method.grad_masks()
    fault_step = int(os.environ.get("DGSS_FAULT_AFTER_CKPT_STEP", -1))  # tests: SIGKILL ourselves
    t0, history = time.time(), []
    bar = tqdm(total=tc["max_steps"], initial=start, desc=f"train {cfg['method']}", disable=rank != 0 or not progress)
    step = start
    for step, batch in enumerate(loader, start=start):
        torch.manual_seed(cfg["seed"] * 1_000_003 + step)  # model-side randomness, resume-exact
        gen = torch.Generator(device="cpu").manual_seed(cfg["seed"] * 7_777_777 + step)
        factor = lr_factor(step, tc["max_steps"], tc["poly_power"], tc["warmup_steps"])
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        img, lab = batch["image"].to(device, non_blocking=True), batch["label"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = net(img)
        losses = model.loss(out, lab, generator=gen)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            bar.close()
            raise TrainingDiverged(f"loss is {loss.item()} at step {step}: training stopped; the last good "
                                   f"checkpoint is {ck.latest_checkpoint(work_dir)}. Lower train.lr or check the data.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masks:
            params = dict(model.named_parameters())
            for name, m in masks.items():
                if params[name].grad is not None:
                    params[name].grad.mul_(m.to(params[name].grad.device))
        if tc["grad_clip"]:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tc["grad_clip"])
        opt.step()
        done = step + 1
        history.append({"step": done, "loss": round(loss.item(), 5)})
        bar.update(1)
        if done % max(1, tc["log_every"]) == 0 or done == tc["max_steps"]:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
        if rank == 0 and tc["ckpt_every"] and done % tc["ckpt_every"] == 0 and done < tc["max_steps"]:
            path = work_dir / "ckpt" / f"step_{done:07d}.safetensors"
            ck.save_checkpoint(path, model, opt, done, cfg)
            ck.write_latest(work_dir, path, done, tc["keep_ckpts"])
            if done == fault_step:
                os.kill(os.getpid(), 9)
        if rank == 0 and tc["eval_every"] and done % tc["eval_every"] == 0 and done < tc["max_steps"]:
            write_json(work_dir / f"eval_step{done}.json", evaluate_all(model, cfg, device, amp_dtype, progress))
    bar.close()
    train_s = time.time() - t0
    record = {}
    if rank == 0:
        ck.save_tensors(work_dir / "final.safetensors", model.trainable_state(),
                        {"step": tc["max_steps"], "config": cfg, **ck.identity(cfg)})
        metrics = evaluate_all(model, cfg, device, amp_dtype, progress)
        record = run_record(cfg, model, metrics, train_seconds=train_s, steps_run=step + 1 - start,
                            history=history[:: max(1, len(history) // 1000)], resumed_from=start or None)
        write_json(work_dir / "results.json", record)
    if world > 1:
        torch.distributed.barrier()
    return record


def _parse(argv):
    from .adapters import METHODS
    from .backbones import BACKBONES
    from .profiles import PROFILES
    p = argparse.ArgumentParser(prog="python -m dgsslib.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--backbone", default=None, choices=sorted(BACKBONES),
                   help="default: the profile's (smoke: tiny, mini: dinov2_s, paper: dinov2_l)")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--work-dir", required=True)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--weights", help="auto | hub | offline | none | checkpoint path")
    p.add_argument("--resume", action="store_true", help="continue from WORK_DIR/ckpt/latest.json")
    p.add_argument("--config", help="JSON/YAML file of config overrides (e.g. configs/rein_g/paper.yaml)")
    p.add_argument("--option", action="append", default=[], metavar="K=V", help="method option, e.g. r=4")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. train.lr=1e-4")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def config_from_args(a) -> dict:
    from .profiles import dotted_to_nested, load_config_file, merge, parse_value, resolve
    cfg = resolve(a.profile)
    if a.config:
        cfg = merge(cfg, load_config_file(a.config))
    flat = {"method": a.method}
    if a.backbone:
        flat["backbone"] = a.backbone
    for key, val in (("train.max_steps", a.max_steps), ("train.ckpt_every", a.ckpt_every), ("seed", a.seed),
                     ("weights", a.weights)):
        if val is not None:
            flat[key] = val
    for kv in a.set:
        k, _, v = kv.partition("=")
        flat[k] = parse_value(v)
    for kv in a.option:
        k, _, v = kv.partition("=")
        flat[f"method_options.{k}"] = parse_value(v)
    return merge(cfg, dotted_to_nested(flat))


def main(argv=None) -> int:
    a = _parse(argv)
    try:
        cfg = config_from_args(a)
        record = fit(cfg, a.work_dir, resume=a.resume, progress=not a.no_progress)
    except TrainingDiverged as exc:
        print(f"[dgsslib] {exc}", file=sys.stderr)
        return 3
    except (ValueError, ck.CheckpointMismatch, FileNotFoundError) as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    if record:
        m = record["metrics"]
        print(json.dumps({k: round(v["miou"], 2) for k, v in m.items() if isinstance(v, dict)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
