"""Per-image class pixel counts: the statistics of DAFormer's Rare Class Sampling (RCS).

DAFormer (Hoyer et al., CVPR 2022, Sec. 3.3; ``tools/convert_datasets/gta.py``) counts, once,
the pixels n_{f,c} of every trainId c in every full-resolution source label f, then samples
a class with P(c) = softmax((1 - f_c) / T) and an image holding more than ``min_pixels`` of it
(as DAFormer's ``tools/convert_datasets/gta.py`` writes ``sample_class_stats.json``). This module writes and reads those counts.

**The one format** (DAFormer's ``sample_class_stats.json``, so its tools read our files): a
JSON list, one entry per labelled image, sorted by ``file``::

    [{"file": "labels/00001_labelTrainIds.png", "0": 812345, "2": 40000, "13": 5120}, ...]

``file`` is the label path relative to the dataset root; every other key is a trainId (as a
string) with its pixel count at the label's full resolution; ignore (255) and absent classes
are left out. Files: ``<root>/sample_class_stats.json`` for the ``train`` split (written by
``prepare_gtav.py``/``prepare_synthia.py`` and by ``data_scripts/compute_rcs_stats.py``),
``<root>/sample_class_stats_<split>.json`` for any other split. A stats file is written only
when every label was counted -- a partial file would bias the sampling silently.

``class_pixels(dataset)`` returns the N×19 count matrix aligned with ``dataset.items`` (what a
sampler uses). Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import DatasetError, SegFolderDataset
from .imageio import read_label, run_jobs
from .labels import NUM_CLASSES, count_classes

COMMAND = "python data_scripts/compute_rcs_stats.py {name} --root ROOT --split {split}"


def stats_path(root: Path, split: str) -> Path:
    """``sample_class_stats.json`` (train) or ``sample_class_stats_<split>.json``."""
    return Path(root) / ("sample_class_stats.json" if split == "train" else f"sample_class_stats_{split}.json")


def write_class_stats(root: Path, results: Sequence[dict], split: str = "train") -> Path | None:
    """Write the stats file from job results ``{"status", "file", "stats": {trainId: n}}``.
    Returns its path, or None (nothing written) if any job failed."""
    root = Path(root)
    if any(r["status"] == "error" for r in results):
        return None  # an incomplete stats file would silently bias rare class sampling
    stats = [{"file": Path(r["file"]).relative_to(root).as_posix(),
              **{str(c): n for c, n in sorted(r["stats"].items())}} for r in results]
    path = stats_path(root, split)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(sorted(stats, key=lambda s: s["file"]), indent=0))
    os.replace(tmp, path)
    return path


def _count_job(job: tuple[Path, Any]) -> dict[str, Any]:
    label, fmt = job
    train = fmt.to_train_ids(read_label(label, fmt.channel), label)
    return {"status": "counted", "file": str(label), "stats": count_classes(train)}


def compute_class_stats(ds: SegFolderDataset, workers: int = 1, progress: bool = True) -> list[dict]:
    """Count the classes of every label of ``ds`` (job results; see ``write_class_stats``)."""
    jobs = [(it.label, it.fmt) for it in ds.items if it.label is not None]
    if not jobs:
        raise DatasetError(f"{ds.NAME}/{ds.split} has no labels: class statistics need a labelled split")
    return run_jobs(_count_job, jobs, workers, desc=f"{ds.NAME}/{ds.split} class stats", progress=progress)


def read_class_stats(path: Path) -> dict[str, dict[int, int]]:
    """{label file relative to the root: {trainId: pixels}} from a stats file."""
    try:
        entries = json.loads(Path(path).read_text())
        return {e["file"]: {int(k): int(v) for k, v in e.items() if k != "file"} for e in entries}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path}: not a sample_class_stats file ({type(e).__name__}: {e}); "
                           "re-create it with data_scripts/compute_rcs_stats.py") from e


def class_pixels(ds: SegFolderDataset) -> np.ndarray:
    """N×19 int64 pixel counts aligned with ``ds.items``, from the split's stats file (a subset
    split such as GTAV ``official_train`` may use the ``train`` file). Every item must be there."""
    candidates = [stats_path(ds.root, ds.split)] + ([stats_path(ds.root, "train")] if ds.split != "train" else [])
    path = next((p for p in candidates if p.is_file()), None)
    command = COMMAND.format(name=ds.NAME, split=ds.split)
    if path is None:
        raise DatasetError(f"{ds.NAME}/{ds.split}: no class statistics ({candidates[0]}); "
                           f"create them with `{command}`")
    stats = read_class_stats(path)
    out = np.zeros((len(ds), NUM_CLASSES), dtype=np.int64)
    missing = []
    for i, it in enumerate(ds.items):
        key = it.label.relative_to(ds.root).as_posix() if it.label is not None else None
        if key not in stats:
            missing.append(key or it.name)
            continue
        for c, n in stats[key].items():
            out[i, c] = n
    if missing:
        raise DatasetError(f"{path} has no entry for {len(missing)} of {len(ds)} labels (first: "
                           f"{missing[:3]}); it is stale or from other label files: re-run `{command}`")
    return out
