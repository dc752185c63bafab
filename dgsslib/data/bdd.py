"""BDD100K 10K semantic segmentation: a real-domain DGSS test set (GTAV -> BDD).

* Paper: F. Yu et al., "BDD100K: A Diverse Driving Dataset for Heterogeneous Multitask
  Learning", CVPR 2020. https://bdd-data.berkeley.edu , docs https://doc.bdd100k.com
* Licence: BDD100K licence (non-commercial research); register/log in at
  https://bdd-data.berkeley.edu/portal.html and download ``10K Images``
  (``bdd100k_images_10k.zip``) and ``Segmentation`` (``bdd100k_sem_seg_labels_trainval.zip``).
* Layout (root = ``$DGSS_DATA/bdd``, the unzipped ``bdd100k/`` folder)::

      images/10k/{train,val,test}/<name>.jpg             1280×720
      labels/sem_seg/masks/{train,val}/<name>.png        already trainIds (255 = ignore)

* 7,000 train / 1,000 val / 2,000 test (unlabelled) images. The DGSS papers test on val.
* Older releases (``bdd100k/seg/images/<split>/*.jpg``, ``seg/labels/<split>/*_train_id.png``)
  are converted to this layout by ``python data_scripts/prepare_bdd.py --root DIR``.
* Test scale: 1280×720.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .base import TRAIN_IDS, Folder, SegFolderDataset, resolve_root
from .imageio import run_jobs


class BDDDataset(SegFolderDataset):
    """BDD100K 10K sem_seg (Yu et al., CVPR 2020, https://bdd-data.berkeley.edu; BDD100K
    non-commercial licence). Masks are already trainIds. 1,000 val images; test 1280×720."""

    NAME = "bdd"
    SPLITS = ("train", "val", "test")
    DEFAULT_SPLIT = "val"
    VERIFY_SPLITS = ("train", "val")
    EXPECTED_COUNTS = {"train": 7000, "val": 1000, "test": 2000}
    TEST_SCALE = (1280, 720)
    PREPARE = "python data_scripts/prepare_bdd.py --root ROOT"

    def folders(self, split: str) -> list[Folder]:
        images = f"images/10k/{split}"
        if split == "test":
            return [Folder(images, ".jpg")]
        return [Folder(images, ".jpg", f"labels/sem_seg/masks/{split}", ".png", TRAIN_IDS)]


def _link_or_copy(job: tuple[Path, Path]) -> dict:
    src, dst = job
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return {"status": "skipped", "file": str(dst)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return {"status": "written", "file": str(dst)}


def prepare(root: str | os.PathLike | None = None, workers: int = 1,
            progress: bool = True) -> list[dict]:
    """Bring an old-release tree (``seg/images``, ``seg/labels/*_train_id.png``) into the
    10k layout (hard links, else copies). A tree already in the 10k layout needs nothing."""
    root = resolve_root("bdd", root)
    old = root / "seg"
    jobs: list[tuple[Path, Path]] = []
    if old.is_dir():
        for split in ("train", "val", "test"):
            for img in sorted((old / "images" / split).glob("*.jpg")):
                jobs.append((img, root / "images/10k" / split / img.name))
            for lbl in sorted((old / "labels" / split).glob("*_train_id.png")):
                name = lbl.name[: -len("_train_id.png")] + ".png"
                jobs.append((lbl, root / "labels/sem_seg/masks" / split / name))
    results = run_jobs(_link_or_copy, jobs, workers, desc="bdd old layout -> 10k layout",
                       progress=progress)
    BDDDataset(root, "val")  # the result must be a valid tree (raises DatasetError if not)
    return results
