"""Paired comparisons with 95 % intervals, and the verdict they imply -- one rule for every notebook.

A claim in this kit is a *paired difference* Δ = A − B (mIoU points) with a 95 % interval:

* **seeds** (``paired_seeds``): runs of A and B that share a seed (same data order, same head init)
  are paired; Δ_s = A_s − B_s, and the interval is Student's t on the n differences,
  Δ̄ ± t_{0.975, n−1} · sd(Δ) / √n. It holds the training noise. Needs n ≥ 2 (n = 2 gives t = 12.7:
  honest, and wide).
* **images** (``bootstrap_images``): a paired bootstrap over the evaluation images. Each resample
  draws N images with replacement; both sides' mIoU is recomputed from the per-image confusion counts
  (``per_image`` in every evaluation result: true positives, false positives, false negatives per
  class) of the *same* images, and Δ is averaged over the seeds both sides ran. The 2.5 / 97.5
  percentiles of 2000 resamples are the interval. It holds the evaluation-sample noise only.

``compare`` picks seeds when both sides share ≥ 3 seeds, else images, and says which in ``interval``.
The verdict is read off the interval, never typed: ``better`` when it lies above 0, ``worse`` below,
``tie`` when it contains 0; :func:`sentence` writes the reading a notebook prints.
Used by notebooks 11, 20, 30, 40 and 90.
"""
from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95
VERDICTS = ("better", "worse", "tie")


def t_quantile(df: int, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile t_{(1+level)/2, df}."""
    from scipy.stats import t
    return float(t.ppf(0.5 + level / 2, df))


def verdict(ci95) -> str:
    """``better`` if the interval is above 0, ``worse`` if below, else ``tie``."""
    lo, hi = float(ci95[0]), float(ci95[1])
    if lo > hi:
        raise ValueError(f"interval ({lo}, {hi}) is reversed")
    return "better" if lo > 0 else "worse" if hi < 0 else "tie"


def paired_seeds(a: dict, b: dict, level: float = LEVEL) -> dict:
    """{seed: value} of A and B -> Δ̄ and the t-interval over the shared seeds (≥ 2)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ValueError(f"a t-interval needs >= 2 shared seeds, got {seeds}")
    d = np.array([float(a[s]) - float(b[s]) for s in seeds])
    half = t_quantile(len(d) - 1, level) * d.std(ddof=1) / math.sqrt(len(d))
    return {"diff": float(d.mean()), "ci95": [float(d.mean() - half), float(d.mean() + half)],
            "n": len(d), "interval": "seeds", "per_seed": [float(x) for x in d], "seeds": seeds}


def miou_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """mIoU (points) over the classes present (tp + fp + fn > 0) of summed counts; works on stacks (…×K)."""
    union = tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), 0.0)
    present = (union > 0).sum(-1)
    return 100.0 * iou.sum(-1) / np.maximum(present, 1)


