"""Mapillary Vistas v1.2: a real-domain DGSS test set (GTAV -> Mapillary), worldwide street scenes.

* Paper: G. Neuhold et al., "The Mapillary Vistas Dataset for Semantic Understanding of Street
  Scenes", ICCV 2017. https://www.mapillary.com/dataset/vistas
* Licence: CC BY-NC-SA 4.0 (research); request the download at
  https://www.mapillary.com/dataset/vistas (form, link by e-mail): ``mapillary-vistas-dataset_public_v1.2.zip``.
* Layout (root = ``$DGSS_DATA/mapillary``)::

      config_v1.2.json                               66 labels with "readable" / "name"
      {training,validation}/images/<key>.jpg         varied sizes (mostly ~4000×3000)
      {training,validation}/v1.2/labels/<key>.png    8-bit palette png, index = label id 0..65
      testing/images/<key>.jpg                       no labels
      half/val_img/<key>.jpg, half/val_label/<key>.png   written by prepare (Rein protocol)

* 18,000 training / 2,000 validation / 5,000 testing images.
* The 66 labels map to the 19 Cityscapes trainIds by name (``trainid_for_name``): exact
  Cityscapes names directly; "trafficsign"/"front"/"back" -> traffic sign, "onrail" -> train,
  "cyclist"/"rider" -> rider, "pole"/"streetlight" -> pole, "curb"/"pedestrianarea" ->
  sidewalk, "crosswalkplain"/"parking"/"bikelane"/"servicelane"/"lanemarking" -> road, else 255.
* Rein evaluates on ``half_val``: validation halved (image bicubic, label nearest, trainIds),
  then test scale 1024×512.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .base import TRAIN_IDS, DatasetError, Folder, LabelFormat, SegFolderDataset, raw_ids, resolve_root
from .imageio import (image_size, is_valid_image, is_valid_png, read_image, read_label,
                      resize_array, run_jobs, write_jpg, write_png)
from .labels import CLASSES, IGNORE_INDEX

CONFIG = "config_v1.2.json"
_EXACT = {c.replace(" ", ""): i for i, c in enumerate(CLASSES)}  # "trafficlight" -> 6
_RULES: tuple[tuple[tuple[str, ...], str], ...] = (  # substring rules, in this order
    (("trafficsign", "front", "back"), "traffic sign"),
    (("onrail",), "train"),
    (("cyclist", "rider"), "rider"),
    (("pole", "streetlight"), "pole"),
    (("curb", "pedestrianarea"), "sidewalk"),
    (("crosswalkplain", "parking", "bikelane", "servicelane", "lanemarking"), "road"),
)


def normalize_name(readable: str) -> str:
    """'Traffic Sign (Back)' -> 'trafficsign(back)': lower-case, spaces and '-' removed."""
    return readable.lower().replace(" ", "").replace("-", "")


def trainid_for_name(readable: str) -> int:
    """The Cityscapes trainId of a Mapillary label's readable name (255 if none)."""
    name = normalize_name(readable)
    if name in _EXACT:
        return _EXACT[name]
    for keys, target in _RULES:
        if any(k in name for k in keys):
            return CLASSES.index(target)
    return IGNORE_INDEX


def load_config(root: Path) -> list[dict]:
    """The ``labels`` list of ``config_v1.2.json`` (index = label id)."""
    path = root / CONFIG
    if not path.is_file():
        raise DatasetError(f"mapillary: {path} not found; it ships in the v1.2 zip next to "
                           "training/ and validation/ (see data_scripts/README.md).")
    try:
        labels = json.loads(path.read_text())["labels"]
        [lab["readable"] for lab in labels]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"mapillary: {path} is not a Vistas config (needs labels[].readable): {e}") from e
    return labels


def id_map_from_config(labels: list[dict]) -> dict[int, int]:
    """{Mapillary label id: trainId} for the ids that map to one of the 19 classes."""
    return {i: t for i, lab in enumerate(labels) if (t := trainid_for_name(lab["readable"])) != IGNORE_INDEX}


def raw_format(root: Path) -> LabelFormat:
    labels = load_config(root)
    return raw_ids(id_map_from_config(labels), range(len(labels)),
                   f"Mapillary v1.2 label ids 0..{len(labels) - 1} ({CONFIG})")


class MapillaryDataset(SegFolderDataset):
    """Mapillary Vistas v1.2 (Neuhold et al., ICCV 2017, https://www.mapillary.com/dataset/vistas;
    CC BY-NC-SA 4.0). 66 labels mapped to 19 by name; ``half_val`` is the Rein protocol
    (prepared). 2,000 validation images; test scale 1024×512 after halving."""

    NAME = "mapillary"
    SPLITS = ("training", "validation", "testing", "half_val")
    SPLIT_ALIASES = {"train": "training", "val": "validation", "test": "testing"}
    DEFAULT_SPLIT = "validation"
    VERIFY_SPLITS = ("training", "validation", "half_val")
    EXPECTED_COUNTS = {"training": 18000, "validation": 2000, "testing": 5000, "half_val": 2000}
    TEST_SCALE = (1024, 512)
    PREPARE = "python data_scripts/prepare_mapillary.py --root ROOT"

    def folders(self, split: str) -> list[Folder]:
        if split == "half_val":
            return [Folder("half/val_img", ".jpg", "half/val_label", ".png", TRAIN_IDS)]
        if split == "testing":
            return [Folder("testing/images", ".jpg")]
        return [Folder(f"{split}/images", ".jpg", f"{split}/v1.2/labels", ".png", raw_format(self.root))]


def _half_job(job: tuple[Path, Path, Path, Path, LabelFormat]) -> dict:
    img, lbl, out_img, out_lbl, fmt = job
    w, h = image_size(img)
    half = (max(1, w // 2), max(1, h // 2))
    if is_valid_image(out_img, half) and is_valid_png(out_lbl, half):
        return {"status": "skipped", "file": str(out_lbl)}
    image = read_image(img)
    label = fmt.to_train_ids(read_label(lbl), lbl)
    if label.shape != image.shape[:2]:
        raise DatasetError(f"mapillary: image {img} is {w}x{h} but label {lbl} is "
                           f"{label.shape[1]}x{label.shape[0]}; re-extract the pair.")
    write_jpg(out_img, resize_array(image, half, nearest=False), quality=100)
    write_png(out_lbl, resize_array(label, half, nearest=True))
    return {"status": "written", "file": str(out_lbl)}


def prepare(root: str | os.PathLike | None = None, workers: int = 1,
            progress: bool = True) -> list[dict]:
    """Write ``half/val_img`` (bicubic half size) and ``half/val_label`` (nearest, trainIds)."""
    root = resolve_root("mapillary", root)
    ds = MapillaryDataset(root, "validation")
    jobs = [(it.image, it.label, root / "half/val_img" / it.image.name,
             root / "half/val_label" / (it.image.stem + ".png"), it.fmt) for it in ds.items]
    return run_jobs(_half_job, jobs, workers, desc="mapillary validation -> half", progress=progress)
