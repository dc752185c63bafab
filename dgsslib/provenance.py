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
* ``source_files`` maps every library file this process had imported when the record was made
  (presentation modules and :data:`CATALOGS` excluded) to the sha256 of its content; ``registry``
  records, for a run's config, the ``module:attr`` its method, head and recipe names resolved to.
  A run can only depend on code it imported, so :func:`provenance_flags` says "other code" only
  when one of *those* files changed or a name it used now resolves elsewhere: adding a paper's
  modules -- and its one line in a catalog -- does not make earlier results stale.
  (``source_modules`` + ``modules_hash``: records made before ``source_files`` existed; their files
  are read back from their commit with git (:func:`legacy_changed`) and compared the same way;
  records with neither fall back to ``source_hash``.)
* :data:`CATALOGS` are the registry files (name -> "module:attr" tables and one-line builders):
  they change whenever a paper adds a part, so they are compared through ``registry`` instead.
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
#: registry files: compared through the entries a run used (``registry``), not their whole content
CATALOGS = ("adapters/__init__.py", "heads/__init__.py", "recipes/__init__.py")
PRESENTATION_ONLY = ("notebook.py", "paper_tables.py", "paper_tables_fishertune.py", "paper_tables_rein_a.py", "paper_tables_vfmseg.py", "params.py", "progress.py", "provenance.py", "reproduce.py",
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
    return contents_hash({rel: (package / rel).read_bytes() if (package / rel).is_file() else b"<missing>"
                          for rel in rels})


def contents_hash(contents: dict[str, bytes]) -> str:
    """sha256 over sorted (relative path, content) pairs, presentation modules left out."""
    h = hashlib.sha256()
    for rel in sorted(contents):
        if rel not in PRESENTATION_ONLY:
            h.update(rel.encode() + b"\0" + contents[rel] + b"\0")
    return "sha256:" + h.hexdigest()


def file_hashes(modules: list[str], package: Path | None = None) -> dict[str, str]:
    """rel path -> sha256 of the file's content ("missing" when it is gone)."""
    package = Path(package or PACKAGE)
    out = {}
    for rel in sorted(set(modules)):
        path = package / rel
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return out


def registry_targets(cfg: dict | None) -> dict | None:
    """{kind: {name: "module:attr"}} for the method, head and recipe a config names."""
    if not cfg:
        return None
    from .adapters import METHODS
    from .heads import HEADS
    from .recipes import RECIPES
    out = {}
    for kind, reg in (("method", METHODS), ("head", HEADS), ("recipe", RECIPES)):
        name = cfg.get(kind)
        if isinstance(name, str):
            out[kind] = {name: reg[name] if name in reg else None}
    return out


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
    files = file_hashes([m for m in loaded_modules() if m not in CATALOGS])
    return {"commit": git_commit(), "dirty": None if paths is None else bool(paths),
            "dirty_paths": (paths or [])[:20], "source_hash": source_hash(),
            "source_files": files, "registry": registry_targets(cfg), "config_hash": config_hash(cfg),
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


def changed_files(prov: dict) -> list[str]:
    """The files a run imported whose content differs now (per-file hashes)."""
    files = prov.get("source_files") or {}
    now = file_hashes(list(files))
    return [f for f, h in files.items() if now[f] != h]


def changed_registry(prov: dict) -> list[str]:
    """Names the run used that now resolve to another ``module:attr`` (or to nothing)."""
    reg = prov.get("registry") or {}
    if not reg:
        return []
    from .adapters import METHODS
    from .heads import HEADS
    from .recipes import RECIPES
    regs = {"method": METHODS, "head": HEADS, "recipe": RECIPES}
    return [f"{kind}:{name}" for kind, used in reg.items() for name, target in used.items()
            if kind in regs and (regs[kind][name] if name in regs[kind] else None) != target]


def _git_file(commit: str, rel: str) -> bytes | None:
    try:
        out = subprocess.run(["git", "show", f"{commit}:dgsslib/{rel}"], cwd=ROOT, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def legacy_changed(prov: dict, cfg: dict) -> list[str] | None:
    """For records with ``source_modules`` + ``modules_hash`` (no per-file hashes): the files that
    changed since the record's commit, read back with git, with catalog files compared by the
    entries the run's config used (a catalog that only gained lines and still maps those names to
    the same target is unchanged for it). None when git cannot tell (then the run stays flagged)."""
    commit, mods = prov.get("commit"), prov["source_modules"]
    if not commit or commit == "unknown":
        return None
    old = {rel: _git_file(commit, rel) for rel in mods}
    if any(v is None for v in old.values()):
        return None
    if contents_hash(old) != prov["modules_hash"]:  # the record does not match its commit
        return None
    used = {cfg.get(k) for k in ("method", "head", "recipe")} - {None}
    changed = []
    for rel in mods:
        if rel in PRESENTATION_ONLY:
            continue
        path = PACKAGE / rel
        now = path.read_bytes() if path.is_file() else None
        if now == old[rel]:
            continue
        if rel in CATALOGS and now is not None:
            old_lines, new_lines = old[rel].decode().splitlines(), now.decode().splitlines()
            grown = all(line in new_lines for line in old_lines)
            same = all(_entry(old_lines, n) == _entry(new_lines, n) for n in used)
            if grown and same:
                continue
        changed.append(rel)
    return changed


def _entry(lines: list[str], name: str) -> list[str]:
    """The catalog lines that map ``name`` (``"name": "module:attr"``)."""
    key = f'"{name}":'
    return [ln.strip() for ln in lines if ln.strip().startswith(key)]


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
    if isinstance(prov.get("source_files"), dict):
        if changed_files(prov) or changed_registry(prov):
            flags.append("other code")
    elif isinstance(prov.get("source_modules"), list) and prov.get("modules_hash"):
        if prov["modules_hash"] != source_hash(modules=prov["source_modules"]) and \
                legacy_changed(prov, run.get("config") or {}) != []:  # a file it imported changed
            flags.append("other code")
    elif prov.get("source_hash") != current.get("source_hash"):
        flags.append("other code")
    bv, cur_bv = prov.get("benchmark_version"), current.get("benchmark_version")
    if bv != cur_bv:
        flags.append("older benchmark" if _older(bv, cur_bv) else "other benchmark")
    return flags


__all__ = ["CATALOGS", "PRESENTATION_ONLY", "WATCHED", "benchmark_version", "changed_files", "changed_registry",
           "config_hash", "device_label", "dirty_paths", "file_hashes", "git_commit", "loaded_modules", "provenance",
           "provenance_flags", "registry_targets", "source_hash"]
