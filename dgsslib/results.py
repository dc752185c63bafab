"""Results records: every run writes what it ran, on what, and what it measured.

``results/<notebook>/<profile>.json`` (notebooks) and ``WORK_DIR/results.json`` (the CLI) share
one schema: config, metrics (per evaluation domain: mIoU, per-class IoU, test scale), the
backbone's weight source, trainable-parameter count, runtime, device and git commit. The README
table is generated from ``results/`` by ``python -m dgsslib.results --readme``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def write_json(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_info() -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform(terse=True)}
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    else:
        info["cuda_device"] = None
    return info


def run_record(cfg: dict, model, metrics: dict, **extra) -> dict:
    from .profiles import SYNTH_ADVERSE, SYNTH_TARGETS
    from .data.sources import eval_name
    targets = [eval_name(s) for s in SYNTH_TARGETS]
    adverse = [eval_name(s) for s in SYNTH_ADVERSE]
    summary = {}
    for group, names in (("mean_targets", targets), ("mean_adverse", adverse)):
        vals = [metrics[n]["miou"] for n in names if n in metrics]
        if vals:
            summary[group] = sum(vals) / len(vals)
    return {
        "profile": cfg["profile"], "backbone": cfg["backbone"], "weights": model.vfm.weights_source,
        "method": cfg["method"], "method_options": cfg.get("method_options", {}), "head": cfg["head"],
        "trainable_backbone_params": model.method.num_trainable(),
        "trainable_head_params": sum(p.numel() for p in model.head.parameters() if p.requires_grad),
        "metrics": metrics, "summary": summary, "config": cfg, "device": device_info(),
        "commit": git_commit(), **extra,
    }


def load_results(root: Path | None = None) -> dict[str, dict]:
    """{"<notebook>/<profile>": record} for every results json under ``results/``."""
    root = Path(root or ROOT / "results")
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))}


def readme_table(root: Path | None = None) -> str:
    """The README's results table: one row per (notebook, profile, method), mean over seeds."""
    rows = ["| notebook | profile | backbone (weights) | method | seeds | source mIoU | targets mIoU | adverse mIoU |",
            "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    mean = lambda xs: None if not xs else sum(xs) / len(xs)  # noqa: E731
    for key, rec in load_results(root).items():
        nb, profile = key.split("/")
        if profile == "smoke":  # plumbing checks, not measurements
            continue
        groups: dict[tuple, list] = {}
        for run in rec.get("runs", [rec]):
            groups.setdefault((run.get("backbone"), run.get("weights"), run.get("method")), []).append(run)
        for (bb, w, method), runs in groups.items():
            src = mean([r["metrics"]["source"]["miou"] for r in runs if "source" in r.get("metrics", {})])
            tgt = mean([r["summary"]["mean_targets"] for r in runs if "mean_targets" in r.get("summary", {})])
            adv = mean([r["summary"]["mean_adverse"] for r in runs if "mean_adverse" in r.get("summary", {})])
            rows.append(f"| {nb} | {profile} | {bb} ({w}) | {method} | {len(runs)} | {fmt(src)} | {fmt(tgt)} | {fmt(adv)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dgsslib.results")
    p.add_argument("--readme", action="store_true", help="rewrite the results table in README.md")
    p.add_argument("--root", default=None)
    a = p.parse_args(argv)
    table = readme_table(a.root)
    if a.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start not in text or end not in text:
            print("README.md has no results markers", file=sys.stderr)
            return 1
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
