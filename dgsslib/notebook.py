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
import sys
import time
from pathlib import Path

import torch

from .profiles import check_notebook_extras, check_notebook_params
from .engine.records import device_info, write_json
from .engine.workdir import holds_run
from .results.provenance import ROOT, benchmark_version, current_code, dirty_paths, git_commit, is_current, \
    provenance, provenance_flags

RESULTS = ROOT / "results"


def results_dir() -> Path:
    """Where notebooks write and read their records: ``results/``, or ``$DGSS_RESULTS`` (``make demo`` points it
    at ``build/demo/results`` so a quick plan never overwrites the committed records it is checked against)."""
    return Path(os.environ["DGSS_RESULTS"]) if os.environ.get("DGSS_RESULTS") else RESULTS


def setup(profile: str, seed: int, overrides: dict, notebook: str, params: dict | None = None) -> dict:
    """Validate the parameters cell and print what this notebook will run. ``params``: the notebook's other
    parameters (default: the calling notebook's namespace, where the parameters cell put them), checked by
    :func:`dgsslib.profiles.check_notebook_extras` -- so ``SEEDS="abc"`` or ``SEEDS=[]`` stops here, in every
    notebook alike, before anything runs."""
    cfg = check_notebook_params(profile, seed, overrides)
    check_notebook_extras(sys._getframe(1).f_globals if params is None else params)
    cfg["seed"] = seed
    torch.manual_seed(seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"notebook   : {notebook}")
    print(f"profile    : {profile}  (seed {seed})")
    print(f"backbone   : {cfg['backbone']}  weights={cfg['weights']}")
    print(f"data       : train {cfg['data']['train']}  ->  eval {', '.join(cfg['data']['eval'])}")
    print(f"device     : {dev}  torch {torch.__version__}  threads {torch.get_num_threads()}  "
          f"python {platform.python_version()}")
    print(code_line())
    if profile == "paper" and dev == "cpu":
        print("WARNING: the paper profile is meant for a GPU; on CPU it will take days.")
    return cfg


def code_line() -> str:
    """``code       : commit 821d531 (clean), run 2025-12-02 08:15 UTC`` (dirty trees say which files)."""
    paths = dirty_paths()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    state = ("clean" if not paths else f"UNCOMMITTED changes in {len(paths)} file(s), e.g. {paths[0]}: "
             "results will be marked dirty; commit first") if paths is not None else "not a git checkout"
    return f"code       : commit {git_commit(short=True)} ({state}), run {when}"


def _minutes(seconds) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def summary_line(rec: dict, tag: str, reused: bool = False) -> str:
    """``freeze-s0: 200 steps, 2.9 min, source 41.9 · targets 27.9 · adverse 18.8 mIoU``."""
    m, s = rec.get("metrics", {}), rec.get("summary", {})
    parts = [f"{name} {v:.1f}" for name, v in (("source", m.get("source", {}).get("miou")),
                                               ("targets", s.get("mean_targets")), ("adverse", s.get("mean_adverse")))
             if v is not None]
    steps = rec.get("config", {}).get("train", {}).get("max_steps")
    flags = provenance_flags(rec)
    return (f"{tag}: {steps} steps, {_minutes(rec.get('train_seconds'))}, {' · '.join(parts)} mIoU"
            + (" (finished run reused)" if reused else "") + (f"  ⚠ {', '.join(flags)}" if flags else ""))


def variant(cfg: dict, **changes) -> dict:
    """A copy of ``cfg`` with top-level or dotted keys changed (``**{"train.lr": 1e-4}``); dotted option
    keys add to the options, a whole ``*_options`` mapping replaces them; a method's own recipe applies
    as in the CLI (:func:`dgsslib.profiles.with_method_recipe`)."""
    from .profiles import dotted_to_nested, merge, with_method_recipe
    return with_method_recipe(merge(copy.deepcopy(cfg), dotted_to_nested(changes)), named="recipe" in changes)


