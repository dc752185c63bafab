"""``SegFolderDataset``: the folder-pairing segmentation dataset every DGSS dataset builds on.

A dataset module only declares *where* its files live (``folders(split)`` -> ``Folder``
records: image dir + suffix, label dir + suffix, ``LabelFormat``). This module does the rest,
identically for all seven datasets:

* resolve the root (``root=`` argument, else ``$DGSS_DATA/<name>``, else ``./data/<name>``);
* pair every image with its label by relative path; an image without a label or a label
  without an image is an error naming both files -- **nothing is skipped silently**;
* read a sample: decode the image (corrupt/truncated -> error naming the file), read the label,
  check the sizes agree (``SIZE_MISMATCH``: an error, or for GTAV the label resized to the image,
  nearest, with a warning naming the file), check every label value is a known raw id (or a
  trainId 0..18 / 255) and map raw ids to trainIds.

Every failure raises ``DatasetError`` (a ``ValueError``) whose message names the file and the
fix. Sample format (shared with the procedural benchmark)::

    {"image": uint8 3×H×W RGB tensor, "label": int64 H×W trainIds (255 = ignore),
     "meta": {"dataset": name, "name": path relative to root, "index": i}}

Unlabelled samples (Dark Zurich train, test splits) carry an all-255 label and
``meta["unlabelled"] = True``. Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from .imageio import ImageReadError, image_size, read_image, read_label, resize_array
from .labels import IGNORE_INDEX, NUM_CLASSES, make_lut

DATA_ENV = "DGSS_DATA"
README = "data_scripts/README.md"


class DatasetError(ValueError):
    """A dataset on disk is missing, mis-laid out, unpaired, or holds a bad file."""


class LayoutError(DatasetError):
    """An expected directory is missing. ``split_absent``: the split's image dir itself."""

    def __init__(self, message: str, split_absent: bool = False) -> None:
        super().__init__(message)
        self.split_absent = split_absent


def default_root(name: str) -> Path:
    """``$DGSS_DATA/<name>`` if the variable is set, else ``./data/<name>``."""
    base = os.environ.get(DATA_ENV)
    return Path(base) / name if base else Path("data") / name


def resolve_root(name: str, root: str | os.PathLike | None) -> Path:
    """The dataset root, which must exist; the error says how to point at it."""
    path = Path(root) if root is not None else default_root(name)
    if not path.is_dir():
        how = ("passed as root= / --root" if root is not None else
               f"from ${DATA_ENV}/{name}" if os.environ.get(DATA_ENV) else
               f"default ./data/{name}; set ${DATA_ENV} to the folder holding '{name}/'")
        raise DatasetError(
            f"{name}: dataset root {path} does not exist ({how}). Download and unpack it as "
            f"described in {README} (section '{name}'), then pass root=... (--root DIR) or "
            f"export {DATA_ENV}=<dir containing {name}/>.")
    return path


def describe_missing(path: Path, limit: int = 15) -> str:
    """'<path> not found; <nearest existing parent> contains: [...]' for layout errors."""
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    try:
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in parent.iterdir())
    except OSError:
        found = []
    shown = ", ".join(found[:limit]) + (f", ... ({len(found)} entries)" if len(found) > limit else "")
    return f"expected directory {path} is missing; {parent} contains: [{shown or 'nothing'}]"


# --------------------------------------------------------------------------- label formats
@dataclass(frozen=True)
class LabelFormat:
    """How to turn a label file's values into trainIds.

    ``id_map`` None means the file already holds trainIds. ``known_ids`` are the values that
    may legally appear (raw ids of the dataset's label set, plus 255); anything else is an
    error listing the bad ids -- e.g. a ``*_color.png`` or a label of another dataset.
    """

    id_map: Mapping[int, int] | None
    known_ids: frozenset[int]
    description: str
    channel: int | None = None

    def to_train_ids(self, raw: np.ndarray, path: str | os.PathLike) -> np.ndarray:
        counts = np.bincount(raw.ravel().astype(np.int64), minlength=256)
        present = np.flatnonzero(counts)
        bad = [int(v) for v in present if int(v) not in self.known_ids]
        if bad:
            shown = ", ".join(f"{v} ({counts[v]} px)" for v in bad[:20])
            raise DatasetError(
                f"label {path} contains unknown ids [{shown}]; expected {self.description}. "
                "Wrong file (a *_color.png? another dataset's label?) or a corrupt/partial "
                "conversion: re-extract it or re-run the prepare script.")
        if self.id_map is None:
            return raw.astype(np.uint8, copy=False)
        size = max(256, int(present[-1]) + 1) if present.size else 256
        return make_lut(dict(self.id_map), size)[raw]


TRAIN_IDS = LabelFormat(None, frozenset(range(NUM_CLASSES)) | {IGNORE_INDEX},
                        f"trainIds 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}")


def raw_ids(id_map: Mapping[int, int], known: Iterable[int], description: str,
            channel: int | None = None) -> LabelFormat:
    """A raw-id format; 255 is always accepted as ignore."""
    return LabelFormat(dict(id_map), frozenset(known) | {IGNORE_INDEX}, description, channel)


