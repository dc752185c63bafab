"""Per-class learnability of the procedural benchmark: object sizes in tokens and a Freeze proxy.

A ViT with patch ``p`` sees an image as a grid of ``p``-pixel tokens (DINOv2-S/14 at the mini
size 112x224: an 8x16 grid). An object much narrower than one token only tints a token's
feature, so a light head on the token grid can hardly segment it. This module measures both
sides of that argument:

* ``size_stats``: for every visible instance of every class (from the renderer's instance
  map), its height and its *thickness* = pixels / rows it occupies (the mean row width, so a
  lamp post with an arm is as thin as its post), in tokens, plus the share of instances
  thinner than one token.
* ``proxy_freeze``: a cheap proxy of the mini Freeze recipe -- frozen DINOv2-S/14 features of
  ``n_train`` source images are computed once (random horizontal flip, as in training), then the
  mini light head is trained on the cached features (AdamW, lr 1e-3, poly 0.9, ``steps`` x
  ``batch``) and scored per class on the val split. It is a proxy: the real recipe
  (``python -m dgsslib.train --method freeze --profile mini``) draws fresh images every step.

``python -m dgsslib.data.synthetic --learnability`` prints both. Taught in
``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..labels import CLASSES, NUM_CLASSES
from .dataset import SPLIT_OFFSET, render_sample
from .scene import make_scene

TOKEN = 14  # DINOv2 patch size, pixels


def instance_sizes(inst: np.ndarray, label: np.ndarray) -> list[tuple[int, float, float]]:
    """``(class, thickness px, height px)`` of every visible instance of a scene.

    thickness = pixels / occupied rows (mean row width); height = occupied rows."""
    out = []
    H = inst.shape[0]
    ids, first = np.unique(inst, return_index=True)
    cls = label.ravel()[first]
    rows = np.broadcast_to(np.arange(H)[:, None], inst.shape)
    for i, c in zip(ids, cls):
        if c >= NUM_CLASSES:
            continue
        m = inst == i
        r = np.unique(rows[m])
        out.append((int(c), float(m.sum()) / len(r), float(len(r))))
    return out


def size_stats(n: int, size: tuple[int, int] = (112, 224), seed: int = 0,
               split: str = "val") -> dict[str, dict[str, float]]:
    """Per class over ``n`` layouts: instance count, median / 10th-percentile thickness and
    height in tokens, the share of instances thinner than one token, and the pixel-weighted
    median thickness (the thickness of the instance a typical *pixel* of the class belongs
    to: what the per-pixel IoU sees)."""
    per: dict[int, list[tuple[float, float]]] = {c: [] for c in range(NUM_CLASSES)}
    for i in range(n):
        sc = make_scene(seed, SPLIT_OFFSET[split] + i, size)
        for c, t, h in instance_sizes(sc.inst, sc.label):
            per[c].append((t, h))
    out = {}
    for c in range(NUM_CLASSES):
        a = np.array(per[c], np.float64).reshape(-1, 2) / TOKEN   # (n_inst, 2) in tokens
        if len(a) == 0:
            out[CLASSES[c]] = {"n": 0}
            continue
        order = np.argsort(a[:, 0])
        cum = np.cumsum((a[:, 0] * a[:, 1])[order])                 # pixels, thinnest first
        px_med = a[order[np.searchsorted(cum, cum[-1] / 2)], 0]
        out[CLASSES[c]] = {"n": len(a), "thick_med": float(np.median(a[:, 0])),
                           "thick_p10": float(np.percentile(a[:, 0], 10)),
                           "thick_px_med": float(px_med),
                           "height_med": float(np.median(a[:, 1])),
                           "height_p10": float(np.percentile(a[:, 1], 10)),
                           "sub_token": float((a[:, 0] < 1).mean())}
    return out


def _render(domain: str, split: str, n: int, size, seed: int, flip_seed: int | None):
    imgs, labs = [], []
    g = np.random.default_rng(flip_seed) if flip_seed is not None else None
    for i in range(n):
        img, lab = render_sample(domain, i, size, seed, split)
        if g is not None and g.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        imgs.append(np.ascontiguousarray(img.transpose(2, 0, 1)))  # (H, W, 3) -> (3, H, W)
        labs.append(np.ascontiguousarray(lab))
    return torch.from_numpy(np.stack(imgs)), torch.from_numpy(np.stack(labs).astype(np.int64))


@torch.no_grad()
def _features(model, images: torch.Tensor, batch: int = 32) -> list[torch.Tensor]:
    """Frozen taps of ``images``, cached as float16: list of (N, C, h, w)."""
    outs = []
    for k in range(0, len(images), batch):
        outs.append([t.half() for t in model.features(images[k:k + batch])])
    return [torch.cat(x) for x in zip(*outs)]


def proxy_freeze(steps: int = 300, batch: int = 8, n_train: int = 800, n_eval: int = 100,
                 domains: tuple[str, ...] = ("source",), size=(112, 224), seed: int = 0,
                 lr: float = 1e-3, verbose: bool = True) -> dict[str, dict]:
    """Per-domain ``iou_from_confusion`` results of the cached-feature Freeze proxy."""
    from ...engine.evaluate import confusion_matrix, iou_from_confusion
    from ...model import build_model
    from ...profiles import resolve

    if steps < 1 or n_train < 1 or n_eval < 1 or batch < 1:
        raise ValueError(f"steps, batch, n_train and n_eval must be >= 1, got {steps}, {batch}, "
                         f"{n_train}, {n_eval}; pass e.g. --steps 300 --n-train 800")
    cfg = resolve("mini", {"method": "freeze", "seed": seed})
    torch.manual_seed(seed)
    model = build_model(cfg, verbose=False).eval()
    t0 = time.time()
    x, y = _render("source", "train", n_train, size, seed, flip_seed=seed)
    feats = _features(model, x)
    if verbose:
        print(f"[learnability] {n_train} train features in {time.time() - t0:.0f}s", flush=True)
    head = model.head
    head.train()
    decay = [p for p in head.parameters() if p.ndim > 1]   # no weight decay on norms / biases
    rest = [p for p in head.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["train"]["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = lr * (1 - step / steps) ** cfg["train"]["poly_power"]  # poly, as train
        idx = torch.randint(0, n_train, (batch,), generator=g)
        out = head([f[idx].float() for f in feats])
        loss = head.loss(out, y[idx])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    res = {}
    for d in domains:
        xe, ye = _render(d, "val", n_eval, size, seed, flip_seed=None)
        fe = _features(model, xe)
        conf = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
        with torch.no_grad():
            for k in range(0, n_eval, 32):
                out = head([f[k:k + 32].float() for f in fe])
                pred = head.semantic_logits(out, tuple(ye.shape[-2:])).argmax(1)
                conf += confusion_matrix(pred, ye[k:k + 32])
        res[d] = iou_from_confusion(conf)
    if verbose:
        print(f"[learnability] proxy done in {time.time() - t0:.0f}s", flush=True)
    return res


def report(steps: int, n_train: int, n_stats: int, size=(112, 224), seed: int = 0,
           domains: tuple[str, ...] = ("source",), n_eval: int = 100) -> str:
    """The learnability table: proxy per-class IoU (per domain) + size statistics."""
    from .dataset import BENCHMARK_VERSION
    st = size_stats(n_stats, size, seed)
    res = proxy_freeze(steps=steps, n_train=n_train, n_eval=n_eval, domains=domains, size=size,
                       seed=seed)
    lines = [f"benchmark v{BENCHMARK_VERSION}. Freeze proxy: frozen DINOv2-S/14 features of "
             f"{n_train} source train images, light head trained {steps} x 8 on the cached "
             f"features (a proxy, NOT the full recipe), IoU on {n_eval} val images per domain; "
             f"sizes over {n_stats} val layouts at {size[0]}x{size[1]}, token = {TOKEN} px "
             "(thick = pixels / rows, px-w med = pixel-weighted median, <1 tok = share of "
             "instances thinner than a token)",
             f"{'class':14s} " + " ".join(f"{d[:9]:>9s}" for d in domains)
             + f" {'inst':>5s} {'thick med':>9s} {'thick p10':>9s} {'px-w med':>8s} {'h med':>6s}"
             f" {'h p10':>6s} {'<1 tok':>7s}"]
    n_ok = 0
    for c in CLASSES:
        ious = [res[d]["per_class"][c] for d in domains]
        n_ok += (ious[0] or 0) >= 10
        s = st[c]
        iou_txt = " ".join("      n/a" if v is None else f"{v:9.1f}" for v in ious)
        if s["n"] == 0:
            lines.append(f"{c:14s} {iou_txt}     0")
            continue
        lines.append(f"{c:14s} {iou_txt} {s['n']:5d} {s['thick_med']:9.2f} {s['thick_p10']:9.2f}"
                     f" {s['thick_px_med']:8.2f} {s['height_med']:6.2f} {s['height_p10']:6.2f}"
                     f" {100 * s['sub_token']:6.0f}%")
    lines.append(f"{'mIoU':14s} " + " ".join(f"{res[d]['miou']:9.1f}" for d in domains)
                 + f"   ({n_ok}/{len(CLASSES)} classes >= 10 IoU on {domains[0]})")
    return "\n".join(lines)
