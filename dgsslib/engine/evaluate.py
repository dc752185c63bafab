"""The one evaluator: confusion-matrix mIoU over the 19 classes, whole or sliding-window inference.

    IoU_c = TP_c / (TP_c + FP_c + FN_c),     mIoU = mean over classes present (GT or prediction)

Classes absent from both ground truth and prediction give NaN and are left out of the mean
(the mmseg convention). Inference goes through ``model.predict`` (whole / sliding window by default,
:mod:`dgsslib.inference`; a method may bring its own); predictions are resized
to the *original label resolution* before scoring. Every result records its test scale.
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..data.labels import CLASSES, IGNORE_INDEX, NUM_CLASSES
from ..data.sources import collate
from ..inference import default_predict
from ..progress import progress_bar


def confusion_matrix(pred: torch.Tensor, label: torch.Tensor, num_classes: int = NUM_CLASSES,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """K×K int64 matrix, rows = ground truth, columns = prediction."""
    keep = label != ignore_index
    idx = label[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes).cpu()


def iou_from_confusion(conf: torch.Tensor, class_subset=None) -> dict:
    """mIoU over all classes; with ``class_subset`` (trainIds, e.g. the 16 Synthia classes) also
    ``miou<N>``: the mean IoU over those classes only, from the same 19×19 matrix (as the
    Synthia -> X papers report mIoU16 beside mIoU19), and ``class_subset`` (their names)."""
    conf = conf.double()
    tp = conf.diag()
    denom = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))
    valid = ~torch.isnan(iou)
    miou = float(iou[valid].mean()) * 100 if valid.any() else float("nan")
    acc = float(tp.sum() / conf.sum().clamp(min=1)) * 100
    out = {"miou": miou, "acc": acc,
           "per_class": {c: (None if math.isnan(v) else round(v * 100, 2)) for c, v in zip(CLASSES, iou.tolist())}}
    if class_subset is not None:
        sub = iou[list(class_subset)]
        sub = sub[~torch.isnan(sub)]
        out[f"miou{len(class_subset)}"] = float(sub.mean()) * 100 if len(sub) else float("nan")
        out["class_subset"] = [CLASSES[i] for i in class_subset]
    return out


def resize_keep_ratio(hw: tuple[int, int], scale: tuple[int, int]) -> tuple[int, int]:
    """mmseg keep-ratio Resize: factor = min(long_max / long, short_max / short)."""
    h, w = hw
    long_max, short_max = max(scale), min(scale)
    f = min(long_max / max(h, w), short_max / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


@torch.no_grad()
def predict(model, images: torch.Tensor, mode: str = "whole", crop: int = 512, stride: int = 341,
            test_scale: tuple[int, int] | None = None, out_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """B×H×W predictions at ``out_hw`` (default: the image size)."""
    out_hw = tuple(out_hw or images.shape[-2:])
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    if test_scale is not None:
        x = F.interpolate(x, size=resize_keep_ratio(x.shape[-2:], tuple(test_scale)), mode="bilinear",
                          align_corners=False)
    probs = model.predict(x, mode=mode, crop=crop, stride=stride) if hasattr(model, "predict") \
        else default_predict(model, x, mode, crop, stride)
    if tuple(probs.shape[-2:]) != out_hw:
        probs = F.interpolate(probs, size=out_hw, mode="bilinear", align_corners=False)
    return probs.argmax(1)


@torch.no_grad()
def evaluate(model, dataset, mode: str = "whole", crop: int = 512, stride: int = 341,
             test_scale=None, batch_size: int = 8, device=None, desc: str = "eval",
             amp_dtype: torch.dtype | None = None, progress: bool = True, class_subset=None) -> dict:
    """mIoU of ``model`` on ``dataset`` (samples {"image": uint8 3×H×W, "label": H×W})."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    conf = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    per_image = {"tp": [], "fp": [], "fn": []}  # per image and class: what dgsslib.stats bootstraps over
    t0 = time.time()
    same_size = mode == "whole" and test_scale is None
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size if same_size else 1,
                                         shuffle=False, collate_fn=collate, num_workers=0)
    for batch in progress_bar(loader, desc=desc, leave=False, disable=not progress):
        img, lab = batch["image"].to(device), batch["label"].to(device)
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            pred = predict(model, img, mode, crop, stride, test_scale, out_hw=lab.shape[-2:])
        for p_i, l_i in zip(pred, lab):
            c = confusion_matrix(p_i, l_i)
            conf += c
            tp = c.diag()
            for key, v in (("tp", tp), ("fp", c.sum(0) - tp), ("fn", c.sum(1) - tp)):
                per_image[key].append(v.tolist())
    model.train(was_training)
    stats = model.predict_stats() if hasattr(model, "predict_stats") else {}
    res = iou_from_confusion(conf, class_subset)
    # every entry records how it was measured (whole mode uses no window: crop/stride None)
    res.update(n_images=len(dataset), mode=mode, test_scale=list(test_scale) if test_scale else "native",
               crop=crop if mode == "slide" else None, stride=stride if mode == "slide" else None,
               seconds=round(time.time() - t0, 2), **stats)
    res["per_image"] = per_image  # N×K true positives / false positives / false negatives (results.json only)
    return res


def build_eval_sets(cfg: dict) -> dict:
    """{name: (dataset, evaluate kwargs)} for every eval data string, opened and checked now."""
    from ..data.protocol import eval_settings
    from ..data.sources import build_source, eval_name
    return {eval_name(spec): (build_source(spec, cfg, train=False), eval_settings(spec, cfg))
            for spec in cfg["data"]["eval"]}


def check_eval_data(eval_sets: dict, progress: bool = True) -> None:
    """Decode every image and label of the real evaluation sets once, before the first training step: a
    truncated file or an image/label size mismatch stops the run now (``DatasetError`` naming the file and
    the fix), not after hours of training. The procedural sets render on demand and need no check."""
    for name, (ds, _) in eval_sets.items():
        if not hasattr(ds, "check_item"):
            continue
        for i in progress_bar(range(len(ds)), desc=f"check eval {name}", leave=False, disable=not progress):
            ds.check_item(i, decode_image=True)


def evaluate_all(model, cfg: dict, device, amp_dtype, progress: bool = True, eval_sets: dict | None = None) -> dict:
    eval_sets = eval_sets if eval_sets is not None else build_eval_sets(cfg)
    return {name: evaluate(model, ds, batch_size=cfg["eval"]["batch_size"], device=device, desc=f"eval {name}",
                           amp_dtype=amp_dtype, progress=progress, **kw)
            for name, (ds, kw) in eval_sets.items()}


def format_table(results: dict[str, dict], digits: int = 1) -> str:
    """Markdown table: one row per class, one column per domain, mIoU last."""
    doms = list(results)
    lines = ["| class | " + " | ".join(doms) + " |", "|---" * (len(doms) + 1) + "|"]
    for c in CLASSES:
        vals = [results[d]["per_class"].get(c) for d in doms]
        lines.append(f"| {c} | " + " | ".join("-" if v is None else f"{v:.{digits}f}" for v in vals) + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{results[d]['miou']:.{digits}f}**" for d in doms) + " |")
    return "\n".join(lines)


def mean_over(results: dict[str, dict], names) -> float:
    vals = [results[n]["miou"] for n in names if n in results]
    return float(np.mean(vals)) if vals else float("nan")
