"""The dataset registry: one name per real dataset, one way to build it.

    from dgsslib.data.registry import build_dataset
    ds = build_dataset("cityscapes", split="val")          # root: $DGSS_DATA/cityscapes or ./data/cityscapes
    ds = build_dataset("acdc", "/data/acdc", "val", conditions=("night",))

Names: gtav, synthia (synthetic sources), cityscapes, bdd, mapillary, acdc, dark_zurich (real
targets). Root resolution: ``root=`` if given, else ``$DGSS_DATA/<name>``, else
``./data/<name>``. ``verify(name, root)`` checks a downloaded tree (see ``verify.py``);
download instructions are in ``data_scripts/README.md``.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .acdc import ACDCDataset
from .base import DATA_ENV, DatasetError, SegFolderDataset, default_root
from .bdd import BDDDataset
from .cityscapes import CityscapesDataset
from .dark_zurich import DarkZurichDataset
from .gtav import GTAVDataset
from .mapillary import MapillaryDataset
from .synthia import SynthiaDataset

DATASETS: dict[str, type[SegFolderDataset]] = {
    "gtav": GTAVDataset,
    "synthia": SynthiaDataset,
    "cityscapes": CityscapesDataset,
    "bdd": BDDDataset,
    "mapillary": MapillaryDataset,
    "acdc": ACDCDataset,
    "dark_zurich": DarkZurichDataset,
}

__all__ = ["DATASETS", "DATA_ENV", "DatasetError", "build_dataset", "dataset_class",
           "default_root", "verify"]


def dataset_class(name: str) -> type[SegFolderDataset]:
    """The class registered under ``name``; ValueError (DatasetError) listing the names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def build_dataset(name: str, root: str | os.PathLike | None = None, split: str | None = None,
                  transform: Callable[[dict], dict] | None = None, **kw: Any) -> SegFolderDataset:
    """Build dataset ``name`` at ``root`` (default ``$DGSS_DATA/<name>`` / ``./data/<name>``).

    ``split`` defaults to ``val`` for the target datasets (``validation`` for mapillary;
    ``train``/``val``/``test`` aliases are accepted there) and ``train`` (all images) for
    gtav/synthia. Extra keywords go to the class: ``label_type``
    ('auto'|'raw'|'trainids'), ``conditions`` (acdc), ``times`` (dark_zurich).
    """
    return dataset_class(name)(root=root, split=split, transform=transform, **kw)


def verify(name: str, root: str | os.PathLike | None = None, **kw: Any) -> int:
    """Check a dataset tree, print a summary table; 0 if usable, 1 if not (see ``verify.py``)."""
    from .verify import verify as _verify
    return _verify(name, root, **kw)


def data_root(name: str) -> Path:
    """Where ``build_dataset(name)`` looks when no root is given."""
    dataset_class(name)
    return default_root(name)
