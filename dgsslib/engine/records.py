"""One run's record: what it ran, on what, what it measured, and from which code.

The schema shared by ``WORK_DIR/results.json`` (the trainer) and ``results/<notebook>/<profile>.json``
(notebooks, via :mod:`dgsslib.results`): config, metrics per evaluation set (mIoU, per-class IoU,
test scale, crop, stride), the weight source, trainable-parameter counts, device, commit and the
``provenance`` entry of :mod:`dgsslib.provenance`. Kept apart from :mod:`dgsslib.results` (tables,
reproduction) so the trainer depends on nothing that depends on it.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from ..results.provenance import git_commit, provenance


def write_json(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def device_info() -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform(terse=True)}
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    else:
        info["cuda_device"] = None
    return info


def run_record(cfg: dict, model, metrics: dict, summary_extra: dict | None = None, **extra) -> dict:
    from ..profiles import SYNTH_ADVERSE, SYNTH_TARGETS
    from ..data.sources import eval_name
    targets = [eval_name(s) for s in SYNTH_TARGETS]
    adverse = [eval_name(s) for s in SYNTH_ADVERSE]
    summary = {}
    for group, names in (("mean_targets", targets), ("mean_adverse", adverse)):
        vals = [metrics[n]["miou"] for n in names if n in metrics]
        if vals:
            summary[group] = sum(vals) / len(vals)
    summary.update(summary_extra or {})  # e.g. Rein-A's pseudo_weight_mean (Recipe.summary_terms)
    return {
        "profile": cfg["profile"], "backbone": cfg["backbone"], "weights": model.vfm.weights_source,
        "method": cfg["method"], "method_options": cfg.get("method_options", {}), "head": cfg["head"],
        "trainable_backbone_params": model.method.num_trainable(),
        "trainable_head_params": sum(p.numel() for p in model.head.parameters() if p.requires_grad),
        "metrics": metrics, "summary": summary, "config": cfg, "device": device_info(),
        "commit": git_commit(short=True), "provenance": provenance(cfg), **extra,
    }


