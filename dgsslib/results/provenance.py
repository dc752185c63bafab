"""Provenance: which code, config, data generator and machine produced a number, and whether it still holds.

Every run record carries ``provenance(cfg)`` (written by the trainer, :mod:`dgsslib.engine.records`)::

    {"commit": "<sha>", "dirty": false, "dirty_paths": [], "code": {"dgsslib/engine/loop.py": "<ast sha>", …,
     "registry:method:rein": "dgsslib.adapters.rein:Rein"}, "config_hash": "sha256:…",
     "benchmark_version": 2, "torch": …, "timm": …, "python": …, "device": "cpu (2 threads)",
     "cpu": "AMD EPYC 9B14 (avx512)", "numerics": {"mode": "portable", "cpu_capability": "AVX2", …}, "date": …,
     "trace": {"digest": "sha256:…", "commit": "<sha>", "cpu": …, "seconds": 4.1, …},   # --restamp
     "attestations": [{"commit": "<sha>", "by": "trace", "code_digest": "sha256:…", …}]}  # --restamp

The rules (checked by ``tests/test_provenance.py``; ``python -m dgsslib.results --strict`` enforces them):

1. ``dirty``: ``git status`` lists a path under :data:`WATCHED` (modified, staged, deleted or untracked).
2. ``code`` is *declared*: :func:`dgsslib.results.codeid.dependencies` -- the static import closure of
   the engine plus the method, head and recipe the config names, each module hashed by its AST
   without docstrings; the registry entries used are keys of their own. Same function at record and check time.
3. A run is current when its ``code`` equals today's ``dependencies(config)``; comments, docstrings,
   formatting, new papers' files and new registry lines never change that.
4. Otherwise it is current when an *attestation* names today's code (``code_digest``, the sha256 of the
   code identity): ``--restamp`` recomputed the run's
   trace (:mod:`dgsslib.results.trace`) at a clean commit and it was bit-equal to the trace made at the
   run's own commit; the table then says ``ok (<orig> ≡ <attesting commit>)``.
5. Else it is flagged ``other code`` until ``--reproduce`` passes or it is rerun.
6. ``benchmark_version`` must equal the procedural generator's current version.
7. A notebook reuses a finished run by the same code rule (3-6, :func:`is_current`); a dirty tree is
   flagged in tables but does not stop reuse (the run's code identity was read from that tree).
8. Records name the CPU model and vector ISA, and the CPU numerics (:mod:`dgsslib.numerics`): native kernels differ
   between CPUs (AVX2 vs AVX-512); the default pins the AVX2 paths, ``--reproduce`` reruns a record under the
   numerics it was made with, and a portable record made under other pins than today's is flagged.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
from pathlib import Path

from .. import numerics
from . import codeid

ROOT = codeid.ROOT
#: folders whose uncommitted changes make a run dirty
WATCHED = ("dgsslib", "configs", "notebooks/src")


def _git(*args: str, root: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root or ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(short: bool = False) -> str:
    """HEAD's hash (``unknown`` outside a git checkout)."""
    out = _git("rev-parse", *(["--short"] if short else []), "HEAD")
    return out.strip() if out and out.strip() else "unknown"


def dirty_paths(root: Path | None = None) -> list[str] | None:
    """Paths under :data:`WATCHED` that differ from HEAD (incl. untracked, not ignored); None without git."""
    out = _git("status", "--porcelain", "--untracked-files=all", "--", *WATCHED, root=root)
    if out is None:
        return None
    return sorted(line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if len(line) > 3)


def config_hash(cfg: dict | None) -> str | None:
    if cfg is None:
        return None
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def benchmark_version():
    """The procedural benchmark generator's version (None before it declared one)."""
    from ..data import synthetic
    return getattr(synthetic, "BENCHMARK_VERSION", None)


def device_label() -> str:
    import torch
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def cpu_label() -> str:
    """``<model name> (<best vector ISA>)`` from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    model, flags = platform.processor() or platform.machine(), numerics.cpu_flags()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                model = val.strip()
                break
    except OSError:
        pass
    isa = next((f for f in ("avx512f", "avx2", "avx", "sve", "asimd", "neon") if f in flags), None)
    return f"{model} ({isa.replace('avx512f', 'avx512')})" if isa else model


_CODE_CACHE: dict = {}


def current_code(cfg: dict) -> dict:
    """Today's :func:`~dgsslib.results.codeid.dependencies` of a config (cached per method/head/recipe)."""
    key = tuple(cfg.get(k) for k in codeid.CATALOGS)
    if key not in _CODE_CACHE:
        _CODE_CACHE[key] = codeid.dependencies(cfg)
    return _CODE_CACHE[key]


