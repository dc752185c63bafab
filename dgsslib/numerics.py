"""Portable CPU numerics: pin PyTorch's CPU kernels to their AVX2 paths, so the vector ISA stops choosing the bits.

Why (notebook 11, §2). PyTorch's CPU wheels pick kernels by the machine's vector ISA: ATen's vectorised
reductions / softmax / attention and oneDNN's convolutions take an AVX-512 path where the CPU has one and an AVX2
path where it does not, and the two sum in different orders. Notebook 11's committed source-only run was trained on
an AVX2-only EPYC; rerun from the same commit on an AVX-512 EPYC its first loss differed in the 4th decimal, and 400
steps of Mask2Former training (Hungarian matching and importance-sampled points: discrete choices that flip on float
noise) turned that into 34.1 vs 39.5 source mIoU. No schedule removes that sensitivity in a 400-step CPU run.

What. Before torch runs its first CPU kernel, :func:`pin` sets

    ATEN_CPU_CAPABILITY = avx2      ATen's dispatched kernels (read once, at the first dispatch)
    MKL_CBWR            = AVX2      MKL's Conditional Numerical Reproducibility mode (read at MKL's init)
    ONEDNN_MAX_CPU_ISA  = AVX2      oneDNN's convolutions and fused kernels

on x86-64 CPUs with AVX2 and FMA (elsewhere nothing is pinned and records say ``native``).

Measured on an AVX-512 EPYC (forward + backward of the mini Mask2Former, DINOv2-S/14 + Rein, batch 4, quiet):
native 0.88 s, pinned 0.92 s; pinned and native gradients differ (the pins reach ISA-dependent kernels); the pinned
bits are the same at 2, 3, 4 and 8 intra-op threads, not at 1 (a serial path: the record keeps the thread count).

What it does *not* guarantee. Equal bits on two different CPUs are not verified: this repository has one kind of
machine at a time. Emulating the AVX2-only EPYC here (ATen and oneDNN pinned, MKL as is) did not reproduce the run
committed from it (35.73 vs 34.12 source mIoU; native here 39.54), so something the variables cannot reach still
depends on the CPU -- MKL's own dispatch (Intel documents that on non-Intel CPUs a ``MKL_CBWR`` branch other than
AUTO/COMPATIBLE falls back to AUTO; ``MKL_ENABLE_INSTRUCTIONS`` changed nothing on this AMD CPU) or cache-dependent
blocking. ``MKL_CBWR=COMPATIBLE`` (documented as identical on every x86 CPU) cost 1.55x per step here, so it is not
the default; set it yourself (a user's value is kept, and the record then says ``native``). What the pin does buy:
the AVX-512 / AVX2 split, the cause measured above, is gone, and every record states its kernels, so a mismatch
is explained rather than guessed.

``dgsslib`` calls :func:`pin` when it is imported (``import torch`` before it is fine as long as no tensor op has
run). ``DGSS_NUMERICS=native`` turns it off (the machine's own kernels) and removes pins an ancestor dgsslib process
set; a variable the user set is never overwritten. Every record stores :func:`describe` in its provenance, and
``--reproduce`` reruns a record under the numerics it was made with (records made before this module: ``native``).
"""
from __future__ import annotations

import os
import platform

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
ALIASES = {"ONEDNN_MAX_CPU_ISA": "DNNL_MAX_CPU_ISA"}  # oneDNN reads either name: a user's DNNL_ value is theirs
ENV = "DGSS_NUMERICS"
MARK = "DGSS_NUMERICS_PINNED"  # the keys a dgsslib process pinned, so its children know them from a user's
MODES = ("portable", "native")
_SET_BY_US: set[str] = set(filter(None, os.environ.get(MARK, "").split(",")))


def _check(value, where: str) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in MODES:
        raise ValueError(f"{where}={value!r}: expected one of {', '.join(MODES)}")
    return text


def mode() -> str:
    """The requested mode: ``portable`` (default) or ``native``, from ``DGSS_NUMERICS``; anything else is refused."""
    return _check(os.environ.get(ENV) or "portable", ENV)


def cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.split(":")[0].strip() in ("flags", "Features"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def can_pin() -> bool:
    """x86-64 with AVX2 and FMA (the pinned paths use both); elsewhere nothing is pinned and records say native."""
    return platform.machine().lower() in ("x86_64", "amd64") and {"avx2", "fma"} <= cpu_flags()


def _drop_ours(env) -> None:
    for key in _SET_BY_US:
        env.pop(key, None)
    env.pop(MARK, None)


def pin() -> str:
    """Portable mode: set the kernel variables (never over a user's value); native mode: drop the ones an
    ancestor dgsslib process set. Returns the requested mode."""
    current = mode()
    if current == "native":
        _drop_ours(os.environ)
        _SET_BY_US.clear()
    elif can_pin():
        for key, value in PINS.items():
            if key not in os.environ and ALIASES.get(key, key) not in os.environ:
                os.environ[key] = value
                _SET_BY_US.add(key)
        if _SET_BY_US:
            os.environ[MARK] = ",".join(sorted(_SET_BY_US))
    return current


def native_env(env: dict | None = None) -> dict:
    """A copy of ``env`` (default: this process's) for a child that must run native kernels (a rerun of a record
    made natively, its trace): the pins a dgsslib process set removed, a user's kept, ``DGSS_NUMERICS=native``."""
    out = dict(os.environ if env is None else env)
    _drop_ours(out)
    out[ENV] = "native"
    return out


def portable_env(env: dict | None = None) -> dict:
    """A copy of ``env`` for a child that must run portable kernels even with no dgsslib of this version to pin
    them (an old commit's trace): the pins set explicitly, ``DGSS_NUMERICS=portable``."""
    out = dict(os.environ if env is None else env)
    _drop_ours(out)
    if can_pin():
        out.update({k: v for k, v in PINS.items() if k not in out and ALIASES.get(k, k) not in out})
    out[ENV] = "portable"
    return out


def describe() -> dict:
    """What a record stores. ``mode`` is what is *in effect*: ``portable`` only when every pin holds our value
    and torch dispatches to the AVX2 kernels (not on ARM, on a CPU without AVX2, under a user's own value, or
    after a tensor op ran before ``import dgsslib``); ``requested`` is what was asked for."""
    import torch
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    env = {k: os.environ[k] for k in (*PINS, *ALIASES.values()) if k in os.environ}
    pinned = can_pin() and all(env.get(k) == v for k, v in PINS.items()) and capability == "AVX2"
    requested = mode()
    return {"mode": "portable" if requested == "portable" and pinned else "native", "requested": requested,
            "cpu_capability": capability, "env": env, "threads": torch.get_num_threads()}


def recorded_mode(provenance: dict | None) -> str:
    """The numerics a record was made with (``native`` for records older than this module); a value that is
    neither mode is refused (ValueError), so a damaged record is bad input, not a loop of reruns."""
    num = (provenance or {}).get("numerics")
    if not isinstance(num, dict):
        return "native"
    return _check(num.get("mode"), "the record's numerics.mode")


def isa(cpu_label: str | None) -> str | None:
    """The vector ISA in a :func:`dgsslib.results.provenance.cpu_label` (``"AMD EPYC 9B14 (avx512)"`` -> avx512)."""
    if not cpu_label or not cpu_label.endswith(")") or "(" not in cpu_label:
        return None
    return cpu_label.rsplit("(", 1)[1][:-1]


__all__ = ["ALIASES", "ENV", "MARK", "MODES", "PINS", "can_pin", "cpu_flags", "describe", "isa", "mode",
           "native_env", "pin", "portable_env", "recorded_mode"]
