"""Cityscapes (fine annotations): the real-domain target of every GTAV -> X DGSS benchmark.

* Paper: M. Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding",
  CVPR 2016. https://www.cityscapes-dataset.com
* Licence: free for non-commercial research; registration required. Download
  ``leftImg8bit_trainvaltest.zip`` (11 GB) and ``gtFine_trainvaltest.zip`` (241 MB) from
  https://www.cityscapes-dataset.com/downloads/ after logging in.
* Layout (root = ``$DGSS_DATA/cityscapes``)::

      leftImg8bit/{train,val,test}/<city>/<x>_leftImg8bit.png
      gtFine/{train,val,test}/<city>/<x>_gtFine_labelIds.png        (raw ids 0..33)
      gtFine/{train,val}/<city>/<x>_gtFine_labelTrainIds.png        (written by prepare)

* 2,975 train / 500 val / 1,525 test images, 2048×1024. The test split's gtFine files are
  dummies, so ``test`` is served unlabelled.
* Test scale: **2048×1024** (``TEST_SCALE``, the kit's default): the Rein++ paper (Sec. VI-A3)
  and the tables the kit compares with. The Rein repo's configs used 1024×512
  (``TEST_SCALE_HALF``; ~2 mIoU lower, Rein issue #68); select it with
  ``--set 'eval.test_scales.cityscapes=[1024,512]'`` (see ``dgsslib/data/protocol.py``).
* Unpacking: both zips ship the same README/license files: unzip the second with ``-n``.
* Prepare: ``python data_scripts/prepare_cityscapes.py --root DIR`` writes the
  ``*_gtFine_labelTrainIds.png`` files (resumable). Labels are read from labelIds when the
  trainId files are absent.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import Folder, SegFolderDataset, raw_ids, resolve_root
from .imageio import LabelJob, convert_label, run_jobs
from .labels import CITYSCAPES_ID_TO_TRAINID

IMG_SUFFIX = "_leftImg8bit.png"
RAW_SUFFIX = "_gtFine_labelIds.png"
TRAIN_SUFFIX = "_gtFine_labelTrainIds.png"
RAW_FORMAT = raw_ids(CITYSCAPES_ID_TO_TRAINID, range(34), "Cityscapes labelIds 0..33 (or 255)")


class CityscapesDataset(SegFolderDataset):
    """Cityscapes fine (Cordts et al., CVPR 2016, https://www.cityscapes-dataset.com;
    non-commercial licence, registration required). Raw labelIds are mapped with
    ``CITYSCAPES_ID_TO_TRAINID``; prepared ``*_gtFine_labelTrainIds.png`` files are used when
    present (``label_type='auto'``). Test scale 2048×1024 (Rein++; the Rein repo: 1024×512)."""

    NAME = "cityscapes"
    SPLITS = ("train", "val", "test")
    DEFAULT_SPLIT = "val"
    VERIFY_SPLITS = ("train", "val")
    EXPECTED_COUNTS = {"train": 2975, "val": 500, "test": 1525}
    TEST_SCALE = (2048, 1024)  # Rein++ protocol (the kit's choice)
    TEST_SCALE_HALF = (1024, 512)  # the Rein repo's configs
    PREPARE = "python data_scripts/prepare_cityscapes.py --root ROOT"

    def folders(self, split: str) -> list[Folder]:
        images = f"leftImg8bit/{split}"
        if split == "test":
            return [Folder(images, IMG_SUFFIX)]
        suffix, fmt, exclude = self.pick_labels(f"gtFine/{split}", RAW_SUFFIX, RAW_FORMAT, TRAIN_SUFFIX)
        return [Folder(images, IMG_SUFFIX, f"gtFine/{split}", suffix, fmt, exclude)]


def prepare(root: str | os.PathLike | None = None, workers: int = 1, progress: bool = True,
            splits: tuple[str, ...] = ("train", "val")) -> list[dict]:
    """Write ``*_gtFine_labelTrainIds.png`` next to every ``*_gtFine_labelIds.png``."""
    root = resolve_root("cityscapes", root)
    jobs = []
    for split in splits:
        # the dataset constructor checks the layout and the image/label pairing first
        ds = CityscapesDataset(root, split, label_type="raw")
        for item in ds.items:
            dst = Path(str(item.label)[: -len(RAW_SUFFIX)] + TRAIN_SUFFIX)
            jobs.append(LabelJob(item.label, dst, RAW_FORMAT))
    return run_jobs(convert_label, jobs, workers, desc="cityscapes labelIds -> trainIds",
                    progress=progress)
