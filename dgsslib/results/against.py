"""``python -m dgsslib.results --against DIR``: every run a notebook just made beside the committed run of the
same config and seed, PASS/FAIL at 0.05 mIoU -- what ``make demo`` prints at its end.

``make demo`` runs each notebook's quick plan with ``$DGSS_RESULTS=build/demo/results`` (so the committed
``results/`` stay as they are) and then calls this. For each run in ``DIR/<notebook>/<profile>.json``:

* the committed run is the one with the same tag in ``results/<notebook>/<profile>.json``;
* its config must equal the new run's, up to the keys that cannot change a number (logging, checkpoint and
  cache settings: :data:`dgsslib.engine.workdir.RUNTIME_KEYS`) -- otherwise the row says which keys differ and
  counts as not reproduced;
* PASS when every domain's mIoU and the target/adverse means are within the tolerance
  (:func:`dgsslib.results.reproduce.compare`, the rule of ``--reproduce``);
* a FAIL says when the two runs took different float paths by construction (:func:`numerics_note`: a record made
  with native kernels, or native kernels on two CPUs with different vector ISAs, :mod:`dgsslib.numerics`).

Exit 0 when every run passes, 1 otherwise (2 for a folder that holds no record).
"""
from __future__ import annotations

from pathlib import Path

from ..engine.workdir import RUNTIME_KEYS, flatten
from ..numerics import isa, recorded_mode
from .provenance import ROOT
from .reproduce import compare, num
from .tables import ResultsError, check_root, load_results


def config_diff(a: dict, b: dict) -> list[str]:
    """Config keys whose values differ between two runs (runtime-only keys ignored)."""
    fa, fb = flatten(a.get("config") or {}), flatten(b.get("config") or {})
    return sorted(k for k in set(fa) | set(fb) if k not in RUNTIME_KEYS and fa.get(k) != fb.get(k))


def numerics_note(ref: dict, run: dict) -> str:
    """Why two CPU runs of one config may round differently: '' when both used portable numerics with the same
    kernel variables (same bits expected) or when either ran on a GPU (CPU kernels do not decide its numbers)."""
    a, b = ref.get("provenance") or {}, run.get("provenance") or {}
    if any(str(p.get("device", "cpu")).startswith("cuda") for p in (a, b)):
        return ""
    try:
        ma, mb = recorded_mode(a), recorded_mode(b)
    except ValueError as exc:
        return str(exc)
    if ma != mb:
        return f"committed with {ma} CPU numerics ({a.get('cpu', '?')}), this run {mb}: different float paths"
    if ma == "native" and isa(a.get("cpu")) != isa(b.get("cpu")):
        return f"native CPU numerics on {a.get('cpu', '?')} vs {b.get('cpu', '?')}: different float paths"
    if ma == "portable" and (a["numerics"].get("env") != b["numerics"].get("env")):
        return f"portable numerics with other kernel variables ({a['numerics'].get('env')} vs {b['numerics'].get('env')})"
    return ""


def record_numerics(path: str | Path) -> str:
    """The CPU numerics every run of one committed record was made with (``portable`` or ``native``), so that
    ``make demo`` can rerun a notebook under the same kernels; ResultsError when the runs disagree or the file is
    missing (a record is one notebook's run, made under one setting)."""
    import json
    try:
        runs = json.loads(Path(path).read_text()).get("runs") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise ResultsError(f"{path}: {exc}") from None
    try:
        modes = {recorded_mode((r or {}).get("provenance")) for r in runs}
    except ValueError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    if len(modes) != 1:
        raise ResultsError(f"{path}: its runs were made under {sorted(modes) or 'no'} CPU numerics, not one")
    return modes.pop()


def check_against(new_root: str | Path, committed_root: str | Path | None = None,
                  tolerance: float = 0.05) -> tuple[list[dict], bool]:
    """One row per new run: notebook, tag, the committed and new source mIoU, the largest |Δ| over every
    domain and mean, and a result in {PASS, FAIL, NO RECORD, OTHER CONFIG}."""
    new = load_results(check_root(new_root))
    committed = load_results(Path(committed_root or ROOT / "results"))
    rows = []
    for key, rec in sorted(new.items()):
        ref_runs = {r.get("tag"): r for r in committed.get(key, {}).get("runs", [])}
        for run in rec.get("runs", [rec]):
            tag = run.get("tag", run.get("method"))
            row = {"record": key, "tag": tag, "committed": None, "new": run.get("metrics", {}).get("source", {}).get("miou"),
                   "max_diff": None, "result": "NO RECORD", "why": f"no committed run {tag!r} in results/{key}.json"}
            ref = ref_runs.get(tag)
            if ref is not None:
                row["committed"] = ref.get("metrics", {}).get("source", {}).get("miou")
                differ = config_diff(ref, run)
                if differ:
                    row.update(result="OTHER CONFIG", why="config differs in " + ", ".join(differ[:4])
                               + (" ..." if len(differ) > 4 else ""))
                else:
                    metrics, ok = compare(ref, run, tolerance)
                    diffs = [m["diff"] for m in metrics if m["diff"] is not None]
                    row.update(max_diff=max(diffs) if diffs else None, result="PASS" if ok else "FAIL",
                               why="" if ok else "; ".join(f"{m['metric']} {m['committed']:.2f} -> "
                                                           + ("missing" if m["rerun"] is None else f"{m['rerun']:.2f}")
                                                           for m in metrics if not m["ok"])[:160])
                    note = "" if ok else numerics_note(ref, run)
                    row["why"] += f" ({note})" if note else ""
            rows.append(row)
    return rows, bool(rows) and all(r["result"] == "PASS" for r in rows)


def format_rows(rows: list[dict], tolerance: float) -> str:
    f = num
    out = [f"| record | run | committed source mIoU | this run | max abs diff | within {tolerance:g} | note |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {r['record']} | {r['tag']} | {f(r['committed'])} | {f(r['new'])} | {f(r['max_diff'], 3)} | {r['result']} "
            f"| {r['why']} |" for r in rows]
    return "\n".join(out)


def main_against(new_root: str, committed_root: str | None, tolerance: float) -> int:
    import sys
    if not tolerance >= 0:
        print(f"[dgsslib] error: --tolerance must be >= 0, got {tolerance}", file=sys.stderr)
        return 2
    try:
        rows, ok = check_against(new_root, committed_root, tolerance)
    except ResultsError as exc:
        print(f"[dgsslib] error: --against {new_root}: {exc}", file=sys.stderr)
        return 2
    print(format_rows(rows, tolerance))
    n_pass = sum(r["result"] == "PASS" for r in rows)
    print(f"\n{n_pass}/{len(rows)} runs reproduce the committed records within {tolerance:g} mIoU"
          + ("" if ok else " -- the others are listed above with why"))
    return 0 if ok else 1