def train_and_eval(cfg: dict, work_root: str | Path, tag: str, progress: bool = True, reuse: bool = True) -> dict:
    """Train one configuration (``dgsslib.engine.train.fit``), print its one-line summary, return its record.

    With ``reuse=True`` a finished run in ``work_root/tag`` is not trained again when its config is
    the same and it is current by the rule the README table uses
    (:func:`dgsslib.results.provenance.is_current`: today's code -- or attested by trace -- and today's
    benchmark), so re-running a notebook, or adding a seed, costs only the new runs; an
    interrupted run resumes from its last checkpoint when its config and code identity are unchanged;
    a run made with other settings or code is moved aside to ``<tag>.replaced-<time>/``, never deleted
    (``reuse=False`` asks for a fresh run and replaces it).
    Live progress is shown by ``dgsslib.progress``; what stays in the output is one line per run
    (:func:`summary_line`).
    """
    import json

    from .engine.train import fit
    work = Path(work_root) / tag
    done = work / "results.json"
    canon = json.loads(json.dumps(cfg, default=str))
    rec = _read_json(done, tag) if reuse and done.exists() else None
    if rec is not None:
        if json.loads(json.dumps(rec.get("config"), default=str)) == canon:
            if not is_current(rec) and _adopt_attestation(rec, done):
                print(f"[dgsslib] {tag}: made by earlier code that the committed record attests bit-equal "
                      "(python -m dgsslib.results --restamp): reused", flush=True)
            if is_current(rec):
                rec.setdefault("tag", tag)
                wall = _read_json(work / "wall.json", tag) if (work / "wall.json").exists() else None
                if isinstance(wall, dict) and isinstance(wall.get("wall_seconds"), (int, float)):
                    rec.setdefault("wall_seconds", wall["wall_seconds"])  # the run's own time, not this reuse's
                print(summary_line(rec, tag, reused=True), flush=True)
                return rec
            print(f"[dgsslib] {tag}: the finished run was made by other code or benchmark "
                  f"({', '.join(provenance_flags(rec))}); training again")
    here = {"code": current_code(canon), "benchmark_version": benchmark_version()}
    stamp = work / "provenance.json"  # which code the checkpoints in work/ come from
    same = (work / "config.json").exists() and _read_json(work / "config.json", tag) == canon and \
        stamp.exists() and _read_json(stamp, tag) == here
    if reuse and not same and holds_run(work):  # never delete a run the caller did not ask to replace
        aside = work.with_name(f"{tag}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        work.rename(aside)
        print(f"[dgsslib] {tag}: config or code changed since that run was made; it is kept in {aside.name}/ "
              "and this one trains from scratch", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    write_json(stamp, here)
    t0 = time.time()
    rec = fit(cfg, work, resume=reuse and same, overwrite=not (reuse and same), progress=progress)
    rec["tag"], rec["wall_seconds"] = tag, round(time.time() - t0, 1)
    write_json(work / "wall.json", {"wall_seconds": rec["wall_seconds"]})  # a later reuse reports it
    print(summary_line(rec, tag), flush=True)
    return rec


def _adopt_attestation(rec: dict, done: Path) -> bool:
    """``--restamp`` attests the runs of the committed records, not the run folders they came from: find a
    committed run with this run's config *and* code identity that is current by attestation, and copy its
    ``trace`` / ``attestations`` into this run (and its ``results.json``), so the notebook reuses it by the
    README table's rule. False when there is none."""
    import json

    from .results.tables import load_results as committed_records
    prov = rec.get("provenance") or {}
    canon = json.dumps(rec.get("config"), sort_keys=True, default=str)
    for record in committed_records(RESULTS).values():
        for twin in record.get("runs", []):
            tp = twin.get("provenance") or {}
            if tp.get("attestations") and tp.get("code") == prov.get("code") and is_current(twin) and \
                    json.dumps(twin.get("config"), sort_keys=True, default=str) == canon:
                prov.update({k: tp[k] for k in ("trace", "attestations") if k in tp})
                rec["provenance"] = prov
                write_json(done, rec)
                return True
    return False


def _read_json(path: Path, tag: str) -> dict | None:
    """A run file as a mapping, or None (said once, naming the file) when it is damaged: the run is then not
    reused as it stands -- kept aside and trained again, or resumed from its checkpoints by ``fit``."""
    import json
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"[dgsslib] {tag}: {path.name} in {path.parent.name}/ is damaged ({type(exc).__name__}); "
              "it is not reused as it stands", flush=True)
        return None
    if not isinstance(value, dict):
        print(f"[dgsslib] {tag}: {path.name} in {path.parent.name}/ is not a mapping; it is not reused as it stands",
              flush=True)
        return None
    return value


def save_results(notebook: str, profile: str, runs: list[dict], extra: dict | None = None) -> None:
    """Write ``results/<notebook>/<profile>.json`` with every run (the README table reads these) and
    print its path; ``extra`` adds top-level keys (e.g. ``comparisons`` from :mod:`dgsslib.stats`)."""
    path = results_dir() / notebook / f"{profile}.json"
    slim = []
    for r in runs:
        r = dict(r)
        r.pop("history", None)
        # per-image counts stay in each run's results.json; the record keeps the comparisons made from them
        r["metrics"] = {d: {k: v for k, v in m.items() if k != "per_image"} for d, m in r.get("metrics", {}).items()}
        slim.append(r)
    write_json(path, {"notebook": notebook, "profile": profile, "commit": git_commit(short=True),
                      "provenance": provenance(), "device": device_info(), "runs": slim, **(extra or {})})
    flagged = [r.get("tag", r.get("method")) for r in slim if provenance_flags(r)]
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name} ({len(slim)} runs"
          + (f"; flagged: {', '.join(map(str, flagged))}" if flagged else "") + ")")


