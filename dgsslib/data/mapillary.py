"""Mapillary Vistas v1.2 labels: a real-domain DGSS test set (GTAV -> Mapillary), worldwide street scenes.

* Paper: G. Neuhold et al., "The Mapillary Vistas Dataset for Semantic Understanding of Street
  Scenes", ICCV 2017. https://www.mapillary.com/dataset/vistas
* Licence: CC BY-NC-SA 4.0 (research); request the download at
  https://www.mapillary.com/dataset/vistas (form, link by e-mail).
* Two official packages hold the 66-label v1.2 annotation; both are accepted
  (``layout="auto"`` finds which one is unpacked under the root)::

      v1.2 package  mapillary-vistas-dataset_public_v1.2.zip      layout "v1.2"
          config.json                                  66 labels ("readable", "name", ...)
          {training,validation}/images/<key>.jpg       varied sizes (mostly ~4000×3000)
          {training,validation}/labels/<key>.png       8-bit palette png, index = label id 0..65
      v2.0 package  mapillary-vistas-dataset_public_v2.0.zip      layout "v2.0"
          config_v1.2.json  (and config_v2.0.json: 124 labels, not used)
          {training,validation}/images/<key>.jpg
          {training,validation}/v1.2/labels/<key>.png  (the v1.2 labels; v2.0/labels unused)
      both:  testing/images/<key>.jpg (no labels);
             half/val_img/<key>.jpg, half/val_label/<key>.png   written by prepare (Rein's half_val)

  If both packages are unpacked into one root, ``auto`` uses the v1.2 package's files.
* 18,000 training / 2,000 validation / 5,000 testing images.
* The 66 labels map to the 19 Cityscapes trainIds by name (``trainid_for_name``): exact
  Cityscapes names directly; "trafficsign"/"front"/"back" -> traffic sign, "onrail" -> train,
  "cyclist"/"rider" -> rider, "pole"/"streetlight" -> pole, "curb"/"pedestrianarea" ->
  sidewalk, "crosswalkplain"/"parking"/"bikelane"/"servicelane"/"lanemarking" -> road, else
  255. This is **Rein's protocol** (``tools/convert_datasets/mapillary2cityscape.py``, from
  openseg); HRDA/DAFormer-style 66->19 tables differ on some ids (an audit counted 11), so
  numbers from those codebases are not directly comparable.
* Rein evaluates on ``half_val``: validation halved offline (image bicubic, label nearest,
  trainIds; image JPEG quality 75 = Pillow's default, as Rein's ``mapillary_resize.py``), then
  test scale 1024×512 (``TEST_SCALE``; short side ≈ 512). The paper profile evaluates
  ``mapillary:half_val``.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .base import TRAIN_IDS, DatasetError, Folder, LabelFormat, SegFolderDataset, raw_ids, resolve_root
from .imageio import (image_size, is_valid_image, is_valid_png, read_image, read_label,
                      resize_array, run_jobs, write_jpg, write_png)
from .labels import CLASSES, IGNORE_INDEX

# layout name -> (config file, label dir of a split); checked in this order by layout="auto"
LAYOUTS = {"v1.2": ("config.json", "{split}/labels"), "v2.0": ("config_v1.2.json", "{split}/v1.2/labels")}
HALF_SETTINGS = "half/prepare.json"  # how half/ was written (a different setting rewrites it)
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


def detect_layout(root: Path, layout: str = "auto") -> str:
    """'v1.2' (the v1.2 zip: config.json, {split}/labels) or 'v2.0' (the v2.0 zip:
    config_v1.2.json, {split}/v1.2/labels); ``auto``: the first whose config file exists."""
    if layout != "auto":
        if layout not in LAYOUTS:
            raise DatasetError(f"mapillary: layout must be 'auto', 'v1.2' or 'v2.0', got {layout!r}")
        return layout
    for name, (config, _) in LAYOUTS.items():
        if (root / config).is_file():
            return name
    raise DatasetError(
        f"mapillary: neither config.json (the v1.2 package, mapillary-vistas-dataset_public_v1.2.zip) "
        f"nor config_v1.2.json (the v2.0 package) found in {root}; unzip either package so that "
        "this file sits next to training/ and validation/ (see data_scripts/README.md, 'mapillary').")


def load_config(root: Path, layout: str = "auto") -> list[dict]:
    """The ``labels`` list of the v1.2 config (index = label id)."""
    path = root / LAYOUTS[detect_layout(root, layout)][0]
    if not path.is_file():
        raise DatasetError(f"mapillary: {path} not found; layout {layout!r} needs it next to "
                           "training/ and validation/ (see data_scripts/README.md, 'mapillary').")
    try:
        labels = json.loads(path.read_text())["labels"]
        [lab["readable"] for lab in labels]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"mapillary: {path} is not a Vistas config (needs labels[].readable): {e}") from e
    return labels


def id_map_from_config(labels: list[dict]) -> dict[int, int]:
    """{Mapillary label id: trainId} for the ids that map to one of the 19 classes."""
    return {i: t for i, lab in enumerate(labels) if (t := trainid_for_name(lab["readable"])) != IGNORE_INDEX}


def raw_format(root: Path, layout: str = "auto") -> LabelFormat:
    layout = detect_layout(root, layout)
    labels = load_config(root, layout)
    return raw_ids(id_map_from_config(labels), range(len(labels)),
                   f"Mapillary v1.2 label ids 0..{len(labels) - 1} ({LAYOUTS[layout][0]})")


class MapillaryDataset(SegFolderDataset):
    """Mapillary Vistas v1.2 (Neuhold et al., ICCV 2017, https://www.mapillary.com/dataset/vistas;
    CC BY-NC-SA 4.0). 66 labels mapped to 19 by name (Rein's map); ``half_val`` is the Rein
    protocol (prepared). 2,000 validation images; test scale 1024×512 after halving.
    ``layout``: 'auto' | 'v1.2' (v1.2 zip: ``config.json``, ``{split}/labels``) | 'v2.0'
    (v2.0 zip: ``config_v1.2.json``, ``{split}/v1.2/labels``)."""

    NAME = "mapillary"
    SPLITS = ("training", "validation", "testing", "half_val")
    SPLIT_ALIASES = {"train": "training", "val": "validation", "test": "testing"}
    DEFAULT_SPLIT = "validation"
    VERIFY_SPLITS = ("training", "validation", "half_val")
    EXPECTED_COUNTS = {"training": 18000, "validation": 2000, "testing": 5000, "half_val": 2000}
    TEST_SCALE = (1024, 512)
    PREPARE = "python data_scripts/prepare_mapillary.py --root ROOT"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform=None, label_type: str = "auto", layout: str = "auto") -> None:
        self.layout = layout
        super().__init__(root, split, transform, label_type)

    def folders(self, split: str) -> list[Folder]:
        if split == "half_val":
            return [Folder("half/val_img", ".jpg", "half/val_label", ".png", TRAIN_IDS)]
        if split == "testing":
            return [Folder("testing/images", ".jpg")]
        self.layout = detect_layout(self.root, self.layout)
        labels = LAYOUTS[self.layout][1].format(split=split)
        return [Folder(f"{split}/images", ".jpg", labels, ".png", raw_format(self.root, self.layout))]


def _half_job(job: tuple[Path, Path, Path, Path, LabelFormat, int, float | None]) -> dict:
    img, lbl, out_img, out_lbl, fmt, quality, since = job
    w, h = image_size(img)
    half = (max(1, w // 2), max(1, h // 2))
    fresh = since is None or all(p.is_file() and p.stat().st_mtime >= since for p in (out_img, out_lbl))
    if fresh and is_valid_image(out_img, half) and is_valid_png(out_lbl, half):
        return {"status": "skipped", "file": str(out_lbl)}
    image = read_image(img)
    label = fmt.to_train_ids(read_label(lbl), lbl)
    if label.shape != image.shape[:2]:
        raise DatasetError(f"mapillary: image {img} is {w}x{h} but label {lbl} is "
                           f"{label.shape[1]}x{label.shape[0]}; re-extract the pair.")
    write_jpg(out_img, resize_array(image, half, nearest=False), quality=quality)
    write_png(out_lbl, resize_array(label, half, nearest=True))
    return {"status": "written", "file": str(out_lbl)}


def prepare(root: str | os.PathLike | None = None, workers: int = 1, progress: bool = True,
            jpeg_quality: int = 75, layout: str = "auto") -> list[dict]:
    """Write ``half/val_img`` (bicubic half size, JPEG ``jpeg_quality``: 75 = Pillow's default,
    what Rein's ``mapillary_resize.py`` wrote) and ``half/val_label`` (nearest, trainIds).

    ``half/prepare.json`` records the settings. Outputs of other (or unrecorded) settings are
    all rewritten; an interrupted rewrite resumes (files older than its start are redone)."""
    if not 1 <= int(jpeg_quality) <= 100:
        raise DatasetError(f"mapillary: --jpeg-quality must be 1..100, got {jpeg_quality}")
    root = resolve_root("mapillary", root)
    ds = MapillaryDataset(root, "validation", layout=layout)
    settings = {"jpeg_quality": int(jpeg_quality), "image": "bicubic", "label": "nearest"}
    marker = root / HALF_SETTINGS
    try:
        state = json.loads(marker.read_text())
    except (OSError, ValueError):
        state = None
    if state is not None and state.get("settings") == settings:
        since = state.get("since")  # None: the last run with these settings completed
    elif next((root / "half/val_img").glob("*.jpg"), None) is not None:
        since = time.time()  # outputs of other or unknown settings: redo every file
    else:
        since = None
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"settings": settings, "since": since}))
    jobs = [(it.image, it.label, root / "half/val_img" / it.image.name,
             root / "half/val_label" / (it.image.stem + ".png"), it.fmt, int(jpeg_quality), since)
            for it in ds.items]
    results = run_jobs(_half_job, jobs, workers, desc="mapillary validation -> half", progress=progress)
    if not any(r["status"] == "error" for r in results):
        marker.write_text(json.dumps({"settings": settings, "since": None}))
    return results
