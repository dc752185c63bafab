"""Checkpoints that hold only what trains: safetensors + JSON metadata, written atomically.

A frozen VFM is never stored (Rein: 0.01 GB of tokens + 0.08 GB of head instead of 1.22 GB).
A checkpoint file holds ``model.<name>`` (trainable parameters and head/method buffers) and
``optim.<name>.<slot>`` (AdamW moments) tensors; its safetensors metadata (and a ``.json``
sidecar for people) records backbone, weights, method + options, head, config, step and RNG
states. Writes go to a temporary file and are renamed into place, so a kill never leaves a
half-written checkpoint. Resuming from another backbone/method/recipe is refused with a clear
message. ``recipe.<name>`` tensors hold the recipe's state (an EMA teacher, a selection map).
A method may store its tensors packed (``Method.pack_state``/``unpack_state``: a selection method
keeps only the selected elements of each weight matrix and of its moments, so a 5 % FisherTune
checkpoint of DINOv2-L is a tenth of Full's); :func:`packed_model_state` is what files hold.

Finding the checkpoint to resume: ``latest.json`` names the newest; when it, or the file it
names, is missing, truncated or unreadable, :func:`resume_point` falls back to the newest
checkpoint that opens and says which -- a damaged file never silently restarts a run from step
0. Rotation (``keep_ckpts``) deletes old files only after the new one has been read back.
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
    """A checkpoint that does not belong to this run (another model, recipe or config)."""


class CheckpointError(CheckpointMismatch):
    """A checkpoint file that cannot be read (missing, truncated, not safetensors)."""


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
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("dgsslib", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated/foreign files
        if _interrupted(exc):  # Ctrl-C while reading arrives wrapped by safetensors' Rust layer
            raise KeyboardInterrupt from exc
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                              "it is truncated or not a dgsslib safetensors file") from exc
    return tensors, meta


def _interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is (or was caused by) a Ctrl-C: a stop the user asked for, not a damaged file."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt) or "KeyboardInterrupt" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def header_meta(path: Path) -> dict | None:
    """The metadata stored in a checkpoint's safetensors header (None when unreadable): the run's own record
    of its config, which an edited or deleted ``config.json`` cannot change."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("dgsslib", "{}"))
    except Exception:  # truncated or foreign files: the caller falls back or reports
        return None


def readable(path: Path) -> bool:
    """True when ``path`` is a complete safetensors file (header and every tensor readable)."""
    try:
        load_tensors(path)
        return True
    except CheckpointError:
        return False


IDENTITY_KEYS = ("backbone", "method", "method_options", "head", "head_options", "patch_size",
                 "recipe", "recipe_options")


def identity(meta_or_cfg: dict) -> dict:
    """What must agree between a checkpoint and the run resuming from it."""
    return {k: meta_or_cfg.get(k) for k in IDENTITY_KEYS}


def check_compatible(meta: dict, cfg: dict, path) -> None:
    have, want = identity(meta.get("config", meta)), identity(cfg)
    diff = {k: (have[k], want[k]) for k in have if have[k] != want[k]}
    if diff:
        lines = ", ".join(f"{k}: checkpoint={a!r} vs this run={b!r}" for k, (a, b) in diff.items())
        raise CheckpointMismatch(f"checkpoint {path} was made by another model ({lines}). "
                                 "Use a fresh --work-dir, or the same backbone/method/options.")