def load_results(notebook: str, profile: str) -> dict | None:
    import json
    path = results_dir() / notebook / f"{profile}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        from .profiles import ConfigError
        raise ConfigError(f"{path} is not readable JSON ({exc}): restore it (git checkout -- {path.name}) or "
                          "rerun the notebook") from None


def runs_table(runs: list[dict], domains: list[str], label: str = "tag") -> str:
    """Markdown: one row per run, one column per domain, plus means over targets/adverse; a run
    whose provenance is flagged (dirty tree, other code, older benchmark) says so in its row."""
    head = "| run | " + " | ".join(domains) + " | targets | adverse |"
    lines = [head, "|---" * (len(domains) + 3) + "|"]
    for r in runs:
        m, s = r["metrics"], r.get("summary", {})
        cells = [f"{m[d]['miou']:.1f}" if d in m else "-" for d in domains]
        flags = provenance_flags(r)
        lines.append(f"| {r.get(label, r['method'])}{' ⚠ ' + ', '.join(flags) if flags else ''} | " + " | ".join(cells) +
                     f" | {s.get('mean_targets', float('nan')):.1f} | {s.get('mean_adverse', float('nan')):.1f} |")
    return "\n".join(lines)


def environment_report() -> dict:
    info = device_info()
    info["commit"] = git_commit(short=True)
    info["DGSS_CACHE"] = os.environ.get("DGSS_CACHE", "~/.cache/dgsslib")
    info["DGSS_DATA"] = os.environ.get("DGSS_DATA", "./data")
    return info


def load_trained(cfg: dict, run_dir: str | Path):
    """The model of a finished run: built from ``cfg`` and loaded strictly from ``run_dir/final.safetensors``
    (in eval mode). For pictures and extra evaluations after :func:`train_and_eval`."""
    from .checkpoint import load_tensors, load_trainable_state
    from .model import build_model
    path = Path(run_dir) / "final.safetensors"
    model = build_model(cfg, verbose=False)
    load_trainable_state(model, load_tensors(path)[0], path)
    return model.eval()
