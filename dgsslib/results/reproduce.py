"""Reproducibility check: rerun one committed results record from its recorded config and compare.

    python -m dgsslib.results --reproduce results/10_rein_g/mini.json --run rein-s0 [--tolerance 0.05]
    make reproduce-check                  # the same for one committed mini record (RECORD=, RUN= to choose)

The run's ``config`` (stored in the record) is trained again with ``dgsslib.engine.train.fit`` into a
temporary work dir; every domain's mIoU and the target/adverse means are compared with the
committed values: PASS when each |committed − rerun| ≤ tolerance (0.05 mIoU by default). The
largest per-class IoU difference is printed too (information: single classes are noisier). A
record whose provenance is dirty or names other library sources is rerun anyway, with a warning
that a mismatch is then expected.

The rerun uses the CPU numerics the record was made with (:mod:`dgsslib.numerics`: ``portable`` pins the AVX2
kernels, removing the AVX2 / AVX-512 split -- equal bits on another kind of CPU are not proven; a record without the
field was made ``native``): a process in the other mode reruns itself in a child process in the recorded one, and
what still differs (kernel variables, one thread vs several, the ISA of a native record) is printed as a note.

Runs that start from another run (Rein-A's ``recipe_options.init``, a source-only run of the same
record) are reproduced in order: the run it names is retrained first and the rerun starts from it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import numerics
from ..engine.workdir import WorkDirError
from .provenance import provenance_flags


def init_run(run: dict, record: dict) -> dict | None:
    """The run of ``record`` that ``run`` starts from (``recipe_options.init`` names its work dir), or None."""
    init = ((run.get("config") or {}).get("recipe_options") or {}).get("init")
    if not init:
        return None
    tag = Path(str(init).rstrip("/")).name
    if tag == "final.safetensors":
        tag = Path(str(init)).parent.name
    for r in record.get("runs", [record]):
        if r.get("tag") == tag and r is not run:
            return r
    raise ValueError(f"run {run.get('tag')!r} starts from {init!r}, but this record holds no run tagged {tag!r}")


def find_run(record: dict, tag: str | None) -> dict:
    runs = record.get("runs", [record]) if isinstance(record, dict) else None
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise ValueError("this file is not a results record (a mapping with a non-empty list of runs)")
    if tag is None:
        return runs[0]
    for r in runs:
        if tag in (r.get("tag"), f"{r.get('method')}-s{r.get('seed', r.get('config', {}).get('seed'))}"):
            return r
    tags = ", ".join(str(r.get("tag", r.get("method"))) for r in runs)
    raise ValueError(f"no run tagged {tag!r} in this record; choose --run from: {tags}")


def compare(committed: dict, rerun: dict, tolerance: float = 0.05) -> tuple[list[dict], bool]:
    """One row per domain (and per summary mean): committed, rerun, |Δ|, max per-class |Δ|, ok."""
    rows = []
    cm, rm = committed.get("metrics", {}), rerun.get("metrics", {})
    for dom in cm:
        if not isinstance(cm[dom], dict) or "miou" not in cm[dom]:
            continue
        a, b = cm[dom]["miou"], rm.get(dom, {}).get("miou")
        pc_a, pc_b = cm[dom].get("per_class", {}), rm.get(dom, {}).get("per_class", {})
        pcd = [abs(pc_a[c] - pc_b[c]) for c in pc_a if pc_a.get(c) is not None and pc_b.get(c) is not None]
        diff = None if b is None else abs(a - b)
        rows.append({"metric": f"{dom} mIoU", "committed": a, "rerun": b, "diff": diff,
                     "max_class_diff": max(pcd) if pcd else None, "ok": diff is not None and diff <= tolerance})
    for key in ("mean_targets", "mean_adverse"):
        a, b = committed.get("summary", {}).get(key), rerun.get("summary", {}).get(key)
        if a is not None:
            diff = None if b is None else abs(a - b)
            rows.append({"metric": key.replace("mean_", "mean ") + " mIoU", "committed": a, "rerun": b, "diff": diff,
                         "max_class_diff": None, "ok": diff is not None and diff <= tolerance})
    return rows, bool(rows) and all(r["ok"] for r in rows)


def num(v, places: int = 2) -> str:
    """A table cell: ``-`` for a missing value, else fixed-point."""
    return "-" if v is None else f"{v:.{places}f}"


def format_table(rows: list[dict], tolerance: float) -> str:
    f = num
    out = [f"| metric | committed | rerun | abs diff | max per-class diff | within {tolerance:g} |",
           "|---|---|---|---|---|---|"]
    out += [f"| {r['metric']} | {f(r['committed'])} | {f(r['rerun'])} | {f(r['diff'], 3)} | "
            f"{f(r['max_class_diff'])} | {'PASS' if r['ok'] else 'FAIL'} |" for r in rows]
    return "\n".join(out)


def reproduce(record_path: str | Path, tag: str | None = None, tolerance: float = 0.05,
              work_dir: str | Path | None = None, progress: bool = True) -> tuple[list[dict], bool, dict]:
    """Rerun ``tag`` of ``record_path`` from its config; (rows, passed, rerun record)."""
    record = json.loads(Path(record_path).read_text())
    run = find_run(record, tag)
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="dgss-reproduce-") as tmp:
            rerun = _rerun(run, record, Path(tmp) / "run", progress)
    else:
        rerun = _rerun(run, record, Path(work_dir), progress)
    rows, ok = compare(run, rerun, tolerance)
    return rows, ok, rerun


def record_config(run: dict) -> dict:
    """A run's stored config, checked exactly as the CLI checks one: every key known (an unknown key such as
    ``train.lrr`` is refused, not ignored), none missing, types and ranges valid."""
    from ..engine.validation import validate
    from ..engine.workdir import flatten
    from ..profiles import ConfigError, merge, resolve
    cfg = run.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"run {run.get('tag')!r} stores no config, so it cannot be rerun")
    full = resolve(cfg.get("profile", "smoke") if isinstance(cfg.get("profile"), str) else "smoke")
    merged = merge(full, cfg)  # unknown keys raise ConfigError, naming the key
    missing = sorted(set(flatten(full)) - set(flatten(cfg)))
    if missing:
        raise ConfigError(f"the record's config lacks {', '.join(missing[:6])}: it cannot be rerun as recorded")
    return validate(merged)


def _rerun(run: dict, record: dict, work: Path, progress: bool) -> dict:
    """Retrain ``run`` into ``work``; a run it starts from is retrained first, into ``work/../<its tag>``."""
    import copy

    from ..engine.train import fit
    cfg = record_config(run)
    dep = init_run(run, record)
    if dep is not None:
        dep_work = work.parent / f"{work.name}-{dep.get('tag')}"
        print(f"[dgsslib] reproduce: {run.get('tag')} starts from {dep.get('tag')}: retraining that first", flush=True)
        _rerun(dep, record, dep_work, progress)
        cfg = copy.deepcopy(cfg)
        cfg["recipe_options"]["init"] = str(dep_work)
    return fit(cfg, work, resume=False, progress=progress)


_CHILD = "DGSS_REPRODUCE_CHILD"


def numerics_notes(prov: dict) -> list[str]:
    """What differs between the record's CPU numerics and this process's, when a bit-equal rerun is not expected."""
    have, notes = numerics.describe(), []
    num = prov.get("numerics") if isinstance(prov.get("numerics"), dict) else {}
    if num.get("mode") == "portable" and have["mode"] != "portable":
        notes.append(f"the record ran portable kernels; this machine cannot pin them ({have['cpu_capability']})")
    if num and num.get("env", {}) != have["env"]:
        notes.append(f"the record's kernel variables {num.get('env')} differ from this process's {have['env']}")
    if num.get("threads") is not None and (num["threads"] == 1) != (have["threads"] == 1):
        notes.append(f"the record ran {num['threads']} intra-op thread(s), this process {have['threads']}: one thread "
                     "takes another code path")
    if not num and numerics.isa(prov.get("cpu")) != numerics.isa(_here_cpu()):
        notes.append(f"the record ran native kernels on {prov.get('cpu')}, this machine is {_here_cpu()}: "
                     "the vector ISA differs, so the float paths do")
    return notes


def _here_cpu() -> str:
    from .provenance import cpu_label
    return cpu_label()


def main_reproduce(record_path: str, tag: str | None, tolerance: float, work_dir: str | None) -> int:
    """CLI body of ``python -m dgsslib.results --reproduce``: exit 0 on PASS, 1 on FAIL, 2 on bad input."""
    if not tolerance >= 0:
        print(f"[dgsslib] error: reproduce: --tolerance must be >= 0 mIoU, got {tolerance}")
        return 2
    try:
        record = json.loads(Path(record_path).read_text())
        run = find_run(record, tag)
        record_config(run)
        init_run(run, record)  # a run it starts from must be in the record
    except (OSError, ValueError) as exc:
        print(f"[dgsslib] error: reproduce: {record_path}: {str(exc).splitlines()[0]}")
        return 2
    prov = run.get("provenance") or {}
    label = run.get("tag", run.get("method"))
    try:
        wanted = numerics.recorded_mode(prov)
    except ValueError as exc:
        print(f"[dgsslib] error: reproduce: {record_path}: {exc}")
        return 2
    if wanted != numerics.mode():  # the kernels are fixed once torch has run: rerun in a child that starts right
        if os.environ.get(_CHILD):
            print(f"[dgsslib] error: reproduce: a rerun process asked for {wanted} numerics still runs "
                  f"{numerics.mode()} (is {numerics.ENV} set elsewhere?)")
            return 2
        print(f"[dgsslib] reproduce: the record was made with {wanted} CPU numerics (dgsslib.numerics), this process "
              f"runs {numerics.mode()}: rerunning in a {wanted} process", flush=True)
        env = numerics.native_env() if wanted == "native" else numerics.portable_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
        env[_CHILD] = "1"
        args = [sys.executable, "-m", "dgsslib.results", "--reproduce", str(record_path), "--tolerance", str(tolerance)]
        args += (["--run", tag] if tag else []) + (["--work-dir", str(work_dir)] if work_dir else [])
        code = subprocess.run(args, env=env).returncode
        return code if code >= 0 else 128 - code  # killed by a signal: the shell's 128 + N
    for note in numerics_notes(prov):
        print(f"[dgsslib] note: {note}")
    print(f"[dgsslib] reproduce {record_path} run {label}: {run.get('config', {}).get('profile')} profile, "
          f"{run.get('config', {}).get('train', {}).get('max_steps')} steps, recorded at commit "
          f"{prov.get('commit', run.get('commit', '?'))[:7]}")
    flags = provenance_flags(run)
    if flags:
        print(f"[dgsslib] warning: this record is flagged ({', '.join(flags)}): a mismatch is then expected")
    t0 = time.time()
    try:
        rows, ok, _ = reproduce(record_path, tag, tolerance, work_dir)
    except (ValueError, OSError, WorkDirError) as exc:  # a missing input is a user error, never a traceback
        msg = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"[dgsslib] error: reproduce: {msg}")
        return 2
    print(format_table(rows, tolerance))
    print(f"{'PASS' if ok else 'FAIL'}: {sum(r['ok'] for r in rows)}/{len(rows)} metrics within {tolerance:g} mIoU "
          f"(rerun took {(time.time() - t0) / 60:.1f} min)")
    return 0 if ok else 1


__all__ = ["compare", "find_run", "format_table", "init_run", "main_reproduce", "record_config", "reproduce"]
