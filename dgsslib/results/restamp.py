"""``python -m dgsslib.results --restamp [NOTEBOOK]``: cheap, honest re-attestation of committed runs.

For every run of ``results/<NOTEBOOK>/*.json`` (all notebooks when none is named):

1. a record without ``code`` (made before code identities) gets it, computed at its own commit with
   :class:`~dgsslib.results.codeid.GitReader` (the record's tree was clean, so the commit *is* its code);
2. a record without a ``trace`` gets one, computed in a temporary ``git worktree`` of its own commit
   (:mod:`dgsslib.results.trace` runs standalone there) -- the reference digest of that run's code;
3. a run whose code differs from today's (and no attestation covers today's) is traced at HEAD; a
   bit-equal digest appends ``{"commit": HEAD, "by": "trace", "code_digest": sha256 of today's code}`` to its
   ``attestations`` and the table shows ``ok (<orig> ≡ <HEAD>)``; a different digest leaves it
   flagged, with the first losses of both traces, until ``--reproduce`` or a rerun.

Each trace runs under the CPU numerics its record was made with (:mod:`dgsslib.numerics`: ``native`` for
records older than that module, whose reference traces were native too), so a change of the pinned kernels is
never attested by a native trace. HEAD must be committed and clean (an attestation names a commit). The trace covers what the tiny
backbone exercises; ``--reproduce`` (the full retraining) stays the strong check.
"""
from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import numerics
from . import codeid
from .provenance import ROOT, code_digest, code_status, cpu_label, dirty_paths, git_commit
from .reproduce import init_run

TRACE_SCRIPT = Path(__file__).with_name("trace.py")


class RestampError(RuntimeError):
    pass


def _traces(jobs: list[dict], tree: Path) -> dict:
    """Run the trace harness over ``jobs`` against the checkout at ``tree``: one subprocess per CPU numerics mode,
    each job traced under the numerics its record was made with (:mod:`dgsslib.numerics`; an old tree, which has
    no such module, gets the portable kernel variables from the environment)."""
    out = {}
    for mode in sorted({job.get("numerics", "native") for job in jobs}):
        env = numerics.native_env() if mode == "native" else numerics.portable_env()
        part = _traces_in(env, [j for j in jobs if j.get("numerics", "native") == mode], tree)
        out.update({k: dict(v, numerics=mode) for k, v in part.items()})
    return out


