"""Checkpoints that hold only what trains: safetensors + JSON metadata, written atomically.

A frozen VFM is never stored (Rein: 0.01 GB of tokens + 0.08 GB of head instead of 1.22 GB).
A checkpoint file holds ``model.<name>`` (trainable parameters and head/method buffers) and
``optim.<name>.<slot>`` (AdamW moments) tensors; its safetensors metadata (and a ``.json``
sidecar for people) records backbone, weights, method + options, head, config, step and RNG
states. Writes go to a temporary file and are renamed into place, so a kill never leaves a
half-written checkpoint. Resuming from another backbone/method is refused with a clear message.
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file


class CheckpointMismatch(RuntimeError):
    pass


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def rng_state() -> dict:
    return {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
            "numpy": repr(np.random.get_state()[1][:4].tolist()), "python": random.getstate()[1][0]}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Atomic safetensors write with ``meta`` JSON-encoded in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata={"dgsslib": json.dumps(meta, default=str)})
    os.replace(tmp, path)
    _atomic_json(path.with_suffix(".json"), meta)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("dgsslib", "{}"))
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def identity(meta_or_cfg: dict) -> dict:
    """What must agree between a checkpoint and the run resuming from it."""
    keys = ("backbone", "method", "method_options", "head", "head_options", "patch_size")
    return {k: meta_or_cfg.get(k) for k in keys}


def check_compatible(meta: dict, cfg: dict, path) -> None:
    have, want = identity(meta.get("config", meta)), identity(cfg)
    diff = {k: (have[k], want[k]) for k in have if have[k] != want[k]}
    if diff:
        lines = ", ".join(f"{k}: checkpoint={a!r} vs this run={b!r}" for k, (a, b) in diff.items())
        raise CheckpointMismatch(f"checkpoint {path} was made by another model ({lines}). "
                                 "Use a fresh --work-dir, or the same backbone/method/options.")


def save_checkpoint(path: Path, model, optimizer, step: int, cfg: dict, extra: dict | None = None) -> None:
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {f"model.{k}": v for k, v in model.trainable_state().items()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for slot, val in optimizer.state.get(p, {}).items():
                if torch.is_tensor(val):
                    tensors[f"optim.{names[id(p)]}.{slot}"] = val
    meta = {"step": step, "config": cfg, **identity(cfg), "weights": cfg.get("weights"),
            "rng": rng_state(), **(extra or {})}
    save_tensors(path, tensors, meta)


def load_checkpoint(path: Path, model, optimizer=None, cfg: dict | None = None) -> dict:
    """Restore trainable state (strictly) and optimiser moments; return the metadata."""
    tensors, meta = load_tensors(path)
    if cfg is not None:
        check_compatible(meta, cfg, path)
    state = model.trainable_state()
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = sorted(set(state) - set(saved)), sorted(set(saved) - set(state))
    if missing or unexpected:
        raise CheckpointMismatch(f"checkpoint {path} does not fit this model: missing {missing[:8]}, "
                                 f"unexpected {unexpected[:8]}")
    with torch.no_grad():
        for k, t in state.items():
            if t.shape != saved[k].shape:
                raise CheckpointMismatch(f"{k}: shape {tuple(saved[k].shape)} in {path}, model has {tuple(t.shape)}")
            t.copy_(saved[k].to(t.device, t.dtype))
    if optimizer is not None:
        params = dict(model.named_parameters())
        for k, v in tensors.items():
            if k.startswith("optim."):
                name, slot = k[len("optim."):].rsplit(".", 1)
                p = params[name]
                optimizer.state.setdefault(p, {})[slot] = v.to(p.device)
    return meta


def latest_checkpoint(work_dir: Path) -> Path | None:
    ptr = Path(work_dir) / "ckpt" / "latest.json"
    if not ptr.exists():
        return None
    path = Path(work_dir) / "ckpt" / json.loads(ptr.read_text())["file"]
    return path if path.exists() else None


def write_latest(work_dir: Path, path: Path, step: int, keep: int = 2) -> None:
    ckdir = Path(work_dir) / "ckpt"
    _atomic_json(ckdir / "latest.json", {"file": path.name, "step": step})
    olds = sorted(ckdir.glob("step_*.safetensors"))
    for old in olds[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
