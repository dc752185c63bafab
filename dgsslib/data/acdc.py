"""ACDC (Adverse Conditions Dataset with Correspondences): fog / night / rain / snow driving.

* Paper: C. Sakaridis, D. Dai, L. Van Gool, "ACDC: The Adverse Conditions Dataset with
  Correspondences for Semantic Driving Scene Understanding", ICCV 2021. https://acdc.vision.ee.ethz.ch
* Licence: non-commercial research; register at https://acdc.vision.ee.ethz.ch/download and
  download ``rgb_anon_trainvaltest.zip`` and ``gt_trainval.zip``.
* Layout (root = ``$DGSS_DATA/acdc``)::

      rgb_anon/<cond>/<split>/<seq>/<x>_rgb_anon.png            1920×1080
      gt/<cond>/<split>/<seq>/<x>_gt_labelTrainIds.png          trainIds (also _gt_labelIds.png)

  ``cond`` in fog, night, rain, snow; ``split`` in train, val, test (test has no GT).
* Per condition 400 train / 100 val (night: 106) / 500 test: 1,600 / 406 / 2,000 in total.
* Test scale: 960×540 (the Rein 512-crop configs; ``TEST_SCALE``) or 1920×1080 (the 1024 ones).
* Config data strings: ``acdc:val`` (all four conditions), ``acdc:val:fog``, ``acdc:val:fog+rain``.
* Prepare: ``python data_scripts/prepare_acdc.py --root DIR`` writes any missing
  ``*_gt_labelTrainIds.png`` from ``*_gt_labelIds.png`` (the official zip ships both).

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .base import DatasetError, Folder, SegFolderDataset, resolve_root
from .cityscapes import RAW_FORMAT
from .imageio import LabelJob, convert_label, run_jobs

CONDITIONS = ("fog", "night", "rain", "snow")
IMG_SUFFIX = "_rgb_anon.png"
RAW_SUFFIX = "_gt_labelIds.png"
TRAIN_SUFFIX = "_gt_labelTrainIds.png"
COUNTS = {"train": 400, "val": 100, "test": 500}


class ACDCDataset(SegFolderDataset):
    """ACDC (Sakaridis et al., ICCV 2021, https://acdc.vision.ee.ethz.ch; non-commercial
    research, registration). ``conditions`` selects fog/night/rain/snow. 406 val images;
    test scale 960×540 (or 1920×1080)."""

    NAME = "acdc"
    SPLITS = ("train", "val", "test")
    DEFAULT_SPLIT = "val"
    VERIFY_SPLITS = ("train", "val")
    EXPECTED_COUNTS = {(c, s): n + (6 if (c, s) == ("night", "val") else 0)
                       for c in CONDITIONS for s, n in COUNTS.items()}
    TEST_SCALE = (960, 540)
    TEST_SCALE_FULL = (1920, 1080)
    PREPARE = "python data_scripts/prepare_acdc.py --root ROOT"
    SUBSET_KEYWORD = "conditions"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform=None, label_type: str = "auto",
                 conditions: Sequence[str] = CONDITIONS) -> None:
        conditions = (conditions,) if isinstance(conditions, str) else tuple(conditions)
        bad = [c for c in conditions if c not in CONDITIONS]
        if bad or not conditions:
            raise DatasetError(f"acdc: unknown conditions {bad or conditions}; choose from {CONDITIONS}")
        self.conditions = conditions
        super().__init__(root, split, transform, label_type)

    def folders(self, split: str) -> list[Folder]:
        out = []
        for cond in self.conditions:
            images = f"rgb_anon/{cond}/{split}"
            if split == "test":
                out.append(Folder(images, IMG_SUFFIX))
                continue
            gt = f"gt/{cond}/{split}"
            suffix, fmt, exclude = self.pick_labels(gt, RAW_SUFFIX, RAW_FORMAT, TRAIN_SUFFIX)
            out.append(Folder(images, IMG_SUFFIX, gt, suffix, fmt, exclude))
        return out

    def expected_count(self) -> int | None:
        return sum(self.EXPECTED_COUNTS[(c, self.split)] for c in self.conditions)


def prepare(root: str | os.PathLike | None = None, workers: int = 1, progress: bool = True,
            conditions: Sequence[str] = CONDITIONS) -> list[dict]:
    """Write ``*_gt_labelTrainIds.png`` from ``*_gt_labelIds.png`` where it is missing
    (a condition/split whose trainId files are all there already is left alone)."""
    root = resolve_root("acdc", root)
    jobs, done = [], []
    for split in ("train", "val"):
        for cond in conditions:
            try:  # complete: every image has its trainId label already
                ready = ACDCDataset(root, split, label_type="trainids", conditions=(cond,))
                done += [{"status": "skipped", "file": str(it.label)} for it in ready.items]
                continue
            except DatasetError:
                pass
            for item in ACDCDataset(root, split, label_type="raw", conditions=(cond,)).items:
                dst = Path(str(item.label)[: -len(RAW_SUFFIX)] + TRAIN_SUFFIX)
                jobs.append(LabelJob(item.label, dst, RAW_FORMAT))
    return done + run_jobs(convert_label, jobs, workers, desc="acdc labelIds -> trainIds",
                           progress=progress)
