"""Small helpers that keep the notebooks short: strict parameters, an honest environment report,
train-and-record, and the ours-vs-paper table.

A notebook's parameters cell sets ``PROFILE``, ``SEED`` and ``OVERRIDES``; the next cell calls
:func:`setup`, which validates them strictly (unknown profile or key fails with the allowed
values), prints what will run (backbone, weight source, data, device) and returns the config.
"""
from __future__ import annotations

import copy
import os
import platform
import time
from pathlib import Path

import torch

from .profiles import check_notebook_params
from .results import ROOT, device_info, git_commit, write_json

RESULTS = ROOT / "results"


def setup(profile: str, seed: int, overrides: dict, notebook: str) -> dict:
    """Validate the parameters cell and print what this notebook will run."""
    cfg = check_notebook_params(profile, seed, overrides)
    cfg["seed"] = seed
    torch.manual_seed(seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"notebook   : {notebook}")
    print(f"profile    : {profile}  (seed {seed})")
    print(f"backbone   : {cfg['backbone']}  weights={cfg['weights']}")
    print(f"data       : train {cfg['data']['train']}  ->  eval {', '.join(cfg['data']['eval'])}")
    print(f"device     : {dev}  torch {torch.__version__}  threads {torch.get_num_threads()}  "
          f"python {platform.python_version()}")
    if profile == "paper" and dev == "cpu":
        print("WARNING: the paper profile is meant for a GPU; on CPU it will take days.")
    return cfg


def variant(cfg: dict, **changes) -> dict:
    """A copy of ``cfg`` with top-level or dotted keys changed (``**{"train.lr": 1e-4}``)."""
    from .profiles import dotted_to_nested, merge
    return merge(copy.deepcopy(cfg), dotted_to_nested(changes))


def train_and_eval(cfg: dict, work_root: str | Path, tag: str, progress: bool = True, reuse: bool = True) -> dict:
    """Train one configuration (``dgsslib.train.fit``) and return its results record.

    With ``reuse=True`` a finished run in ``work_root/tag`` whose config equals ``cfg`` is not
    trained again (re-running a notebook, or adding a seed, costs only the new runs); an
    interrupted run resumes from its last checkpoint.
    """
    import json

    from .train import fit
    work = Path(work_root) / tag
    done = work / "results.json"
    if reuse and done.exists():
        rec = json.loads(done.read_text())
        if json.loads(json.dumps(rec.get("config"), default=str)) == json.loads(json.dumps(cfg, default=str)):
            print(f"[dgsslib] {tag}: reusing the finished run in {work} (delete it to retrain)")
            rec.setdefault("tag", tag)
            return rec
    same = (work / "config.json").exists() and json.loads((work / "config.json").read_text()) == \
        json.loads(json.dumps(cfg, default=str))
    if reuse and (work / "ckpt").exists() and not same:
        print(f"[dgsslib] {tag}: the config changed since the checkpoints in {work} were written; training from scratch")
    t0 = time.time()
    rec = fit(cfg, work, resume=reuse and same, progress=progress)
    rec["tag"], rec["wall_seconds"] = tag, round(time.time() - t0, 1)
    return rec


def save_results(notebook: str, profile: str, runs: list[dict], extra: dict | None = None) -> Path:
    """``results/<notebook>/<profile>.json`` with every run (the README table reads these)."""
    path = RESULTS / notebook / f"{profile}.json"
    slim = []
    for r in runs:
        r = dict(r)
        r.pop("history", None)
        slim.append(r)
    write_json(path, {"notebook": notebook, "profile": profile, "commit": git_commit(),
                      "device": device_info(), "runs": slim, **(extra or {})})
    return path


def load_results(notebook: str, profile: str) -> dict | None:
    import json
    path = RESULTS / notebook / f"{profile}.json"
    return json.loads(path.read_text()) if path.exists() else None


def runs_table(runs: list[dict], domains: list[str], label: str = "tag") -> str:
    """Markdown: one row per run, one column per domain, plus means over targets/adverse."""
    head = "| run | " + " | ".join(domains) + " | targets | adverse |"
    lines = [head, "|---" * (len(domains) + 3) + "|"]
    for r in runs:
        m, s = r["metrics"], r.get("summary", {})
        cells = [f"{m[d]['miou']:.1f}" if d in m else "-" for d in domains]
        lines.append(f"| {r.get(label, r['method'])} | " + " | ".join(cells) +
                     f" | {s.get('mean_targets', float('nan')):.1f} | {s.get('mean_adverse', float('nan')):.1f} |")
    return "\n".join(lines)


def environment_report() -> dict:
    info = device_info()
    info["commit"] = git_commit()
    info["DGSS_CACHE"] = os.environ.get("DGSS_CACHE", "~/.cache/dgsslib")
    info["DGSS_DATA"] = os.environ.get("DGSS_DATA", "./data")
    return info
