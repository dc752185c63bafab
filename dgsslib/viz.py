"""Small matplotlib helpers for the notebooks: label overlays, sample grids, PCA of features,
curves and bar charts.

Every plotting helper builds and returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()`` (a notebook displays the returned figure; tests run under the Agg backend).
Images may be torch tensors or numpy arrays, uint8 or float in [0, 1], C×H×W or H×W×C; labels
are H×W trainIds with 255 = ignore (ignore pixels are never tinted).

    overlay = (1 − α) · image + α · palette[label]     where label ≠ 255, the image elsewhere
    feature PCA: X (N×C patch features, centred) = U S Vᵀ;  rgb = X · V[:, :3], min–max per channel

Taught in ``notebooks/00_setup_and_benchmark.ipynb`` (overlays, domains, PCA) and used by every
results notebook (curves, bars, per-class heatmaps).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .data.labels import CLASSES, IGNORE_INDEX, NUM_CLASSES, PALETTE, colorize


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def to_hwc_uint8(image) -> np.ndarray:
    """C×H×W or H×W×C, uint8 or float [0, 1] (tensor or array) -> H×W×3 uint8."""
    a = _np(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3:
        raise ValueError(f"expected an image C×H×W or H×W×C, got shape {a.shape}")
    if a.shape[-1] not in (1, 3) and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return a


def overlay(image, label, alpha: float = 0.5) -> np.ndarray:
    """Blend the class colours of ``label`` into ``image``; H×W×3 uint8 (ignore pixels untouched)."""
    img = to_hwc_uint8(image)
    lab = _np(label).astype(np.int64)
    if lab.shape != img.shape[:2]:
        raise ValueError(f"label {lab.shape} and image {img.shape[:2]} sizes differ")
    keep = (lab != IGNORE_INDEX) & (lab >= 0) & (lab < NUM_CLASSES)
    blend = (1.0 - alpha) * img.astype(np.float32) + alpha * colorize(np.where(keep, lab, IGNORE_INDEX))
    out = img.copy()
    out[keep] = np.clip(blend[keep] + 0.5, 0, 255).astype(np.uint8)
    return out


def legend_patches() -> list[Patch]:
    """One coloured patch per class (the 19 Cityscapes trainIds), for ``fig.legend``."""
    return [Patch(facecolor=PALETTE[i] / 255.0, label=f"{i} {c}") for i, c in enumerate(CLASSES)]


def _grid(rows: int, cols: int, cell: float = 2.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(cell * cols, cell * rows * 0.75 + 0.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def _sample(s) -> tuple[object, object | None, object | None]:
    """(image, label, pred) from a dataset sample dict or an (image, label[, pred]) tuple."""
    if isinstance(s, Mapping):
        return s["image"], s.get("label"), s.get("pred")
    s = tuple(s)
    return s[0], (s[1] if len(s) > 1 else None), (s[2] if len(s) > 2 else None)


def show_samples(samples: Sequence, titles: Sequence[str] | None = None, ncols: int = 4,
                 alpha: float = 0.5) -> Figure:
    """A grid of (image | label overlay [| prediction overlay]) panels, ``ncols`` samples a row.
    ``samples``: dataset samples {"image", "label"[, "pred"]} or (image, label[, pred]) tuples."""
    items = [_sample(s) for s in samples]
    if not items:
        raise ValueError("show_samples needs at least one sample")
    per = 1 + max(int(l is not None) + int(p is not None) for _, l, p in items)
    ncols = max(1, min(ncols, len(items)))
    rows = -(-len(items) // ncols)
    fig, axes = _grid(rows, ncols * per)
    for k, (img, lab, pred) in enumerate(items):
        r, c = divmod(k, ncols)
        panels = [(to_hwc_uint8(img), titles[k] if titles else f"#{k}")]
        panels += [(overlay(img, x, alpha), name) for x, name in ((lab, "label"), (pred, "pred")) if x is not None]
        for j, (pic, name) in enumerate(panels):
            ax = axes[r, c * per + j]
            ax.imshow(pic)
            ax.set_title(name, fontsize=8)
    return fig


def domain_grid(datasets: Mapping[str, Sequence], n: int = 3, alpha: float = 0.5) -> Figure:
    """Rows = domains, ``n`` evenly spaced samples per row, each as image | label overlay."""
    if not datasets:
        raise ValueError("domain_grid needs at least one dataset")
    fig, axes = _grid(len(datasets), 2 * n)
    for r, (name, ds) in enumerate(datasets.items()):
        idx = np.linspace(0, len(ds) - 1, num=min(n, len(ds))).round().astype(int) if len(ds) else []
        for j, i in enumerate(idx):
            img, lab, _ = _sample(ds[int(i)])
            axes[r, 2 * j].imshow(to_hwc_uint8(img))
            if lab is not None:
                axes[r, 2 * j + 1].imshow(overlay(img, lab, alpha))
        axes[r, 0].set_axis_on()
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=10)
    return fig


def feature_pca(taps, n: int = 3) -> np.ndarray:
    """RGB-like image of patch features: the first ``n`` principal components, min–max
    normalised to [0, 1] per channel. ``taps``: C×H×W or B×C×H×W (fitted jointly over the batch)
    -> H×W×n (for C×H×W or B = 1) or B×H×W×n float32."""
    x = taps.detach().float().cpu() if torch.is_tensor(taps) else torch.as_tensor(np.asarray(taps), dtype=torch.float32)
    squeeze = x.dim() == 3
    if squeeze:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"expected features C×H×W or B×C×H×W, got shape {tuple(x.shape)}")
    B, C, H, W = x.shape
    if not 1 <= n <= C:
        raise ValueError(f"n must be in 1..{C} (the channel count), got {n}")
    flat = x.permute(0, 2, 3, 1).reshape(-1, C)
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    comps = vh[:n]  # n×C
    comps = comps * torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))  # fixed sign
    proj = flat @ comps.T  # N×n
    lo, hi = proj.min(0, keepdim=True).values, proj.max(0, keepdim=True).values
    proj = (proj - lo) / (hi - lo).clamp(min=1e-12)
    out = proj.reshape(B, H, W, n).numpy().astype(np.float32)
    return out[0] if squeeze or B == 1 else out


def plot_curves(history: Sequence[Mapping], key: str | Sequence[str] = "loss", x: str = "step",
                title: str | None = None) -> Figure:
    """Line plot of ``history[i][key]`` against ``history[i][x]`` (x defaults to the index)."""
    keys = [key] if isinstance(key, str) else list(key)
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for k in keys:
        pts = [(h.get(x, i), h[k]) for i, h in enumerate(history) if h.get(k) is not None]
        if pts:
            ax.plot(*zip(*pts), label=k)
    ax.set_xlabel(x)
    ax.set_ylabel(keys[0] if len(keys) == 1 else "value")
    ax.set_title(title or ", ".join(keys))
    ax.grid(alpha=0.3)
    if len(keys) > 1:
        ax.legend()
    return fig


def bar_compare(ours: Mapping[str, float], paper: Mapping[str, float], title: str = "",
                labels: tuple[str, str] = ("ours", "paper")) -> Figure:
    """Side-by-side bars per key (paper's order first); a missing value leaves its bar out."""
    keys = list(dict.fromkeys([*paper, *ours]))
    fig = Figure(figsize=(max(4.0, 1.1 * len(keys) + 1.5), 3.8), layout="constrained")
    ax = fig.subplots()
    pos, w = np.arange(len(keys)), 0.38
    for off, src, name in ((-w / 2, ours, labels[0]), (w / 2, paper, labels[1])):
        vals = np.array([np.nan if src.get(k) is None else float(src[k]) for k in keys])
        bars = ax.bar(pos + off, np.nan_to_num(vals), w, label=name)
        for b, v in zip(bars, vals):
            if np.isnan(v):
                b.set_visible(False)
            else:
                ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(pos, keys, rotation=30, ha="right")
    ax.set_title(title)
    ax.legend()
    return fig


def per_class_heatmap(results: Mapping[str, Mapping], title: str = "per-class IoU (%)") -> Figure:
    """Classes × domains heatmap of IoU from evaluator records ({"per_class": {class: IoU}});
    ``title`` should name the run it shows (method, profile, steps, seed)."""
    doms = [d for d, r in results.items() if isinstance(r, Mapping) and "per_class" in r]
    if not doms:
        raise ValueError("per_class_heatmap needs records with a 'per_class' entry (dgsslib.engine.evaluate)")
    mat = np.array([[np.nan if results[d]["per_class"].get(c) is None else results[d]["per_class"][c]
                     for d in doms] for c in CLASSES], dtype=np.float64)
    fig = Figure(figsize=(0.8 * len(doms) + 2.6, 6.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(mat), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(doms)), doms, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=9)
    for (i, j), v in np.ndenumerate(mat):  # 9 pt numbers: legible at the notebook's 100 dpi
        ax.text(j, i, "-" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=9,
                color="white" if np.isnan(v) or v < 50 else "black")
    fig.colorbar(im, ax=ax, shrink=0.6, label="IoU (%)")
    ax.set_title(title, fontsize=10)
    return fig


__all__ = ["overlay", "to_hwc_uint8", "legend_patches", "show_samples", "domain_grid", "feature_pca",
           "plot_curves", "bar_compare", "per_class_heatmap"]
