"""Portable CPU numerics: one set of float kernels on every x86-64 machine, so a committed CPU run reruns bit for bit.

Why (notebook 11, §2). PyTorch's CPU wheels pick their kernels by the machine's vector ISA: ATen's vectorised
reductions / softmax / attention, MKL's GEMMs and oneDNN's convolutions each take an AVX-512 path where the CPU has
one and an AVX2 path where it does not, and the two sum in different orders. The committed Rein-A source-only run was
trained on an AVX2-only EPYC; rerun from the same commit on an AVX-512 EPYC its first loss differed in the 4th
decimal, and 400 steps of Mask2Former training (Hungarian matching and importance-sampled points: discrete choices
that flip on float noise) turned that into 34.1 vs 39.5 source mIoU. No schedule removes that sensitivity in a
400-step CPU run; pinning the kernels removes its cause.

What. Before torch runs its first CPU kernel, :func:`pin` sets

    ATEN_CPU_CAPABILITY = avx2      ATen's dispatched kernels (read once, at the first dispatch)
    MKL_CBWR            = AVX2      MKL's Conditional Numerical Reproducibility mode (GEMM, read at MKL's init)
    ONEDNN_MAX_CPU_ISA  = AVX2      oneDNN's convolutions and fused kernels

i.e. the AVX2 code paths, which every x86-64 CPU of the last decade runs (AVX-512 ones included). Measured on an
AVX-512 EPYC, a forward + backward of the mini Mask2Former (DINOv2-S/14 + Rein, batch 4): native 0.91 s, pinned
0.84 s; the pinned gradients are bit-equal to those of the same machine emulating an AVX2-only CPU
(``MKL_ENABLE_INSTRUCTIONS=AVX2``), the native ones are not; bit-equal at 2, 3, 4 and 8 intra-op threads, but not at
1 thread (a serial code path), so the record keeps the thread count. GPU kernels are untouched.

``dgsslib`` calls :func:`pin` when it is imported (``import torch`` before it is fine as long as no tensor op has
run). ``DGSS_NUMERICS=native`` turns it off (the machine's fastest kernels, machine-dependent bits); a variable the
user set is never overwritten. Every record stores :func:`describe` in its provenance, and ``--reproduce`` reruns a
record under the numerics it was made with (records made before this module: ``native``).
"""
from __future__ import annotations

import os
import platform

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
ENV = "DGSS_NUMERICS"
MODES = ("portable", "native")
_SET_BY_US: set[str] = set()


def mode() -> str:
    """``portable`` (default) or ``native``, from ``DGSS_NUMERICS``; anything else is refused."""
    value = os.environ.get(ENV, "portable").strip().lower() or "portable"
    if value not in MODES:
        raise ValueError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(MODES)}")
    return value


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def pin() -> str:
    """Set the portable kernel variables (x86-64 only, portable mode only, never over a user's value); the mode."""
    current = mode()
    if current == "portable" and _x86():
        for key, value in PINS.items():
            if key not in os.environ:
                os.environ[key] = value
                _SET_BY_US.add(key)
    return current


def native_env(env: dict | None = None) -> dict:
    """A copy of ``env`` (default: this process's) for a child that must run native kernels (the restamp traces,
    a rerun of a record made natively): our pins removed, ``DGSS_NUMERICS=native``."""
    out = dict(os.environ if env is None else env)
    for key in _SET_BY_US:
        out.pop(key, None)
    out[ENV] = "native"
    return out


def describe() -> dict:
    """What a record stores: the mode, the kernels torch actually dispatches to, the pinned variables, threads."""
    import torch
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    return {"mode": mode(), "cpu_capability": capability,
            "env": {k: os.environ[k] for k in PINS if k in os.environ}, "threads": torch.get_num_threads()}


def recorded_mode(provenance: dict | None) -> str:
    """The numerics a record was made with (``native`` for records older than this module)."""
    num = (provenance or {}).get("numerics")
    return num.get("mode", "native") if isinstance(num, dict) else "native"


__all__ = ["ENV", "MODES", "PINS", "describe", "mode", "native_env", "pin", "recorded_mode"]
