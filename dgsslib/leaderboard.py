"""The leaderboard: every fine-tuning method of the kit under one protocol, with intervals.

Each paper reports under its own protocol (head, iterations, crop, test scale, seeds), so Rein++ Table III,
FisherTune Table 1, VFMSeg Table 1 and Causal-Tune Table 1 cannot be read side by side. A protocol file
(``configs/leaderboard/<profile>.yaml``) fixes everything but the method; each row names a method (or a
stack of methods, :mod:`dgsslib.adapters.stack`) and only what that method cannot run without::

    protocol: {head: linear, train: {batch_size: 8, max_steps: 120}, ...}   # on top of the profile
    seeds: [0, 1, 2]
    quick: {seeds: [0]}                                                      # PLAN="quick"
    baseline: Freeze
    rows:
      - {name: Rein-G, method: rein}
      - {name: Rein-G + FisherTune, method: stack, method_options: {parts: "rein,fishertune"},
         vs: [Rein-G, FisherTune (DR-FIM 5 %)]}

A row's score on the unseen domains U (targets and adverse styles) and its claim against the baseline B::

    u(row, s) = 1/|U| Σ_{d∈U} mIoU_d(row, s),    Δ = 1/n Σ_s [u(row, s) − u(B, s)],
    95 % interval: Δ ± t_{0.975, n−1} · sd_s / √n  (paired by seed; dgsslib.stats.compare)

Combination rows (``vs``) are also compared with each of their parts. Taught in
``notebooks/90_leaderboard.ipynb``.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .profiles import ConfigError, check_seed_list, load_config_file, merge, with_method_recipe

TOP_KEYS = ("protocol", "seeds", "quick", "baseline", "rows")
ROW_KEYS = ("name", "note", "vs", "method", "method_options", "head", "head_options", "recipe", "recipe_options",
            "train", "data", "eval")
CONFIG_ROW_KEYS = ROW_KEYS[3:]


@dataclass
class Row:
    name: str
    changes: dict
    note: str = ""
    vs: list = field(default_factory=list)

    @property
    def slug(self) -> str:
        """A folder-safe tag stem: ``Rein-G + FisherTune`` -> ``rein_g+fishertune``."""
        s = re.sub(r"\s*\+\s*", "+", self.name.lower())
        return re.sub(r"[^a-z0-9+]+", "_", s).strip("_")

    @property
    def combination(self) -> bool:
        return self.changes.get("method") == "stack"


def load_protocol(path: str | Path) -> dict:
    """The protocol file, checked strictly (unknown keys, duplicate names, a ``vs`` or baseline that names no
    row): ``{"protocol", "seeds", "quick_seeds", "baseline", "rows": [Row]}``."""
    path = Path(path)
    raw = load_config_file(path)
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; a protocol file holds {', '.join(TOP_KEYS)}")
    if not isinstance(raw.get("rows"), list) or not raw["rows"]:
        raise ConfigError(f"{path}: rows must be a non-empty list of {{name, method, ...}}")
    rows = []
    for i, r in enumerate(raw["rows"]):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or "method" not in r:
            raise ConfigError(f"{path}: row {i + 1} needs a name and a method, got {r!r}")
        bad = sorted(set(r) - set(ROW_KEYS))
        if bad:
            raise ConfigError(f"{path}: row {r['name']!r} has unknown key(s) {bad}; a row holds {', '.join(ROW_KEYS)}")
        vs = r.get("vs") or []
        if not isinstance(vs, list):
            raise ConfigError(f"{path}: row {r['name']!r}: vs must be a list of row names")
        rows.append(Row(r["name"], {k: r[k] for k in CONFIG_ROW_KEYS if k in r}, str(r.get("note") or ""), list(vs)))
    names = [r.name for r in rows]
    dup = sorted({n for n in names if names.count(n) > 1})
    slugs = [r.slug for r in rows]
    if dup or len(set(slugs)) != len(slugs):
        raise ConfigError(f"{path}: row names must be unique (and differ in letters and digits), got {dup or slugs}")
    baseline = raw.get("baseline", rows[0].name)
    for ref in [baseline] + [v for r in rows for v in r.vs]:
        if ref not in names:
            raise ConfigError(f"{path}: {ref!r} (baseline or vs) names no row; rows: {', '.join(names)}")
    if not isinstance(raw.get("protocol", {}), dict):
        raise ConfigError(f"{path}: protocol must be a mapping of config keys")
    seeds = check_seed_list(raw.get("seeds", [0]), f"{path.name}: seeds")
    quick = raw.get("quick") or {}
    quick_seeds = check_seed_list(quick.get("seeds", seeds[:1]), f"{path.name}: quick.seeds")
    return {"protocol": raw.get("protocol", {}), "seeds": seeds, "quick_seeds": quick_seeds, "baseline": baseline,
            "rows": rows, "path": str(path)}


def row_config(base: dict, protocol: dict, row: Row, seed: int, overrides: dict | list | None = None) -> dict:
    """The validated config of ``row`` at ``seed``: profile ``base`` < protocol < the row < ``overrides`` (one
    mapping, or a list of them applied in order: a notebook's OVERRIDES last, so they win). A method that brings
    its recipe gets it unless the row names one."""
    from .engine.validation import validate
    cfg = merge(copy.deepcopy(base), copy.deepcopy(protocol))
    cfg = merge(cfg, copy.deepcopy(row.changes))
    for k in ("method_options", "head_options", "recipe_options"):  # a row's options replace, never inherit
        cfg[k] = copy.deepcopy(row.changes.get(k, {}))
    cfg = with_method_recipe(cfg, named="recipe" in row.changes)
    for layer in (overrides if isinstance(overrides, list) else [overrides or {}]):
        cfg = merge(cfg, copy.deepcopy(layer))
    cfg["seed"] = int(seed)
    try:
        return validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"leaderboard row {row.name!r}: {exc}") from None


def unseen_score(rec: dict, domains: list[str]) -> float:
    return float(np.mean([rec["metrics"][d]["miou"] for d in domains]))


def _interval(values: list[float]) -> float:
    """Half-width of the 95 % t-interval of a mean over seeds (0 for one seed)."""
    from .stats import t_quantile
    n = len(values)
    return 0.0 if n < 2 else t_quantile(n - 1) * float(np.std(values, ddof=1)) / math.sqrt(n)


def summarize(runs: list[dict], rows: list[Row], domains: list[str], unseen: list[str]) -> list[dict]:
    """One summary per row that has runs: per-domain means over seeds, the unseen mean and its 95 % half-width,
    backbone-side trainable parameters, seconds per training step."""
    out = []
    for r in rows:
        rs = [x for x in runs if x.get("variant") == r.name]
        if not rs:
            continue
        u = [unseen_score(x, unseen) for x in rs]
        steps = [x["train_seconds"] / x["config"]["train"]["max_steps"] for x in rs if x.get("train_seconds")]
        out.append({"row": r.name, "seeds": sorted(int(x["config"]["seed"]) for x in rs),
                    "combination": r.combination, "note": r.note,
                    "params": int(rs[0]["trainable_backbone_params"]),
                    "step_s": float(np.mean(steps)) if steps else None,
                    "domains": {d: float(np.mean([x["metrics"][d]["miou"] for x in rs])) for d in domains},
                    "unseen": float(np.mean(u)), "unseen_pm": _interval(u)})
    return out


def board(runs: list[dict], rows: list[Row], baseline: str, domains: list[str], unseen: list[str]) -> tuple[list, list]:
    """(:func:`summarize`, the comparisons): Δ to ``baseline`` on the unseen domains for every row, and Δ to each
    ``vs`` part for combinations."""
    from .stats import compare
    by = {r.name: [x for x in runs if x.get("variant") == r.name] for r in rows}
    label = f"unseen ({len(unseen)} domain{'s' * (len(unseen) != 1)})"
    comps = []
    for r in rows:
        for other in (([baseline] if r.name != baseline else []) + r.vs) if by[r.name] else []:
            if by.get(other):
                comps.append(compare(r.name, other, by[r.name], by[other], unseen, label=label))
    return summarize(runs, rows, domains, unseen), comps


def markdown(summary: list[dict], comps: list[dict], baseline: str, domains: list[str]) -> str:
    """The leaderboard table, best unseen mean first; Δ and its interval against ``baseline``."""
    from .stats import fmt
    vs_base = {c["a"]: c for c in comps if c["b"] == baseline}
    head = ["#", "method", "backbone params", "s / step", *domains, "unseen ± 95 %", f"Δ vs {baseline} [95 %]", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, s in enumerate(sorted(summary, key=lambda s: -s["unseen"]), 1):
        c = vs_base.get(s["row"])
        delta = f"{fmt(c['diff'])} [{fmt(c['ci95'][0])}, {fmt(c['ci95'][1])}]" if c else "—"
        cells = [str(i), s["row"] + (" ⊕" if s["combination"] else ""), _params(s["params"]),
                 f"{s['step_s']:.2f}" if s["step_s"] else "?", *(f"{s['domains'][d]:.1f}" for d in domains),
                 _unseen(s), delta, c["verdict"] if c else "baseline"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _unseen(s: dict) -> str:
    """The unseen mean with its 95 % half-width; a one-seed row has no seed interval and says so."""
    return f"{s['unseen']:.1f} ± {s['unseen_pm']:.1f}" if len(s["seeds"]) > 1 else f"{s['unseen']:.1f} (1 seed)"


def _params(n: int) -> str:
    return str(n) if n < 1000 else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"


def _label_heights(points: list[dict], gap: float) -> list[float]:
    """Label heights that keep labels of nearby points (within ×3 in parameters) at least ``gap`` apart."""
    order = sorted(range(len(points)), key=lambda i: -points[i]["unseen"])
    placed: list[tuple[float, float]] = []  # (log10 params, label height)
    out = [0.0] * len(points)
    for i in order:
        x, y = math.log10(points[i]["params"]), points[i]["unseen"]
        for px, py in sorted(placed, key=lambda t: -t[1]):
            if abs(px - x) < 0.5 and y > py - gap:
                y = py - gap
        placed.append((x, y))
        out[i] = y
    return out


def plot(summary: list[dict], baseline: str, domains: list[str]):
    """Unseen mIoU vs backbone-side trainable parameters (log x, 95 % bars), and the per-domain heat map."""
    import matplotlib.pyplot as plt
    fig, (ax, hm) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.15]})
    base = next((s for s in summary if s["row"] == baseline), None)
    if base is not None:
        ax.axhspan(base["unseen"] - base["unseen_pm"], base["unseen"] + base["unseen_pm"], color="0.9")
        ax.axhline(base["unseen"], color="0.5", ls="--", lw=1, label=f"{baseline} ({_params(base['params'])} backbone params)")
    shown = [s for s in summary if s["params"] > 0]
    for s in shown:
        ax.errorbar(s["params"], s["unseen"], yerr=s["unseen_pm"], fmt="s" if s["combination"] else "o",
                    ms=6, capsize=3, color="C3" if s["combination"] else "C0")
    span = max(1e-6, max(s["unseen"] for s in summary) - min(s["unseen"] for s in summary))
    for s, y in zip(shown, _label_heights(shown, span / 22)):
        ax.annotate(s["row"], (s["params"], s["unseen"]), (s["params"] * 1.12, y), fontsize=7, va="center",
                    arrowprops=None if abs(y - s["unseen"]) < 1e-9 else {"arrowstyle": "-", "lw": 0.4, "color": "0.5"})
    ax.set_xscale("log")
    ax.set_xlabel("trainable backbone-side parameters (log)")
    ax.set_ylabel("unseen-domain mIoU (mean over seeds, 95 % bars)")
    ax.legend(fontsize=7, loc="lower right", title="○ single method  □ combination", title_fontsize=7)
    order = sorted(summary, key=lambda s: -s["unseen"])
    grid = np.array([[s["domains"][d] for d in domains] for s in order])
    im = hm.imshow(grid, cmap="viridis", aspect="auto")
    hm.set_xticks(range(len(domains)), domains, rotation=30, fontsize=8)
    hm.set_yticks(range(len(order)), [s["row"] for s in order], fontsize=7)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            hm.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if grid[i, j] < grid.mean() else "black")
    fig.colorbar(im, ax=hm, label="mIoU")
    hm.set_title("per domain (mean over seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def from_record(record: dict, protocol: dict) -> tuple[list, list, list[str]]:
    """(summary, comparisons, domains) of a committed leaderboard record (``results/90_leaderboard/<profile>.json``),
    read against its protocol file; refused when the record's rows are not the file's (rerun notebook 90)."""
    from .data.sources import eval_name
    names = [r["name"] for r in record.get("rows", [])]
    if names != [r.name for r in protocol["rows"]] or not record.get("runs"):
        raise ConfigError(f"the leaderboard record's rows {names} are not those of {protocol['path']} "
                          f"({[r.name for r in protocol['rows']]}): rerun notebooks/90_leaderboard.ipynb")
    data = record["runs"][0]["config"]["data"]
    domains = [eval_name(s) for s in data["eval"]]
    unseen = [d for d in domains if d != eval_name(data["train"])]
    return summarize(record["runs"], protocol["rows"], domains, unseen), record.get("comparisons", []), domains


def readme_section(record: dict, protocol: dict) -> tuple[str, object]:
    """The README's leaderboard (markdown: the board, then each combination against its parts) and its figure."""
    from .stats import table
    summary, comps, domains = from_record(record, protocol)
    base = protocol["baseline"]
    seeds = sorted({s for row in summary for s in row["seeds"]})
    cfg = record["runs"][0]["config"]
    text = [f"Notebook 90, profile `{record['profile']}`, commit `{record['commit']}`: {len(summary)} rows × seeds "
            f"{seeds}, one protocol ({cfg['backbone']}, head `{cfg['head']}`, {cfg['train']['max_steps']} steps × "
            f"batch {cfg['train']['batch_size']}, {cfg['data']['size'][0]}×{cfg['data']['size'][1]}; "
            f"`{Path(protocol['path']).name}`). Unseen = every domain but the source; Δ is paired by seed against "
            f"{base}; ⊕ = a combination no paper ran.", "", markdown(summary, comps, base, domains)]
    combos = [c for c in comps if c["b"] != base]
    if combos:
        text += ["", "Each combination against its parts (unseen domains, same seeds):", "", table(combos)]
    return "\n".join(text), plot(summary, base, domains)