def provenance(cfg: dict | None = None) -> dict:
    """The provenance entry of a record (see the module docstring for what each key means)."""
    import timm
    import torch
    paths = dirty_paths()
    return {"commit": git_commit(), "dirty": None if paths is None else bool(paths),
            "dirty_paths": (paths or [])[:20], "code": codeid.dependencies(cfg) if cfg else None,
            "config_hash": config_hash(cfg), "benchmark_version": benchmark_version(),
            "torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version(),
            "device": device_label(), "cpu": cpu_label(), "numerics": numerics.describe(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def code_digest(code: dict) -> str:
    """sha256 of a code identity as canonical JSON (what an attestation stores)."""
    return "sha256:" + hashlib.sha256(json.dumps(code, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def code_status(run: dict) -> tuple[bool, str | None]:
    """(current?, the attesting commit when an attestation is what makes it current)."""
    prov, cfg = run.get("provenance") or {}, run.get("config")
    if not isinstance(prov.get("code"), dict) or not isinstance(cfg, dict):
        return False, None
    now = current_code(cfg)
    if prov["code"] == now:
        return True, None
    now_digest = code_digest(now)
    for att in reversed(prov.get("attestations") or []):
        if att.get("code_digest") == now_digest:
            return True, att.get("commit")
    return False, None


def _older(recorded, current) -> bool:
    if recorded is None:
        return current is not None
    try:
        return recorded < current
    except TypeError:
        return recorded != current


def provenance_flags(run: dict, current: dict | None = None) -> list[str]:
    """Why a run's numbers may not come from the current library ([] = clean and current).

    ``current``: ``{"benchmark_version": ...}`` of this checkout (computed when omitted)."""
    current = current or {"benchmark_version": benchmark_version()}
    prov = run.get("provenance")
    if not isinstance(prov, dict):
        return ["no provenance"]
    flags = []
    if prov.get("dirty") is not False:
        flags.append("dirty tree" if prov.get("dirty") else "tree state unknown")
    if not isinstance(prov.get("code"), dict):
        flags.append("no code identity (python -m dgsslib.results --restamp)")
    elif not code_status(run)[0]:
        flags.append("other code")
    bv, cur_bv = prov.get("benchmark_version"), current.get("benchmark_version")
    if bv != cur_bv:
        flags.append("older benchmark" if _older(bv, cur_bv) else "other benchmark")
    num = prov.get("numerics")
    if isinstance(num, dict) and num.get("mode") == "portable" and num.get("env") != numerics.PINS:
        flags.append("other pinned CPU kernels")  # dgsslib.numerics.PINS changed since: its bits would differ
    return flags


def is_current(run: dict) -> bool:
    """The one notion of "same code" (the README table's rule minus the dirty flag): the run's code identity
    is today's (or attested by trace) and its benchmark version is today's. Notebooks reuse a finished
    run by it -- also one made on an uncommitted tree, whose code identity was read from that tree."""
    prov = run.get("provenance")
    return isinstance(prov, dict) and code_status(run)[0] and prov.get("benchmark_version") == benchmark_version()


def state_note(runs: list[dict]) -> str:
    """``ok (fa8b733)`` or ``ok (fa8b733 ≡ 1a2b3c4)`` for current runs (commit ≡ attesting commit)."""
    marks = set()
    for r in runs:
        orig = ((r.get("provenance") or {}).get("commit") or r.get("commit") or "?")[:7]
        att = code_status(r)[1]
        marks.add(f"{orig} ≡ {att[:7]}" if att else orig)
    return f"ok ({', '.join(sorted(marks))})"


__all__ = ["WATCHED", "benchmark_version", "code_digest", "code_status", "config_hash", "cpu_label", "current_code",
           "device_label", "dirty_paths", "git_commit", "is_current", "provenance", "provenance_flags", "state_note"]