def _traces_in(env: dict, jobs: list[dict], tree: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="dgss-restamp-") as tmp:
        script = Path(tmp) / "dgss_trace.py"  # a copy, so an old tree imports only its own dgsslib
        script.write_text(TRACE_SCRIPT.read_text())
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        proc = subprocess.run([sys.executable, str(script), "--root", str(tree), "--jobs", str(Path(tmp) / "jobs.json"),
                               "--out", str(Path(tmp) / "out.json")], cwd=tmp, stderr=subprocess.PIPE, text=True,
                              env=env)
        for line in proc.stderr.splitlines():
            if line.startswith("trace "):
                print("   " + line, flush=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
            raise RestampError(f"the trace harness failed in {tree}:\n{tail}")
        out = json.loads((Path(tmp) / "out.json").read_text())
        return {k: dict(v, cpu=cpu_label()) for k, v in out.items()}  # the harness ran on this machine


def _at_commit(commit: str, jobs: list[dict]) -> dict:
    with tempfile.TemporaryDirectory(prefix="dgss-worktree-") as tmp:
        wt = Path(tmp) / "tree"
        out = subprocess.run(["git", "worktree", "add", "--detach", str(wt), commit], cwd=ROOT, capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RestampError(f"cannot check out commit {commit[:7]} ({out.stderr.strip().splitlines()[-1:]}); "
                               "a shallow clone needs: git fetch --unshallow")
        try:
            return _traces(jobs, wt)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)


def _job(key: str, run: dict, record: dict) -> dict:
    dep = init_run(run, record)
    return {"key": key, "config": run["config"], "init": dep["config"] if dep else None,
            "numerics": numerics.recorded_mode(run.get("provenance"))}


def restamp(notebook: str | None = None, root: Path | None = None) -> tuple[int, int]:
    """Backfill code identities and reference traces, attest what traces equal at HEAD. (attested, still flagged)."""
    root = Path(root or ROOT / "results")
    paths = sorted(root.glob(f"{notebook}/*.json" if notebook else "*/*.json"))
    if not paths:
        raise RestampError(f"no results records under {root}/{notebook or '*'}/")
    if dirty_paths():
        raise RestampError("the tree has uncommitted changes under dgsslib/, configs/ or notebooks/src/: "
                           "commit them first (an attestation names a commit)")
    head = git_commit()
    records = {p: json.loads(p.read_text()) for p in paths}
    runs = {f"{p.parent.name}/{p.stem}:{i}": (p, r) for p, rec in records.items()
            for i, r in enumerate(rec.get("runs", [rec]))}
    by_commit: dict[str, list] = {}
    for key, (p, run) in runs.items():
        prov = run.get("provenance") or {}
        if prov.get("dirty") is not False or not isinstance(run.get("config"), dict) or not prov.get("commit"):
            print(f"  {key} ({run.get('tag')}): made from a dirty or unknown tree: only a rerun can vouch for it")
            continue
        if not isinstance(prov.get("code"), dict):
            prov["code"] = codeid.dependencies(run["config"], codeid.GitReader(prov["commit"]))
        if not isinstance(prov.get("trace"), dict):
            by_commit.setdefault(prov["commit"], []).append(_job(key, run, records[p]))
    for commit, jobs in by_commit.items():
        print(f"reference traces at {commit[:7]} ({len(jobs)} run(s), a temporary worktree)", flush=True)
        for key, tr in _at_commit(commit, jobs).items():
            runs[key][1]["provenance"]["trace"] = dict(tr, commit=commit)
    todo = [(k, p, r) for k, (p, r) in runs.items() if isinstance((r.get("provenance") or {}).get("trace"), dict)
            and not code_status(r)[0]]
    attested = flagged = 0
    if todo:
        print(f"traces at HEAD {head[:7]} ({len(todo)} run(s) whose code changed)", flush=True)
        now = _at_commit(head, [_job(k, r, records[p]) for k, p, r in todo])  # HEAD as committed
        head_reader = codeid.GitReader(head)  # the attested code is HEAD's, whatever the tree holds meanwhile
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for key, p, run in todo:
            ref, got = run["provenance"]["trace"], now[key]
            tag = run.get("tag", run.get("method"))
            if got["digest"] == ref["digest"]:
                run["provenance"].setdefault("attestations", []).append(
                    {"commit": head, "by": "trace", "digest": got["digest"], "code_digest": code_digest(codeid.dependencies(run["config"], head_reader)),
                     "cpu": got["cpu"], "date": date})
                attested += 1
                print(f"  {key} {tag}: trace {ref['commit'][:7]} ≡ {head[:7]} -> attested")
            else:
                flagged += 1
                why = "" if got["cpu"] == ref.get("cpu") else f" (reference traced on another CPU: {ref.get('cpu')})"
                why += "" if got.get("numerics") == ref.get("numerics", "native") else \
                    f" (reference traced with {ref.get('numerics', 'native')} numerics)"
                print(f"  {key} {tag}: trace differs{why}: losses {ref['losses']} then, {got['losses']} now; "
                      f"stays flagged until --reproduce or a rerun")
    for p, rec in records.items():
        text = json.dumps(rec, indent=1, default=str)
        if text != p.read_text():
            p.write_text(text)
    return attested, flagged


def main_restamp(notebook: str | None, root: str | None) -> int:
    import fcntl
    lock_path = Path(root or ROOT / "results") / ".restamp.lock"
    try:
        lock = open(lock_path, "w")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the OS when this process ends
    except BlockingIOError:
        print(f"[dgsslib] error: another --restamp is running on {lock_path.parent} (two would race to write the "
              "records); wait for it", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"[dgsslib] error: cannot lock {lock_path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        attested, flagged = restamp(notebook, Path(root) if root else None)
    except (RestampError, LookupError, ValueError) as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    print(f"restamp: {attested} run(s) attested by trace, {flagged} still flagged")
    return 1 if flagged else 0


__all__ = ["RestampError", "main_restamp", "restamp"]