def _counts(per_image: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = [np.asarray(per_image[k], dtype=np.float64) for k in ("tp", "fp", "fn")]
    if not (arr[0].shape == arr[1].shape == arr[2].shape) or arr[0].ndim != 2:
        raise ValueError("per_image needs tp / fp / fn as N×K lists of equal shape")
    return tuple(arr)


def bootstrap_images(a: dict, b: dict, n_boot: int = 2000, seed: int = 0, level: float = LEVEL) -> dict:
    """{seed: [per_image counts of each domain]} of A and B on the same images -> Δ̄ (mean over shared seeds
    and the domains) and the paired bootstrap percentile interval; each domain's images are resampled
    on their own (one draw shared by A, B and every seed)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("bootstrap_images needs at least one seed that both sides ran")
    A = [[_counts(d) for d in _domains(a[s])] for s in seeds]                   # seed × domain × (tp, fp, fn)
    B = [[_counts(d) for d in _domains(b[s])] for s in seeds]
    sizes = [c[0].shape[0] for c in A[0]]
    if any([c[0].shape[0] for c in side] != sizes for side in A + B):
        raise ValueError("both sides must be evaluated on the same images (per_image lengths differ)")
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=(n_boot, n)) for n in sizes]               # per domain: n_boot × N

    def miou(c, rows):  # rows: R×N image indices -> R mIoUs of the summed counts
        return miou_from_counts(*(x[rows].sum(-2) for x in c))

    def delta(rows_per_domain):  # mean over seeds and domains of mIoU(A) − mIoU(B)
        return np.mean([[miou(ca, r) - miou(cb, r) for ca, cb, r in zip(sa, sb, rows_per_domain)]
                        for sa, sb in zip(A, B)], axis=(0, 1))
    diff = float(delta([np.arange(n)[None] for n in sizes])[0])
    boot = delta(draws)
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return {"diff": diff, "ci95": [float(lo), float(hi)], "n": int(sum(sizes)), "interval": "images", "seeds": seeds}


def _domains(x):
    return x if isinstance(x, (list, tuple)) else [x]


def seed_of(record: dict) -> int:
    return int(record.get("config", {}).get("seed", record.get("seed", 0)))


def compare(a_name: str, b_name: str, a_runs, b_runs, domain, label: str | None = None,
            n_boot: int = 2000) -> dict:
    """One comparison entry. ``a_runs`` / ``b_runs``: run records (or {seed: record}); ``domain``: an
    evaluation set name, or a list of them (Δ of their mean mIoU, named ``label``). The interval is over
    seeds when both sides share ≥ 3 seeds, else a bootstrap over the evaluation images."""
    A = a_runs if isinstance(a_runs, dict) else {seed_of(r): r for r in a_runs}
    B = b_runs if isinstance(b_runs, dict) else {seed_of(r): r for r in b_runs}
    doms = _domains(domain)
    name = label or (domain if isinstance(domain, str) else "mean of " + ", ".join(doms))
    shared = sorted(set(A) & set(B))
    if not shared:
        raise ValueError(f"{a_name} vs {b_name}: no seed in common")
    for s in shared:
        for side, rec in ((a_name, A[s]), (b_name, B[s])):
            lost = [d for d in doms if d not in rec.get("metrics", {})]
            if lost:
                raise ValueError(f"{side} (seed {s}) has no evaluation on {', '.join(lost)}")
    mean = lambda r: float(np.mean([r["metrics"][d]["miou"] for d in doms]))  # noqa: E731
    if len(shared) >= 3:
        out = paired_seeds({s: mean(A[s]) for s in shared}, {s: mean(B[s]) for s in shared})
    else:
        missing = [s for s in shared for r in (A[s], B[s]) for d in doms if "per_image" not in r["metrics"][d]]
        if missing:
            raise ValueError(f"{a_name} vs {b_name} on {name}: fewer than 3 seeds and no per-image counts "
                             f"(seeds {sorted(set(missing))}; rerun the evaluation)")
        out = bootstrap_images({s: [A[s]["metrics"][d]["per_image"] for d in doms] for s in shared},
                               {s: [B[s]["metrics"][d]["per_image"] for d in doms] for s in shared}, n_boot=n_boot)
    out = {"a": a_name, "b": b_name, "domain": name, **out}
    out["diff"], out["ci95"] = round(out["diff"], 3), [round(x, 3) for x in out["ci95"]]
    out["verdict"] = verdict(out["ci95"])
    return out


def fmt(x: float) -> str:
    """Signed, 2 decimals; 3 when a non-zero bound would print as ±0.00 (the verdict reads the stored value)."""
    return f"{x:+.3f}" if x != 0 and abs(x) < 0.005 else f"{x:+.2f}"


def sentence(c: dict, unit: str = "mIoU") -> str:
    """The reading of one comparison, generated from its interval."""
    lo, hi = c["ci95"]
    what = {"seeds": f"{c['n']} paired seeds, t-interval",
            "images": f"bootstrap over {c['n']} images, {len(c.get('seeds', []))} seed(s): evaluation noise only"}
    how = what.get(c.get("interval"), c.get("interval", ""))
    if c["verdict"] == "tie":
        head = f"{c['a']} ties with {c['b']}"
    else:
        head = f"{c['a']} is {c['verdict']} than {c['b']}"
    return (f"{head} on {c['domain']}: Δ = {fmt(c['diff'])} {unit}, 95 % interval [{fmt(lo)}, {fmt(hi)}] "
            f"({how}).")


def table(comparisons: list[dict]) -> str:
    """A markdown table of comparisons (a, b, domain, Δ, interval, verdict)."""
    rows = ["| A | B | domain | Δ mIoU | 95 % interval | interval over | verdict |", "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        rows.append(f"| {c['a']} | {c['b']} | {c['domain']} | {fmt(c['diff'])} | [{fmt(c['ci95'][0])}, "
                    f"{fmt(c['ci95'][1])}] | {c.get('interval', '')} (n = {c.get('n', '')}) | {c['verdict']} |")
    return "\n".join(rows)


__all__ = ["LEVEL", "VERDICTS", "bootstrap_images", "compare", "fmt", "miou_from_counts", "paired_seeds", "seed_of",
           "sentence", "table", "t_quantile", "verdict"]
