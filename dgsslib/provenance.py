"""Provenance: which exact code, config, data generator and machine produced a number.

Every results record carries ``provenance()`` (``dgsslib.results.run_record`` adds it to each run,
``dgsslib.notebook.save_results`` to each notebook record)::

    {"commit": "<full sha>", "dirty": false, "dirty_paths": [],
     "source_hash": "sha256:…", "config_hash": "sha256:…", "benchmark_version": 2,
     "torch": "2.14.1", "timm": "1.0.31", "python": "3.11.7", "device": "cpu (2 threads)",
     "date": "2025-12-02T08:15:00Z"}

What counts (decided here, checked by ``tests/test_provenance.py``):

* ``dirty`` is true when ``git status --porcelain`` lists any path under :data:`WATCHED`
  (``dgsslib/``, ``configs/``, ``notebooks/src/``): a modified, staged, deleted, renamed or
  *untracked, not ignored* file there (an untracked module can be imported). Anything outside
  those folders (scratch files, results, executed notebooks, README) never makes a run dirty.
  ``None`` when git or the repository is unavailable (an installed copy): unknown, not clean.
* ``source_hash`` is sha256 over the sorted relative paths and contents of every ``dgsslib/**/*.py``
  except :data:`PRESENTATION_ONLY` (modules that print, plot, count or file results, or hold the
  papers' published numbers, and cannot change a measured number), so a plotting tweak does not
  invalidate committed results but any change to models, data, training or evaluation does.
* ``source_modules`` lists the library files this process had imported when the record was made
  (presentation modules excluded) and ``modules_hash`` is the same sha256 over those files only.
  A run can only depend on code it imported, so :func:`provenance_flags` says "other code" only
  when one of *those* files changed: adding a paper's new modules does not make every earlier
  result stale. Records without ``source_modules`` (older ones) fall back to ``source_hash``.
* ``config_hash`` is sha256 of the config as canonical JSON (sorted keys).
* ``benchmark_version`` is ``dgsslib.data.synthetic.BENCHMARK_VERSION`` (the procedural
  generator's version; ``None`` while a generator predates it).

Taught in ``README.md`` (results section); enforced by ``python -m dgsslib.results``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
#: folders whose uncommitted changes make a run dirty
WATCHED = ("dgsslib", "configs", "notebooks/src")
#: dgsslib modules left out of ``source_hash``: they cannot change a measured number
PRESENTATION_ONLY = ("notebook.py", "paper_tables.py", "paper_tables_fishertune.py", "params.py", "progress.py", "provenance.py", "reproduce.py",
                     "results.py", "viz.py")


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
    paths = []
    for line in out.splitlines():
        if len(line) > 3:
            paths.append(line[3:].split(" -> ")[-1].strip('"'))
    return sorted(paths)


def source_hash(package: Path | None = None, modules: list[str] | None = None) -> str:
    """sha256 of the library sources that can change a number (sorted relative path + content).

    ``modules``: only these relative paths (a run's ``source_modules``); a missing file hashes as
    missing, so a deleted module changes the hash."""
    package = Path(package or PACKAGE)
    if modules is None:
        rels = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                      if "__pycache__" not in p.parts)
    else:
        rels = sorted(set(modules))
    h = hashlib.sha256()
    for rel in rels:
        if rel in PRESENTATION_ONLY:
            continue
        path = package / rel
        h.update(rel.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<missing>") + b"\0")
    return "sha256:" + h.hexdigest()


def loaded_modules(package: Path | None = None) -> list[str]:
    """Relative paths of the library files imported in this process (presentation modules excluded)."""
    package = Path(package or PACKAGE).resolve()
    out = set()
    for name, mod in list(sys.modules.items()):
        if name != package.name and not name.startswith(package.name + "."):
            continue
        f = getattr(mod, "__file__", None)
        if not f:
            continue
        try:
            rel = Path(f).resolve().relative_to(package).as_posix()
        except ValueError:  # another copy of the package
            continue
        if rel not in PRESENTATION_ONLY:
            out.add(rel)
    return sorted(out)


def config_hash(cfg: dict | None) -> str | None:
    if cfg is None:
        return None
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def benchmark_version():
    """The procedural benchmark generator's version (None before it declared one)."""
    from .data import synthetic
    return getattr(synthetic, "BENCHMARK_VERSION", None)


def device_label() -> str:
    import torch
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def provenance(cfg: dict | None = None) -> dict:
    """The provenance entry of a record (see the module docstring for what each key means)."""
    import timm
    import torch
    paths = dirty_paths()
    mods = loaded_modules()
    return {"commit": git_commit(), "dirty": None if paths is None else bool(paths),
            "dirty_paths": (paths or [])[:20], "source_hash": source_hash(),
            "source_modules": mods, "modules_hash": source_hash(modules=mods), "config_hash": config_hash(cfg),
            "benchmark_version": benchmark_version(), "torch": torch.__version__, "timm": timm.__version__,
            "python": platform.python_version(), "device": device_label(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _older(recorded, current) -> bool:
    if recorded is None:
        return current is not None
    try:
        return recorded < current
    except TypeError:
        return recorded != current


def provenance_flags(run: dict, current: dict | None = None) -> list[str]:
    """Why a run's numbers may not come from the current library ([] = clean and current).

    ``current``: ``{"source_hash": ..., "benchmark_version": ...}`` of this checkout (computed when
    omitted)."""
    current = current or {"source_hash": source_hash(), "benchmark_version": benchmark_version()}
    prov = run.get("provenance")
    if not isinstance(prov, dict):
        return ["no provenance"]
    flags = []
    if prov.get("dirty") is not False:
        flags.append("dirty tree" if prov.get("dirty") else "tree state unknown")
    if isinstance(prov.get("source_modules"), list) and prov.get("modules_hash"):
        if prov["modules_hash"] != source_hash(modules=prov["source_modules"]):  # a file it imported changed
            flags.append("other code")
    elif prov.get("source_hash") != current.get("source_hash"):
        flags.append("other code")
    bv, cur_bv = prov.get("benchmark_version"), current.get("benchmark_version")
    if bv != cur_bv:
        flags.append("older benchmark" if _older(bv, cur_bv) else "other benchmark")
    return flags


__all__ = ["PRESENTATION_ONLY", "WATCHED", "benchmark_version", "config_hash", "device_label", "dirty_paths",
           "git_commit", "loaded_modules", "provenance", "provenance_flags", "source_hash"]
