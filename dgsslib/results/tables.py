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


class ResultsError(ValueError):
    """The results folder is missing or empty."""


#: files under the results folder that could not be read, with why (filled by :func:`load_results`)
UNREADABLE: dict[str, str] = {}


def load_results(root: Path | None = None) -> dict[str, dict]:
    """{"<notebook>/<profile>": record} for every results json under ``results/``. A file that is not a
    JSON record (corrupt, a list, ``runs`` not a list of runs) is left out and named in :data:`UNREADABLE`."""
    root = Path(root or ROOT / "results")
    out = {}
    for p in sorted(root.glob("*/*.json")):
        key = f"{p.parent.name}/{p.stem}"
        try:
            rec = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            UNREADABLE[str(p)] = f"not readable JSON ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
            continue
        runs = rec.get("runs", [rec]) if isinstance(rec, dict) else None
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
            UNREADABLE[str(p)] = "not a results record (a mapping with a list of runs)"
            continue
        out[key] = rec
    return out


def check_root(root: Path | None = None) -> Path:
    """The results folder, refused when it is missing or holds no record (``--strict`` must not pass on nothing)."""
    path = Path(root or ROOT / "results")
    if not path.is_dir():
        raise ResultsError(f"results folder {path} does not exist (--root names the folder holding <notebook>/<profile>.json)")
    if not any(path.glob("*/*.json")):
        raise ResultsError(f"results folder {path} holds no <notebook>/<profile>.json record")
    return path


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


LEADERBOARD = ("90_leaderboard", "mini")


def _between(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ResultsError(f"README.md has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    return head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1]


def write_readme(table: str, root: Path | None = None) -> None:
    """Rewrite README.md's generated blocks: the leaderboard (notebook 90's mini record read against
    ``configs/leaderboard/mini.yaml``, its figure saved beside the record) and the results table."""
    import matplotlib.pyplot as plt

    from ..leaderboard import load_protocol, readme_section
    from ..profiles import ConfigError
    readme = ROOT / "README.md"
    text = _between(readme.read_text(), "results", table)
    nb, profile = LEADERBOARD
    record = Path(root or ROOT / "results") / nb / f"{profile}.json"
    if record.exists():
        try:
            body, fig = readme_section(json.loads(record.read_text()),
                                       load_protocol(ROOT / "configs" / "leaderboard" / f"{profile}.yaml"))
        except (ConfigError, ValueError, KeyError) as exc:
            raise ResultsError(f"{record}: {exc}") from None
        image = record.with_suffix(".png")
        fig.savefig(image, dpi=80, bbox_inches="tight")
        plt.close(fig)
        try:
            shown = image.relative_to(ROOT)
        except ValueError:
            shown = image
        body += f"\n\n![unseen-domain mIoU vs trainable parameters, and per domain]({shown.as_posix()})"
    else:
        body = f"(no leaderboard record yet: make leaderboard writes {nb}/{profile}.json)"
    readme.write_text(_between(text, "leaderboard", body))
