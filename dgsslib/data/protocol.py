"""The per-dataset evaluation protocol: which test scale, window and class set each eval set uses.

Rein (``w1oves/Rein`` configs, ``configs/_base_/datasets/*``) resizes every evaluation image
with mmseg's keep-ratio ``Resize(scale=(long, short))`` -- factor ``min(long/L, short/S)`` --
then slides 512×512 windows (stride 341) over it; mIoU is scored at the label resolution.
Each dataset has **its own** scale, the dataset class's ``TEST_SCALE``:

| eval set | split | test scale (long×short) | note |
|---|---|---|---|
| cityscapes | val (500) | 2048×1024 | Rein++ Sec. VI-A3 (the Rein repo used 1024×512, ~2 mIoU lower) |
| bdd | val (1,000) | 1280×720 | native |
| mapillary | half_val (2,000, halved offline) | 1024×512 | short side ≈ 512 |
| acdc | val / test | 960×540 | the 512-crop configs (1920×1080 in the 1024 ones) |
| dark_zurich | val (50) | 960×540 | |
| gtav / synthia | (sources) | 1280×720 / 1280×760 | rarely evaluated |
| synthetic:* | the procedural benchmark | native (``None``) | today's behaviour |

Config (``eval`` section of ``dgsslib.profiles``), most specific first:

* ``eval.test_scales.<dataset>``: ``[long, short]`` or ``"native"`` for that dataset only
  (e.g. ``--set 'eval.test_scales.cityscapes=[1024,512]'`` for the Rein-repo protocol);
  ``null`` (the default) = the dataset's ``TEST_SCALE`` above;
* ``eval.test_scale``: ``[long, short]`` or ``"native"`` for *every* eval set (the global
  override of earlier kit versions); ``null`` (the default) = per dataset;
* ``eval.class_subset``: ``"auto"`` (default: the 16-class Synthia protocol when
  ``data.train`` is Synthia, else none), ``null``/``"none"``, ``"synthia16"``, or a list of
  trainIds. The evaluator then reports ``miou<N>`` (e.g. ``miou16``) beside the 19-class ``miou``.

``eval_settings(spec, cfg)`` returns the keyword arguments of :func:`dgsslib.engine.evaluate.evaluate`
for one evaluation data string: ``mode``, ``crop``, ``stride``, ``test_scale`` ([long, short]
or None = native) and ``class_subset`` (tuple of trainIds or None).
Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from typing import Any

from .labels import NUM_CLASSES, SYNTHIA_16_CLASSES

NATIVE = "native"
SUBSETS = {"synthia16": SYNTHIA_16_CLASSES}


def _error(msg: str) -> ValueError:
    from ..profiles import ConfigError  # profiles imports nothing from dgsslib.data
    return ConfigError(msg)


def check_scale(value: Any, key: str) -> list[int] | str | None:
    """None, "native" or [long, short] positive ints; anything else is a ConfigError."""
    if value is None or value == NATIVE:
        return value
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return [int(max(value)), int(min(value))]
    raise _error(f"{key} must be [long, short] (positive ints, e.g. [2048, 1024]), 'native' or "
                 f"null, got {value!r}")


def dataset_of(spec: str) -> str:
    """'bdd:val' -> 'bdd'; 'synthetic:citys' -> 'synthetic'."""
    name = spec.split(":")[0]
    if ":" not in spec or not name:
        raise _error(f"data string {spec!r} must look like '<dataset>:<split>' or 'synthetic:<domain>'")
    return name


def default_scale(spec: str) -> list[int] | None:
    """The dataset's documented test scale (``TEST_SCALE``); None for the procedural benchmark."""
    name = dataset_of(spec)
    if name == "synthetic":
        return None
    from .registry import dataset_class
    return list(dataset_class(name).TEST_SCALE)


def class_subset(cfg: dict) -> tuple[int, ...] | None:
    """The trainIds the extra ``miou<N>`` averages over (see the module docstring)."""
    value = cfg["eval"].get("class_subset", "auto")
    if value == "auto":
        return SYNTHIA_16_CLASSES if str(cfg["data"]["train"]).startswith("synthia:") else None
    if value in (None, "none"):
        return None
    if isinstance(value, str):
        if value not in SUBSETS:
            raise _error(f"eval.class_subset {value!r} unknown; use 'auto', 'none', "
                         f"{', '.join(repr(k) for k in SUBSETS)} or a list of trainIds")
        return SUBSETS[value]
    if (isinstance(value, (list, tuple)) and value and len(set(value)) == len(value)
            and all(isinstance(v, int) and 0 <= v < NUM_CLASSES for v in value)):
        return tuple(sorted(value))
    raise _error(f"eval.class_subset must be 'auto', 'none', a subset name or a list of distinct "
                 f"trainIds 0..{NUM_CLASSES - 1}, got {value!r}")


def eval_settings(spec: str, cfg: dict) -> dict:
    """Evaluation settings of one eval data string (``"bdd:val"``, ``"synthetic:citys"``...).

    Precedence for the test scale: ``eval.test_scales.<dataset>`` > ``eval.test_scale`` >
    the dataset's ``TEST_SCALE`` (synthetic: native)."""
    e = cfg["eval"]
    name = dataset_of(spec)
    per_dataset = (e.get("test_scales") or {}).get(name)
    scale = check_scale(per_dataset, f"eval.test_scales.{name}")
    if scale is None:
        scale = check_scale(e.get("test_scale"), "eval.test_scale")
    if scale is None:
        scale = default_scale(spec)
    return {"mode": e["mode"], "crop": e["crop"], "stride": e["stride"],
            "test_scale": None if scale == NATIVE else scale, "class_subset": class_subset(cfg)}
