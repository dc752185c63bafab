"""The dataset registry: one name per real dataset, one way to build it.

    from dgsslib.data.registry import build_dataset
    ds = build_dataset("cityscapes", split="val")          # root: $DGSS_DATA/cityscapes or ./data/cityscapes
    ds = build_dataset("acdc", "/data/acdc", "val", conditions=("night",))

Names: gtav, synthia (synthetic sources), cityscapes, bdd, mapillary, acdc, dark_zurich (real
targets). Root resolution: ``root=`` if given, else ``$DGSS_DATA/<name>``, else
``./data/<name>``. ``dgsslib.data.verify.verify(name, root)`` checks a downloaded tree;
download instructions are in ``data_scripts/README.md``.

Config data strings (``data.train``, ``data.eval``): ``"<dataset>:<split>[:<subset>]"``, where
``<subset>`` is an ACDC condition (``acdc:val:fog``) or a Dark Zurich time of day
(``dark_zurich:train:night``; ``+`` joins several: ``acdc:val:fog+rain``). ``data.root``
serves a multi-dataset run: it is the folder holding ``<dataset>/`` subfolders (exactly like
``$DGSS_DATA``), or a mapping ``{dataset: its own root}``; null = ``$DGSS_DATA``.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .acdc import ACDCDataset
from .base import DATA_ENV, README, DatasetError, SegFolderDataset, default_root
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

__all__ = ["DATASETS", "DATA_ENV", "DatasetError", "build_dataset", "build_from_spec",
           "dataset_class", "dataset_root", "default_root"]


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


def data_root(name: str) -> Path:
    """Where ``build_dataset(name)`` looks when no root is given."""
    dataset_class(name)
    return default_root(name)


def dataset_root(name: str, root_cfg: Any = None) -> Path | None:
    """The root of dataset ``name`` under the config's ``data.root`` (see the module docstring):
    None -> None (``$DGSS_DATA/<name>``); a folder -> ``<folder>/<name>``; a mapping -> its entry."""
    dataset_class(name)
    if root_cfg is None:
        return None
    if isinstance(root_cfg, dict):
        if name not in root_cfg:
            raise DatasetError(f"data.root maps {sorted(root_cfg)} but not {name!r}; add "
                               f"{name!r}: <its root>, or make data.root the folder holding {name}/")
        return Path(root_cfg[name])
    if not isinstance(root_cfg, (str, os.PathLike)):
        raise DatasetError(f"data.root must be a folder or a mapping {{dataset: root}}, got {root_cfg!r}")
    path = Path(root_cfg) / name
    if not path.is_dir():
        raise DatasetError(
            f"{name}: {path} does not exist. data.root is the folder holding one '<dataset>/' "
            f"subfolder per dataset (like ${DATA_ENV}), not a dataset's own root; for that use "
            f"data.root={{'{name}': '{root_cfg}'}}. See {README}.")
    return path


def build_from_spec(spec: str, root_cfg: Any = None,
                    transform: Callable[[dict], dict] | None = None) -> SegFolderDataset:
    """A dataset from a config data string ``"<dataset>:<split>[:<subset>]"``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise DatasetError(f"data string {spec!r} must look like '<dataset>:<split>' or "
                           "'<dataset>:<split>:<condition>' (acdc: fog/night/rain/snow, "
                           "dark_zurich: day/twilight/night)")
    cls = dataset_class(parts[0])
    kw: dict[str, Any] = {}
    if len(parts) == 3:
        if not cls.SUBSET_KEYWORD:
            raise DatasetError(f"data string {spec!r}: {parts[0]} has no conditions; "
                               f"use '{parts[0]}:{parts[1]}'")
        kw[cls.SUBSET_KEYWORD] = tuple(parts[2].split("+"))
    return cls(root=dataset_root(parts[0], root_cfg), split=parts[1], transform=transform, **kw)
