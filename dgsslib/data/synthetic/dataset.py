"""``SyntheticStreets``: the procedural street-scene benchmark as a torch Dataset.

Sample ``i`` of a split is the layout ``(seed, SPLIT_OFFSET[split] + i)`` rendered in the
requested domain (optionally with a Cityscapes-C corruption). The split offsets keep
train / val / test layouts disjoint; the same ``(seed, split, i)`` has the same label map
in every domain. Rendering a 112x224 sample takes ~5-20 ms; ``cache_dir`` stores rendered samples
as ``.npz`` files (written atomically: temporary file then ``os.replace``) and reuses them --
on by default in the mini profile (``data.cache_dir: auto`` -> :func:`default_cache_dir`), where a
notebook's runs draw the same images again and again; off in smoke (``None``: render on the fly).

Versioning: ``BENCHMARK_VERSION`` names the benchmark (bump it whenever layouts or styles
change; results record it) and ``render_params(...)`` is the full description of one
rendered sample set: version, a hash of the generator's source files, domain, split, size,
seed and corruption. Every cached file stores its ``render_params`` and is only served when
they equal the requested ones; otherwise it is rendered again and overwritten, so a cache
can never serve images of another generator version or other render parameters.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .render import render, render_rng
from .scene import make_scene
from .styles import DOMAINS

SPLITS = ("train", "val", "test")
MAX_LENGTH = 10_000_000
SPLIT_OFFSET = {"train": 0, "val": MAX_LENGTH, "test": 2 * MAX_LENGTH}
PRESET_SIZES = {"smoke": (112, 224), "mini": (112, 224), "hires": (224, 448)}
# 2: object scale / placement calibrated to the 14-px token grid (issue 13)
BENCHMARK_VERSION = 2  # bump when layouts or styles change: results and caches record it
GENERATOR_VERSION = BENCHMARK_VERSION  # former name, kept for callers


def _source_hash() -> str:
    """sha256 (16 hex) of the generator's source files (layout + rendering code)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for f in sorted(here.glob("*.py")):
        if f.name not in ("__main__.py", "learnability.py"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


GENERATOR_HASH = _source_hash()


def render_params(domain: str = "source", split: str = "train",
                  size: tuple[int, int] | str = (112, 224), seed: int = 0,
                  corruption: str | None = None, severity: int | None = None) -> dict[str, Any]:
    """Everything a rendered sample depends on (besides its index), as a JSON-able dict."""
    H, W = check_size(size)
    return {"benchmark_version": BENCHMARK_VERSION, "generator_hash": GENERATOR_HASH,
            "domain": domain, "split": split, "size": [H, W], "seed": int(seed),
            "corruption": corruption, "severity": None if severity is None else int(severity)}


def check_size(size: tuple[int, int] | str) -> tuple[int, int]:
    """``(H, W)`` from a pair or a preset name; ValueError otherwise."""
    if isinstance(size, str):
        if size not in PRESET_SIZES:
            raise ValueError(f"unknown size preset {size!r}; expected one of "
                             f"{tuple(PRESET_SIZES)} or an (H, W) pair")
        return PRESET_SIZES[size]
    try:
        H, W = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an (H, W) pair of ints or a preset name, got {size!r}")
    if H < 8 or W < 8:
        raise ValueError(f"size must be at least (8, 8), got {(H, W)}")
    return H, W


def check_args(domain: str, split: str, corruption: str | None,
               severity: int | None) -> None:
    """Raise ValueError naming the allowed values for any bad argument."""
    from ..corruptions import CORRUPTIONS  # lazy: corruptions imports synthetic.noise
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if corruption is None and severity is not None:
        raise ValueError("severity given without a corruption; pass corruption= one of "
                         f"{CORRUPTIONS}")
    if corruption is not None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; expected one of {CORRUPTIONS}")
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity must be one of (1, 2, 3, 4, 5) with a corruption, "
                             f"got {severity!r}")


