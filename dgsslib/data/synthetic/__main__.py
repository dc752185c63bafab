"""Command line for the procedural benchmark: speed, a preview grid and class statistics.

    python -m dgsslib.data.synthetic --bench              # images/s per domain (writes nothing)
    python -m dgsslib.data.synthetic --preview OUT.png    # all domains + label overlays
    python -m dgsslib.data.synthetic --stats 200          # per-class pixel frequency
    python -m dgsslib.data.synthetic --learnability       # object sizes in tokens + Freeze proxy
    python -m dgsslib.data.synthetic --version            # benchmark version + render params

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..labels import CLASSES, IGNORE_INDEX, NUM_CLASSES, colorize
from .dataset import BENCHMARK_VERSION, check_size, render_params, render_sample
from .render import render, render_rng
from .scene import make_scene
from .styles import DOMAINS


def _size(text: str) -> tuple[int, int]:
    if "x" in text:
        h, w = text.lower().split("x")
        return check_size((int(h), int(w)))
    return check_size(text)


def bench(n: int, size: tuple[int, int], seed: int = 0) -> dict[str, tuple[float, float]]:
    """Per domain: (images/s wall-clock, CPU ms per image) for layout + rendering of ``n``
    samples in this process. CPU time is the steadier number on a shared machine."""
    out = {}
    render_sample("source", 0, size, seed)  # warm caches
    for domain in DOMAINS:
        t, c = time.perf_counter(), time.process_time()
        for i in range(n):
            render_sample(domain, i, size, seed)
        out[domain] = (n / (time.perf_counter() - t), 1000 * (time.process_time() - c) / n)
    return out


def class_stats(n: int, size: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class pixel fraction and fraction of layouts containing the class (ignore last)."""
    counts = np.zeros(256, np.int64)
    present = np.zeros(256, np.int64)
    for i in range(n):
        lab = make_scene(seed, i, size).label
        c = np.bincount(lab.ravel(), minlength=256)
        counts += c
        present += c > 0
    pix = counts / counts.sum()
    keep = list(range(NUM_CLASSES)) + [IGNORE_INDEX]
    return pix[keep], present[keep] / n


def preview(path: str, size: tuple[int, int], indices: list[int], seed: int = 0) -> None:
    """Save a grid: for each layout, one row of domain images and one with label overlays."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    H, W = size
    rows = []
    for i in indices:
        scene = make_scene(seed, i, size)
        imgs = [render(scene, d, render_rng(seed, i, d)) for d in DOMAINS]
        over = colorize(scene.label).astype(np.float32)
        rows.append(np.concatenate(imgs, 1))                                   # (H, D*W, 3)
        rows.append(np.concatenate([(0.5 * im + 0.5 * over).astype(np.uint8) for im in imgs], 1))
    grid = np.concatenate(rows, 0)                                             # (2*N*H, D*W, 3)
    fig = plt.figure(figsize=(grid.shape[1] / 100 + 0.2, grid.shape[0] / 100 + 0.4), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1 - 0.3 / (grid.shape[0] / 100 + 0.4)])
    ax.imshow(grid, interpolation="nearest")
    for k, d in enumerate(DOMAINS):
        ax.text((k + 0.5) * W, -4, d, ha="center", va="bottom", fontsize=9)
    ax.axis("off")
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dgsslib.data.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", action="store_true", help="print images/s per domain")
    p.add_argument("--preview", metavar="OUT.png", help="write a grid of all domains")
    p.add_argument("--stats", type=int, metavar="N", help="class frequencies over N layouts")
    p.add_argument("--learnability", action="store_true",
                   help="per-class object sizes in tokens + per-class IoU of a Freeze proxy "
                        "(frozen DINOv2-S/14 features, light head on cached features)")
    p.add_argument("--steps", type=int, default=300, help="--learnability: head steps (x 8)")
    p.add_argument("--n-train", type=int, default=800,
                   help="--learnability: source images whose features are cached")
    p.add_argument("--n-eval", type=int, default=100,
                   help="--learnability: val images scored per domain")
    p.add_argument("--domains", nargs="+", default=["source"],
                   help="--learnability: domains to score (first = the one counted)")
    p.add_argument("--version", action="store_true",
                   help="print BENCHMARK_VERSION and the render params")
    p.add_argument("--size", type=_size, default=(112, 224),
                   help="smoke | mini | hires | HxW (default 112x224)")
    p.add_argument("--n", type=int, default=50, help="images per domain for --bench")
    p.add_argument("--index", type=int, nargs="+", default=[0, 1, 2], help="layouts to preview")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not (a.bench or a.preview or a.stats or a.learnability or a.version):
        p.error("nothing to do: pass --bench, --preview OUT.png, --stats N, --learnability "
                "and/or --version")
    bad = [d for d in a.domains if d not in DOMAINS]
    if bad:
        p.error(f"unknown domain(s) {bad}; expected some of {DOMAINS}")
    if a.version:
        print(f"benchmark version {BENCHMARK_VERSION}; render params of the mini source set: "
              f"{render_params('source', 'train', a.size, a.seed)}")
    if a.bench:
        print(f"images/s at {a.size[0]}x{a.size[1]} (layout + render, {a.n} images, 1 process)")
        for d, (ips, cpu) in bench(a.n, a.size, a.seed).items():
            print(f"  {d:10s} {ips:7.1f} img/s  ({1000 / ips:5.1f} ms/img wall, {cpu:5.1f} ms CPU)")
    if a.stats:
        pix, pres = class_stats(a.stats, a.size, a.seed)
        print(f"{'class':14s} {'pixels %':>9s} {'images %':>9s}   over {a.stats} layouts")
        for name, f, q in zip(list(CLASSES) + ["ignore (255)"], pix, pres):
            print(f"{name:14s} {100 * f:9.2f} {100 * q:9.1f}")
    if a.learnability:
        from .learnability import report
        print(report(a.steps, a.n_train, a.stats or 100, a.size, a.seed, tuple(a.domains),
                     a.n_eval))
    if a.preview:
        preview(a.preview, a.size, a.index, a.seed)
        print(f"wrote {a.preview}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