def packed_model_state(model, optimizer=None) -> dict[str, torch.Tensor]:
    """``model.<name>`` (+ ``optim.<name>.<slot>``) tensors as a file stores them (the method's packing)."""
    tensors = {f"model.{k}": v for k, v in model.trainable_state().items()}
    if optimizer is not None:
        names = {id(p): n for n, p in model.named_parameters()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                for slot, val in optimizer.state.get(p, {}).items():
                    if torch.is_tensor(val):
                        tensors[f"optim.{names[id(p)]}.{slot}"] = val
    return model.method.pack_state(tensors)


def save_checkpoint(path: Path, model, optimizer, step: int, cfg: dict, extra: dict | None = None,
                    recipe=None) -> None:
    tensors = packed_model_state(model, optimizer)
    if recipe is not None:
        tensors.update({f"recipe.{k}": v for k, v in recipe.state_tensors().items()})
        extra = {**(extra or {}), "recipe_state": recipe.state_meta()}
    meta = {"step": step, "config": cfg, **identity(cfg), "weights": cfg.get("weights"),
            "rng": rng_state(), **(extra or {})}
    save_tensors(path, tensors, meta)


def load_trainable_state(model, tensors: dict[str, torch.Tensor], source) -> dict[str, torch.Tensor]:
    """Copy saved trainable tensors into ``model`` strictly (same names, same shapes); return them unpacked.

    ``tensors``: a checkpoint's (``model.*``, ``optim.*``, ``recipe.*`` keys, possibly packed by the
    method) or a ``final.safetensors``' (bare names). The one loader behind :func:`load_checkpoint`,
    Rein-A's source-only init and :func:`dgsslib.notebook.load_trained`."""
    if not any(k.startswith("model.") for k in tensors):  # final.safetensors stores bare names
        tensors = {f"model.{k}": v for k, v in tensors.items()}
    tensors = model.method.unpack_state(tensors)
    state = model.trainable_state()
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = sorted(set(state) - set(saved)), sorted(set(saved) - set(state))
    if missing or unexpected:
        raise CheckpointMismatch(f"{source} does not fit this model (another method or head?): missing "
                                 f"{missing[:8]}, unexpected {unexpected[:8]}")
    with torch.no_grad():
        for k, t in state.items():
            if t.shape != saved[k].shape:
                raise CheckpointMismatch(f"{k}: shape {tuple(saved[k].shape)} in {source}, model has {tuple(t.shape)}")
            t.copy_(saved[k].to(t.device, t.dtype))
    return tensors


def load_checkpoint(path: Path, model, optimizer=None, cfg: dict | None = None, recipe=None) -> dict:
    """Restore trainable state (strictly), optimiser moments and the recipe's state; return the metadata."""
    tensors, meta = load_tensors(path)
    if cfg is not None:
        check_compatible(meta, cfg, path)
    tensors = load_trainable_state(model, tensors, f"checkpoint {path}")
    if optimizer is not None:
        params = dict(model.named_parameters())
        for k, v in tensors.items():
            if k.startswith("optim."):
                name, slot = k[len("optim."):].rsplit(".", 1)
                p = params[name]
                optimizer.state.setdefault(p, {})[slot] = v.to(p.device)
    if recipe is not None:
        recipe.load_state_tensors({k[len("recipe."):]: v for k, v in tensors.items() if k.startswith("recipe.")})
        recipe.load_state_meta(meta.get("recipe_state", {}))
    return meta


def step_files(work_dir: Path) -> list[Path]:
    """Every ``ckpt/step_*.safetensors``, oldest first."""
    return sorted((Path(work_dir) / "ckpt").glob("step_*.safetensors"))


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The checkpoint ``latest.json`` names, if it exists (no validity check: see resume_point)."""
    ptr = Path(work_dir) / "ckpt" / "latest.json"
    try:
        path = Path(work_dir) / "ckpt" / json.loads(ptr.read_text())["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.exists() else None


def resume_point(work_dir: Path) -> tuple[Path | None, list[str]]:
    """(newest readable checkpoint or None, notes on every damaged or missing one skipped)."""
    notes = []
    named = latest_checkpoint(work_dir)
    ptr = Path(work_dir) / "ckpt" / "latest.json"
    if ptr.exists() and named is None:
        notes.append(f"{ptr} is unreadable or names a missing file")
    candidates = ([named] if named is not None else []) + [p for p in reversed(step_files(work_dir)) if p != named]
    candidates.sort(key=lambda p: p.name, reverse=True)  # step_0000040 > step_0000020
    for path in candidates:
        if readable(path):
            return path, notes
        notes.append(f"{path.name} is truncated or unreadable: skipped")
    return None, notes


def write_latest(work_dir: Path, path: Path, step: int, keep: int = 2) -> None:
    """Point ``latest.json`` at ``path`` (after reading it back) and delete checkpoints beyond ``keep``."""
    ckdir = Path(work_dir) / "ckpt"
    if not readable(path):
        raise CheckpointError(f"checkpoint {path} did not read back after writing (disk full?)")
    _atomic_json(ckdir / "latest.json", {"file": path.name, "step": step})
    olds = [p for p in step_files(work_dir) if p != path]
    for old in olds[: max(0, len(olds) - (keep - 1))] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def demote(path: Path, reason: str) -> None:
    """Rename a checkpoint whose weights proved bad to ``*.bad`` (kept for inspection)."""
    path = Path(path)
    for p in (path, path.with_suffix(".json")):
        if p.exists():
            os.replace(p, p.with_name(p.name + ".bad"))
    (path.parent / (path.name + ".bad.txt")).write_text(reason + "\n")
