"""GTAV ("Playing for Data"): the synthetic source domain of the DGSS benchmarks.

* Paper: S. R. Richter, V. Vineet, S. Roth, V. Koltun, "Playing for Data: Ground Truth from
  Computer Games", ECCV 2016. https://download.visinf.tu-darmstadt.de/data/from_games/
* Licence: research use; images come from a commercial game (see the site's notes). No
  registration: ten parts ``01_images.zip``..``10_images.zip`` and ``01_labels.zip``..
  ``10_labels.zip``, optional ``read_mapping.zip`` / ``split.mat``.
* Layout (root = ``$DGSS_DATA/gtav``)::

      images/<id>.png                     24,966 RGB frames, 1914×1052 (a few differ)
      labels/<id>.png                     palette png, Cityscapes label ids 0..33
      labels/<id>_labelTrainIds.png       written by prepare
      sample_class_stats.json             written by prepare (rare class sampling)
      splits/{train,val,test}.txt         optional official split, one id per line

* Splits: ``train`` (alias ``all``): all 24,966 images -- what Rein and the DGSS papers train
  on. ``official_train``/``official_val``/``official_test`` (12,403 / 6,382 / 6,181): the
  official split, if ``splits/{train,val,test}.txt`` exist (``prepare_gtav.py --split-mat``).
* Known issue: some images differ in size from their labels. Handled in two places, never
  silently: ``prepare_gtav.py`` writes those trainId labels resized to their image (nearest
  neighbour) and lists each pair (``--strict-sizes``: report them as errors instead, exit 1);
  the loader (``size_mismatch="resize_label"``, the default here) resizes an unprepared
  mismatched label the same way with a warning naming the file, so a 40k-step run never stops
  on one; ``size_mismatch="error"`` raises instead. ``verify.py gtav`` lists them as WARN.
  (mmseg/Rein hide the mismatch: image and label are resized separately to the same scale.)
* Test scale (GTAV val in the Rein configs): 1280×720.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import DatasetError, Folder, SegFolderDataset, raw_ids, resolve_root
from .class_stats import write_class_stats
from .imageio import LabelJob, convert_label, image_size, run_jobs
from .labels import GTAV_ID_TO_TRAINID

RAW_SUFFIX = ".png"
TRAIN_SUFFIX = "_labelTrainIds.png"
RAW_FORMAT = raw_ids(GTAV_ID_TO_TRAINID, range(34), "GTAV/Cityscapes label ids 0..33 (or 255)")


class GTAVDataset(SegFolderDataset):
    """GTAV (Richter et al., ECCV 2016, https://download.visinf.tu-darmstadt.de/data/from_games/;
    research use). Labels are Cityscapes ids mapped with ``GTAV_ID_TO_TRAINID``, or prepared
    ``*_labelTrainIds.png``. 24,966 images; test scale 1280×720."""

    NAME = "gtav"
    SPLITS = ("train", "official_train", "official_val", "official_test")
    SPLIT_ALIASES = {"all": "train"}
    DEFAULT_SPLIT = "train"
    VERIFY_SPLITS = ("train",)
    EXPECTED_COUNTS = {"train": 24966, "official_train": 12403, "official_val": 6382,
                       "official_test": 6181}
    TEST_SCALE = (1280, 720)
    PREPARE = "python data_scripts/prepare_gtav.py --root ROOT"
    SIZE_MISMATCH = "resize_label"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform=None, label_type: str = "auto", size_mismatch: str = "resize_label") -> None:
        self.size_mismatch = size_mismatch
        super().__init__(root, split, transform, label_type)
        if self.split.startswith("official_"):
            self.items = self._select(self.items)

    def folders(self, split: str) -> list[Folder]:
        suffix, fmt, exclude = self.pick_labels("labels", RAW_SUFFIX, RAW_FORMAT, TRAIN_SUFFIX)
        return [Folder("images", ".png", "labels", suffix, fmt, exclude)]

    def _select(self, items: list) -> list:
        path = self.root / "splits" / f"{self.split[len('official_'):]}.txt"
        if not path.is_file():
            raise DatasetError(
                f"gtav: split {self.split!r} needs {path} (one image id per line); create it from "
                "the official split.mat with `python data_scripts/prepare_gtav.py --root ROOT "
                "--split-mat split.mat`, or use split='train' (all images).")
        wanted = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        by_stem = {it.image.stem: it for it in items}
        missing = [s for s in wanted if s not in by_stem]
        if missing:
            raise DatasetError(f"gtav: {len(missing)} ids listed in {path} have no image in "
                               f"{self.root / 'images'} (first: {missing[:5]}); re-extract the "
                               "image/label zips or fix the split file.")
        return [by_stem[s] for s in wanted]

    def _size_fix(self) -> str:
        return (" (a known GTAV issue: `python data_scripts/prepare_gtav.py --root ROOT` writes "
                "the trainId label resized to its image, nearest neighbour)")


def prepare(root: str | os.PathLike | None = None, workers: int = 1, progress: bool = True,
            fix_sizes: bool = True, split_mat: str | os.PathLike | None = None) -> list[dict]:
    """Write ``labels/*_labelTrainIds.png`` and ``sample_class_stats.json``.

    A label whose size differs from its image is written resized to the image (nearest) and
    listed as a NOTE; ``fix_sizes=False`` (``--strict-sizes``) reports it as an error instead
    (then no stats file is written)."""
    root = resolve_root("gtav", root)
    if split_mat is not None:
        write_split_files(root, split_mat)
    ds = GTAVDataset(root, "train", label_type="raw", size_mismatch="error")
    jobs, results = [], []
    for item in ds.items:
        img_wh, lbl_wh = image_size(item.image), image_size(item.label)
        if img_wh != lbl_wh and not fix_sizes:
            results.append({"status": "error", "error": str(ds._size_error(item, img_wh, lbl_wh))})
            continue
        dst = item.label.with_name(item.label.stem + TRAIN_SUFFIX)
        note = (f"{item.label.name}: label {lbl_wh[0]}x{lbl_wh[1]} resized to its image "
                f"{img_wh[0]}x{img_wh[1]} (nearest)") if img_wh != lbl_wh else ""
        jobs.append(LabelJob(item.label, dst, RAW_FORMAT, size=img_wh, stats=True, note=note))
    results += run_jobs(convert_label, jobs, workers, desc="gtav ids -> trainIds", progress=progress)
    write_class_stats(root, results)
    return results


def write_split_files(root: Path, split_mat: str | os.PathLike) -> None:
    """Official ``split.mat`` (trainIds/valIds/testIds, 1-based ints) -> ``splits/*.txt``."""
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise DatasetError("--split-mat needs scipy (pip install scipy)") from e
    mat = loadmat(split_mat)
    (root / "splits").mkdir(exist_ok=True)
    for split, key in (("train", "trainIds"), ("val", "valIds"), ("test", "testIds")):
        ids = [f"{int(i):05d}" for i in mat[key].ravel()]
        tmp = root / "splits" / f".{split}.txt.tmp"
        tmp.write_text("\n".join(ids) + "\n")
        os.replace(tmp, root / "splits" / f"{split}.txt")
