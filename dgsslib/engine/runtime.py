"""Where a run executes: device, distributed rank/world, and the autocast dtype.

``train.amp`` (and ``bench --dtype``): ``auto`` = bf16 autocast on CUDA, fp32 on CPU; ``bf16`` =
bf16 autocast on any device; ``fp32`` = no autocast. One function decides it for the trainer,
the evaluator and the bench.
"""
from __future__ import annotations

import contextlib
import os

import torch

AMP_CHOICES = ("auto", "bf16", "fp32")


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def amp_dtype(amp: str, dev: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``dev`` (None = plain fp32)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if amp == "bf16" or (amp == "auto" and dev.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(dev: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` when ``dtype`` is set, else a no-op context."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=dtype)


def dist() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank() if world > 1 else 0), world
