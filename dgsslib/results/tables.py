"""Results tables: the README's table and the provenance report, built from ``results/<notebook>/<profile>.json``.

``results/<notebook>/<profile>.json`` (notebooks) and ``WORK_DIR/results.json`` (the CLI) share
one schema (:mod:`dgsslib.engine.records`): config, metrics per evaluation domain, the weight
source, trainable-parameter counts, runtime, device and a ``provenance`` entry
(:mod:`dgsslib.results.provenance`). A run is *flagged* (never averaged with clean runs) when it has
no provenance, was made from a dirty tree, by other code than today's (and no trace attests it), or
on an older benchmark. CLI: ``python -m dgsslib.results`` (:mod:`dgsslib.results.__main__`).
"""
from __future__ import annotations

import json
from pathlib import Path

from .provenance import ROOT, benchmark_version, provenance_flags, state_note


def load_results(root: Path | None = None) -> dict[str, dict]:
    """{"<notebook>/<profile>": record} for every results json under ``results/``."""
    root = Path(root or ROOT / "results")
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))}


def flag_note(flags: list[str]) -> str:
    """The short mark a table shows for a flagged run ("" when clean)."""
    return "" if not flags else "⚠ " + ", ".join(flags)


def readme_table(root: Path | None = None) -> str:
    """The README's results table: one row per (notebook, profile, method, provenance state), mean
    over seeds. Flagged runs get their own rows with the reason; they are never averaged with clean
    runs."""
    current = {"benchmark_version": benchmark_version()}
    rows = ["| notebook | profile | backbone (weights) | method | seeds | source mIoU | targets mIoU | adverse mIoU | provenance |",
            "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    mean = lambda xs: None if not xs else sum(xs) / len(xs)  # noqa: E731
    for key, rec in load_results(root).items():
        nb, profile = key.split("/")
        if profile == "smoke":  # plumbing checks, not measurements
            continue
        groups: dict[tuple, list] = {}
        for run in rec.get("runs", [rec]):
            flags = tuple(provenance_flags(run, current))
            label = run.get("method")
            if run.get("variant") and run["variant"] != label:  # e.g. fishertune [drfim_direct]
                label = f"{label} [{run['variant']}]"
            groups.setdefault((run.get("backbone"), run.get("weights"), label, flags), []).append(run)
        for (bb, w, method, flags), runs in groups.items():
            src = mean([r["metrics"]["source"]["miou"] for r in runs if "source" in r.get("metrics", {})])
            tgt = mean([r["summary"]["mean_targets"] for r in runs if "mean_targets" in r.get("summary", {})])
            adv = mean([r["summary"]["mean_adverse"] for r in runs if "mean_adverse" in r.get("summary", {})])
            state = flag_note(list(flags)) or state_note(runs)
            rows.append(f"| {nb} | {profile} | {bb} ({w}) | {method} | {len(runs)} | {fmt(src)} | {fmt(tgt)} | "
                        f"{fmt(adv)} | {state} |")
    return "\n".join(rows)


def provenance_report(root: Path | None = None) -> tuple[list[str], int]:
    """Lines naming every flagged run of ``results/`` and the number flagged (smoke records -- plumbing
    checks written by ``make test``, never committed -- are left out, as in the table)."""
    current = {"benchmark_version": benchmark_version()}
    lines, n = [], 0
    for key, rec in load_results(root).items():
        if key.endswith("/smoke"):
            continue
        for run in rec.get("runs", [rec]):
            flags = provenance_flags(run, current)
            if flags:
                n += 1
                prov = run.get("provenance") or {}
                lines.append(f"  {key} {run.get('tag', run.get('method'))}: {', '.join(flags)}"
                             f" (commit {prov.get('commit', run.get('commit', '?'))[:7]})")
    return lines, n