def render_sample(domain: str, index: int, size: tuple[int, int] | str = (112, 224),
                  seed: int = 0, split: str = "train", corruption: str | None = None,
                  severity: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render one sample: ((H, W, 3) uint8 RGB, (H, W) uint8 label with 255 = ignore)."""
    check_args(domain, split, corruption, severity)
    if not 0 <= int(index) < MAX_LENGTH:
        raise ValueError(f"index must be in [0, {MAX_LENGTH}), got {index}")
    H, W = check_size(size)
    key = SPLIT_OFFSET[split] + int(index)
    scene = make_scene(seed, key, (H, W))
    image = render(scene, domain, render_rng(seed, key, domain))
    if corruption is not None:
        from ..corruptions import corrupt
        cseed = (int(seed) * 1_000_003 + key) % 2**31
        image = corrupt(image, corruption, int(severity), seed=cseed)
    return image, scene.label


def default_cache_dir() -> str:
    """Where ``cache_dir="auto"`` keeps rendered samples: ``$DGSS_CACHE/render``, else
    ``~/.cache/dgsslib/render`` (the mini profile's default; delete it any time)."""
    return os.path.join(os.path.expanduser(os.environ.get("DGSS_CACHE") or "~/.cache/dgsslib"), "render")


class SyntheticStreets(Dataset):
    """Procedural street scenes in one domain; items are dicts of tensors + meta.

    ``__getitem__(i)`` returns ``{"image": uint8 (3, H, W) RGB, "label": int64 (H, W)
    (0..18, 255 = ignore), "meta": {"domain", "index", "name"}}``.
    """

    def __init__(self, domain: str, split: str = "train", length: int = 1000,
                 size: tuple[int, int] | str = (112, 224), seed: int = 0,
                 corruption: str | None = None, severity: int | None = None,
                 cache_dir: str | os.PathLike | None = None):
        check_args(domain, split, corruption, severity)
        if not 0 < int(length) <= MAX_LENGTH:
            raise ValueError(f"length must be in [1, {MAX_LENGTH}], got {length}")
        self.domain, self.split, self.length = domain, split, int(length)
        self.size = check_size(size)
        self.seed, self.corruption, self.severity = int(seed), corruption, severity
        self.cache_dir = (None if cache_dir is None else default_cache_dir() if cache_dir == "auto"
                          else os.fspath(cache_dir))

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        extra = (f", corruption={self.corruption!r}, severity={self.severity}"
                 if self.corruption else "")
        return (f"SyntheticStreets(domain={self.domain!r}, split={self.split!r}, "
                f"length={self.length}, size={self.size}, seed={self.seed}{extra})")

    def cache_path(self, index: int) -> str | None:
        """``cache_dir/<domain>/<split>/<H>x<W>/<variant>/<index:06d>.npz`` (None: no cache)."""
        if self.cache_dir is None:
            return None
        variant = f"seed{self.seed}-v{BENCHMARK_VERSION}"
        if self.corruption is not None:
            variant += f"-{self.corruption}{self.severity}"
        return os.path.join(self.cache_dir, self.domain, self.split,
                            f"{self.size[0]}x{self.size[1]}", variant, f"{index:06d}.npz")

    def render_params(self) -> dict[str, Any]:
        """The render parameters of this dataset (see :func:`render_params`)."""
        return render_params(self.domain, self.split, self.size, self.seed, self.corruption,
                             self.severity)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) uint8 label, from the cache or freshly rendered.

        A cached file is served only if its stored render parameters (version, generator
        hash, domain, split, size, seed, corruption) equal this dataset's; a stale, foreign or
        unreadable file is rendered again and overwritten."""
        path = self.cache_path(index)
        params = json.dumps(self.render_params(), sort_keys=True)
        if path is not None and os.path.exists(path):
            try:
                with np.load(path) as z:
                    if str(z["params"]) == params:
                        return z["image"], z["label"]
            except (OSError, ValueError, KeyError, EOFError):
                pass  # unreadable or pre-versioning file: render again and overwrite it
        image, label = render_sample(self.domain, index, self.size, self.seed, self.split,
                                     self.corruption, self.severity)
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                np.savez(f, image=image, label=label, params=np.array(params))
            os.replace(tmp, path)
        return image, label

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        image, label = self.load(int(index))
        chw = np.ascontiguousarray(image.transpose(2, 0, 1))        # (H, W, 3) -> (3, H, W)
        return {"image": torch.from_numpy(chw),
                "label": torch.from_numpy(label.astype(np.int64)),   # (H, W)
                "meta": {"domain": self.domain, "index": int(index),
                         "name": f"{self.domain}/{self.split}/{int(index):06d}"}}