@dataclass(frozen=True)
class Folder:
    """Images ``<images>/**/<key><image_suffix>`` paired with ``<labels>/**/<key><label_suffix>``."""

    images: str
    image_suffix: str
    labels: str | None = None
    label_suffix: str | None = None
    label_format: LabelFormat | None = None
    exclude_labels: tuple[str, ...] = ()  # label-dir files with these endings are not labels


@dataclass(frozen=True)
class Item:
    image: Path
    label: Path | None
    fmt: LabelFormat | None
    name: str


def list_files(directory: Path, suffix: str, exclude: Sequence[str] = ()) -> dict[str, Path]:
    """{relative path without ``suffix``: path} for files under ``directory`` ending in suffix."""
    out = {}
    for p in directory.rglob(f"*{suffix}"):
        rel = p.relative_to(directory).as_posix()
        if p.is_file() and not any(rel.endswith(e) for e in exclude) and not p.name.startswith("."):
            out[rel[: -len(suffix)]] = p
    return out


# --------------------------------------------------------------------------- the dataset
class SegFolderDataset(Dataset):
    """Base class; subclasses set the class attributes and implement ``folders(split)``."""

    NAME: ClassVar[str] = ""
    SPLITS: ClassVar[tuple[str, ...]] = ()
    SPLIT_ALIASES: ClassVar[dict[str, str]] = {}
    DEFAULT_SPLIT: ClassVar[str] = "val"
    VERIFY_SPLITS: ClassVar[tuple[str, ...]] = ()
    EXPECTED_COUNTS: ClassVar[dict[Any, int]] = {}
    TEST_SCALE: ClassVar[tuple[int, int]] = (1024, 512)
    PREPARE: ClassVar[str] = ""  # the prepare command, quoted in error messages
    SUBSET_KEYWORD: ClassVar[str] = ""  # keyword of '<name>:<split>:<subset>' (acdc: conditions)
    SIZE_MISMATCH: ClassVar[str] = "error"  # image/label sizes differ: "error" | "resize_label"

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None,
                 transform: Callable[[dict], dict] | None = None, label_type: str = "auto") -> None:
        if label_type not in ("auto", "raw", "trainids"):
            raise ValueError(f"label_type must be 'auto', 'raw' or 'trainids', got {label_type!r}")
        self.root = resolve_root(self.NAME, root)
        self.split = self.normalize_split(split)
        self.transform = transform
        self.label_type = label_type
        if getattr(self, "size_mismatch", None) is None:
            self.size_mismatch = self.SIZE_MISMATCH
        if self.size_mismatch not in ("error", "resize_label"):
            raise ValueError(f"size_mismatch must be 'error' or 'resize_label', got {self.size_mismatch!r}")
        self.resized_labels: list[str] = []  # items whose label was resized to the image
        self.items: list[Item] = self._collect(self.folders(self.split))

    # ----- subclass interface
    def folders(self, split: str) -> list[Folder]:
        raise NotImplementedError

    def expected_count(self) -> int | None:
        """Official number of images of this split (``verify`` compares, warns if different)."""
        return self.EXPECTED_COUNTS.get(self.split)

    @classmethod
    def normalize_split(cls, split: str | None) -> str:
        split = cls.DEFAULT_SPLIT if split is None else cls.SPLIT_ALIASES.get(split, split)
        if split not in cls.SPLITS:
            raise DatasetError(f"{cls.NAME}: unknown split {split!r}; choose one of {list(cls.SPLITS)}"
                               + (f" (aliases {cls.SPLIT_ALIASES})" if cls.SPLIT_ALIASES else ""))
        return split

    def pick_labels(self, label_dir: str, raw_suffix: str, raw_format: LabelFormat,
                    train_suffix: str) -> tuple[str, LabelFormat, tuple[str, ...]]:
        """Raw-id labels or prepared ``*trainIds.png`` ones (``label_type='auto'``: the
        prepared ones as soon as any exists) -> (suffix, format, label endings to ignore)."""
        use_train = self.label_type == "trainids"
        if self.label_type == "auto":
            d = self.root / label_dir
            use_train = d.is_dir() and next(d.rglob(f"*{train_suffix}"), None) is not None
        if use_train:
            return train_suffix, TRAIN_IDS, ()
        return raw_suffix, raw_format, (train_suffix,)

    # ----- pairing
    def _require_dir(self, rel: str, is_images: bool) -> Path:
        path = self.root / rel
        if not path.is_dir():
            raise LayoutError(f"{self.NAME}/{self.split}: {describe_missing(path)}. Expected layout: "
                              f"see {README} (section '{self.NAME}'){self._prepare_hint()}",
                              split_absent=is_images)
        return path

    def _prepare_hint(self) -> str:
        return f"; prepared files come from `{self.PREPARE}`" if self.PREPARE else ""

    def _collect(self, folders: Sequence[Folder]) -> list[Item]:
        items: list[Item] = []
        for f in folders:
            img_dir = self._require_dir(f.images, is_images=True)
            images = list_files(img_dir, f.image_suffix)
            if not images:
                raise LayoutError(f"{self.NAME}/{self.split}: no *{f.image_suffix} images under "
                                  f"{img_dir}; {describe_missing(img_dir / '*')}")
            if f.labels is None:
                items += [Item(p, None, None, self._rel(p)) for _, p in sorted(images.items())]
                continue
            lbl_dir = self._require_dir(f.labels, is_images=False)
            labels = list_files(lbl_dir, f.label_suffix or "", f.exclude_labels)
            self._check_pairs(f, img_dir, lbl_dir, images, labels)
            items += [Item(images[k], labels[k], f.label_format, self._rel(images[k]))
                      for k in sorted(images)]
        return items

    def _check_pairs(self, f: Folder, img_dir: Path, lbl_dir: Path,
                     images: dict[str, Path], labels: dict[str, Path]) -> None:
        no_label = sorted(set(images) - set(labels))
        no_image = sorted(set(labels) - set(images))
        if not no_label and not no_image:
            return
        lines = [f"image {images[k]} has no label (expected {lbl_dir / (k + f.label_suffix)})"
                 for k in no_label[:5]]
        lines += [f"label {labels[k]} has no image (expected {img_dir / (k + f.image_suffix)})"
                  for k in no_image[:5]]
        more = len(no_label) + len(no_image) - len(lines)
        raise DatasetError(
            f"{self.NAME}/{self.split}: {len(no_label)} image(s) without label and "
            f"{len(no_image)} label(s) without image (nothing is skipped silently):\n  "
            + "\n  ".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")
            + f"\nFix: re-extract the missing files (see {README}) or remove the orphans"
            + self._prepare_hint() + ".")

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ----- reading
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        sample = self.load(index)
        return self.transform(sample) if self.transform is not None else sample

    def load(self, index: int) -> dict:
        """The untransformed sample ``index`` (all checks applied)."""
        item = self.items[index]
        image = self._read_image(item.image)
        h, w = image.shape[:2]
        meta: dict[str, Any] = {"dataset": self.NAME, "name": item.name, "index": index}
        if item.label is None:
            label = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
            meta["unlabelled"] = True
        else:
            raw = self._match_size(item, self._read_label(item), w, h)
            label = item.fmt.to_train_ids(raw, item.label)
        return {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
                "label": torch.from_numpy(label.astype(np.int64)), "meta": meta}

    def check_item(self, index: int, decode_image: bool = False) -> np.ndarray | None:
        """Validate item ``index`` without building tensors (``verify``): sizes from headers
        (or a full decode), label values. Returns the trainId label (None if unlabelled)."""
        item = self.items[index]
        if decode_image:
            h, w = self._read_image(item.image).shape[:2]
        else:
            w, h = self._header_size(item.image)
        if item.label is None:
            return None
        raw = self._match_size(item, self._read_label(item), w, h)
        return item.fmt.to_train_ids(raw, item.label)

    def _match_size(self, item: Item, raw: np.ndarray, w: int, h: int) -> np.ndarray:
        """The label at the image size: an error, or (``size_mismatch='resize_label'``, GTAV's
        default) the raw ids resized nearest-neighbour with a warning naming the file."""
        if raw.shape == (h, w):
            return raw
        err = self._size_error(item, (w, h), (raw.shape[1], raw.shape[0]))
        if self.size_mismatch == "error":
            raise err
        if item.name not in self.resized_labels:
            self.resized_labels.append(item.name)
            warnings.warn(f"{err} -- resizing the label to the image (nearest) in the loader",
                          stacklevel=3)
        return resize_array(raw, (w, h), nearest=True)

    def _read_image(self, path: Path) -> np.ndarray:
        try:
            return read_image(path)
        except ImageReadError as e:
            raise DatasetError(f"{self.NAME}: {e}. Fix: re-download / re-extract this file "
                               f"(see {README}).") from e

    def _header_size(self, path: Path) -> tuple[int, int]:
        try:
            return image_size(path)
        except ImageReadError as e:
            raise DatasetError(f"{self.NAME}: {e}. Fix: re-extract this file.") from e

    def _read_label(self, item: Item) -> np.ndarray:
        try:
            return read_label(item.label, item.fmt.channel)
        except ImageReadError as e:
            raise DatasetError(f"{self.NAME}: {e}. Fix: re-extract this label"
                               + self._prepare_hint() + ".") from e

    def _size_error(self, item: Item, img_wh: tuple[int, int], lbl_wh: tuple[int, int]) -> DatasetError:
        return DatasetError(
            f"{self.NAME}: image/label size mismatch: image {item.image} is {img_wh[0]}x{img_wh[1]} "
            f"but label {item.label} is {lbl_wh[0]}x{lbl_wh[1]} (width x height). Fix: re-extract "
            f"the pair{self._size_fix()}.")

    def _size_fix(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"

