"""SYNTHIA RAND-CITYSCAPES: the second synthetic source domain (SYNTHIA -> X protocols).

* Paper: G. Ros et al., "The SYNTHIA Dataset: A Large Collection of Synthetic Images for
  Semantic Segmentation of Urban Scenes", CVPR 2016. https://synthia-dataset.net
* Licence: CC BY-NC-SA 3.0 (non-commercial). Download ``SYNTHIA-RAND-CITYSCAPES`` from
  https://synthia-dataset.net/downloads/ (form, no account).
* Layout (root = ``$DGSS_DATA/synthia``)::

      RGB/<id>.png                        9,400 frames, 1280×760
      GT/LABELS/<id>.png                  16-bit png, class id 0..22 in the FIRST channel
      GT/LABELS/<id>_labelTrainIds.png    written by prepare
      sample_class_stats.json             written by prepare (rare class sampling)

* The 16-bit labels must be read keeping 16 bits (Pillow truncates 16-bit RGB to 8 bits and
  every id would read as 0); ``imageio.read_label`` decodes them with torchvision.
* Synthia has no terrain/truck/train: the 16-class protocol (``labels.SYNTHIA_16_CLASSES``).
  When ``data.train`` is Synthia, every eval entry in ``results.json`` reports ``miou16`` (the
  16 classes) beside the 19-class ``miou`` (``eval.class_subset``, see ``protocol.py``).
* Broken files after unpacking the ``.rar``: ``verify.py synthia`` (it decodes every file)
  names them. Remedy: re-extract just those files (``unrar x -o+ SYNTHIA_RAND_CITYSCAPES.rar
  '*/GT/LABELS/0001234.png' DIR`` or ``7z x ... -aoa``); if the archive copy itself is broken,
  list the ids, one per line, in ``<root>/exclude.txt``: those images are left out, and said
  so (``len(ds)``, ``ds.excluded``, a WARN line in verify) -- never silently.
* One split, ``train`` (alias ``all``): all 9,400 images are training data.
* Test scale (Synthia itself): 1280×760.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os

from .base import DatasetError, Folder, SegFolderDataset, raw_ids, resolve_root
from .class_stats import write_class_stats
from .imageio import LabelJob, convert_label, run_jobs
from .labels import SYNTHIA_ID_TO_TRAINID

RAW_SUFFIX = ".png"
TRAIN_SUFFIX = "_labelTrainIds.png"
RAW_FORMAT = raw_ids(SYNTHIA_ID_TO_TRAINID, range(23),
                     "Synthia class ids 0..22 in channel 0 of the 16-bit GT/LABELS png", channel=0)


class SynthiaDataset(SegFolderDataset):
    """SYNTHIA RAND-CITYSCAPES (Ros et al., CVPR 2016, https://synthia-dataset.net;
    CC BY-NC-SA 3.0). Channel 0 of the 16-bit labels mapped with ``SYNTHIA_ID_TO_TRAINID``,
    or prepared ``*_labelTrainIds.png``. 9,400 images; test scale 1280×760."""

    NAME = "synthia"
    SPLITS = ("train",)
    SPLIT_ALIASES = {"all": "train"}
    DEFAULT_SPLIT = "train"
    VERIFY_SPLITS = ("train",)
    EXPECTED_COUNTS = {"train": 9400}
    TEST_SCALE = (1280, 760)
    PREPARE = "python data_scripts/prepare_synthia.py --root ROOT"
    EXCLUDE_FILE = "exclude.txt"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform=None, label_type: str = "auto") -> None:
        super().__init__(root, split, transform, label_type)
        path = self.root / self.EXCLUDE_FILE
        ids = {ln.strip() for ln in path.read_text().splitlines() if ln.strip()} if path.is_file() else set()
        unknown = sorted(ids - {it.image.stem for it in self.items})
        if unknown:
            raise DatasetError(f"synthia: {path} lists ids with no image in RGB/ (first: {unknown[:5]}); "
                               "fix the file (one image id per line, e.g. 0001234)")
        self.excluded = sorted(it.name for it in self.items if it.image.stem in ids)
        self.items = [it for it in self.items if it.image.stem not in ids]

    def folders(self, split: str) -> list[Folder]:
        suffix, fmt, exclude = self.pick_labels("GT/LABELS", RAW_SUFFIX, RAW_FORMAT, TRAIN_SUFFIX)
        return [Folder("RGB", ".png", "GT/LABELS", suffix, fmt, exclude)]


def prepare(root: str | os.PathLike | None = None, workers: int = 1,
            progress: bool = True) -> list[dict]:
    """Write ``GT/LABELS/*_labelTrainIds.png`` (8-bit) and ``sample_class_stats.json``."""
    root = resolve_root("synthia", root)
    ds = SynthiaDataset(root, "train", label_type="raw")
    jobs = [LabelJob(it.label, it.label.with_name(it.label.stem + TRAIN_SUFFIX), RAW_FORMAT,
                     stats=True) for it in ds.items]
    results = run_jobs(convert_label, jobs, workers, desc="synthia ids -> trainIds", progress=progress)
    write_class_stats(root, results)
    return results
