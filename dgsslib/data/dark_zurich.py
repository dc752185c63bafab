"""Dark Zurich: night-time driving, the UDA target of Cityscapes -> Dark Zurich (DAFormer/HRDA).

* Paper: C. Sakaridis, D. Dai, L. Van Gool, "Guided Curriculum Model Adaptation and
  Uncertainty-Aware Evaluation for Semantic Nighttime Image Segmentation", ICCV 2019.
  https://www.trace.ethz.ch/publications/2019/GCMA_UIoU/
* Licence: non-commercial research; download ``Dark_Zurich_train_anon.zip`` and
  ``Dark_Zurich_val_anon.zip`` from the page above (the test GT is held by the benchmark server).
* Layout (root = ``$DGSS_DATA/dark_zurich``)::

      rgb_anon/train/{day,twilight,night}/<seq>/<x>_rgb_anon.png   unlabelled, 1920×1080
      rgb_anon/val/night/<seq>/<x>_rgb_anon.png
      gt/val/night/<seq>/<x>_gt_labelTrainIds.png                  (also _gt_labelIds.png)
      rgb_anon/test/night/<seq>/<x>_rgb_anon.png                   unlabelled

* Counts: train day 3,041 / twilight 2,920 / night 2,416; val night 50; test night 151.
  ``times`` defaults to ("night",) -- the UDA papers adapt to the night train images only.
* Unlabelled samples (train, test) get an all-255 label and ``meta["unlabelled"] = True``.
* Config data strings select times of day like ACDC conditions: ``dark_zurich:val`` (night),
  ``dark_zurich:train:night``, ``dark_zurich:train:day+twilight+night``.
* Test scale: 960×540 (or 1920×1080).

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .base import DatasetError, Folder, SegFolderDataset, resolve_root
from .cityscapes import RAW_FORMAT
from .imageio import LabelJob, convert_label, run_jobs

TIMES = ("day", "twilight", "night")
IMG_SUFFIX = "_rgb_anon.png"
RAW_SUFFIX = "_gt_labelIds.png"
TRAIN_SUFFIX = "_gt_labelTrainIds.png"


class DarkZurichDataset(SegFolderDataset):
    """Dark Zurich (Sakaridis et al., ICCV 2019, https://www.trace.ethz.ch/publications/2019/GCMA_UIoU/;
    non-commercial research). ``train``/``test`` are unlabelled (all-255 labels, meta
    ``unlabelled``); ``val`` has 50 labelled night images. Test scale 960×540."""

    NAME = "dark_zurich"
    SPLITS = ("train", "val", "test")
    UNLABELLED_SPLITS = ("train", "test")  # refused as data.train (a labelled stream); fine as data.target
    DEFAULT_SPLIT = "val"
    VERIFY_SPLITS = ("train", "val")
    EXPECTED_COUNTS = {("train", "day"): 3041, ("train", "twilight"): 2920,
                       ("train", "night"): 2416, ("val", "night"): 50, ("test", "night"): 151}
    TEST_SCALE = (960, 540)
    TEST_SCALE_FULL = (1920, 1080)
    PREPARE = "python data_scripts/prepare_dark_zurich.py --root ROOT"
    SUBSET_KEYWORD = "times"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform=None, label_type: str = "auto", times: Sequence[str] = ("night",)) -> None:
        times = (times,) if isinstance(times, str) else tuple(times)
        split_name = self.normalize_split(split)
        allowed = TIMES if split_name == "train" else ("night",)
        bad = [t for t in times if t not in allowed]
        if bad or not times:
            raise DatasetError(f"dark_zurich/{split_name}: unknown times {bad or times}; "
                               f"this split has {allowed}")
        self.times = times
        super().__init__(root, split, transform, label_type)

    def folders(self, split: str) -> list[Folder]:
        out = []
        for time in self.times:
            images = f"rgb_anon/{split}/{time}"
            if split != "val":
                out.append(Folder(images, IMG_SUFFIX))
                continue
            gt = f"gt/{split}/{time}"
            suffix, fmt, exclude = self.pick_labels(gt, RAW_SUFFIX, RAW_FORMAT, TRAIN_SUFFIX)
            out.append(Folder(images, IMG_SUFFIX, gt, suffix, fmt, exclude))
        return out

    def expected_count(self) -> int | None:
        return sum(self.EXPECTED_COUNTS.get((self.split, t), 0) for t in self.times)


def prepare(root: str | os.PathLike | None = None, workers: int = 1,
            progress: bool = True) -> list[dict]:
    """Write missing val ``*_gt_labelTrainIds.png`` from ``*_gt_labelIds.png``."""
    root = resolve_root("dark_zurich", root)
    try:  # the official zip ships the trainId files: nothing to do then
        ready = DarkZurichDataset(root, "val", label_type="trainids")
        return [{"status": "skipped", "file": str(it.label)} for it in ready.items]
    except DatasetError:
        pass
    jobs = [LabelJob(it.label, Path(str(it.label)[: -len(RAW_SUFFIX)] + TRAIN_SUFFIX), RAW_FORMAT)
            for it in DarkZurichDataset(root, "val", label_type="raw").items]
    return run_jobs(convert_label, jobs, workers, desc="dark_zurich labelIds -> trainIds",
                    progress=progress)
